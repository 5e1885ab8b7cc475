"""Shared by every tab: images in, images out, captions and friendly errors.

Images in: `to_model_input` (from `explorer.imageio`, re-exported here) turns ANY picture (a file
of any format and size, a PIL image, a numpy array, a Sketchpad value) into the uint8 (28, 28)
white-on-black image the models were trained on, or refuses it with a ValueError that says why.
Images out: `upscale` (nearest neighbour, so each model pixel stays a crisp block readable from
the back of a lecture hall) and `compose` (labelled filmstrips and grids).
Files out (for slides): `png_file` (every picture a handler returns), `gif_file` (an animation
of labelled frames) and `csv_file`, all written into one temporary folder, named by content.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import inspect
import io
import logging
import math
import os
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from explorer.checkpoint import CheckpointError
from explorer.imageio import SIDE, to_model_input  # noqa: F401  (re-exported for the tabs)
from explorer.validate import SEED_MAX, check_float, check_int, check_seed  # noqa: F401

log = logging.getLogger("latent_explorer")

PIXEL = 10                     # one model pixel -> PIXEL x PIXEL screen pixels (280 px images)
STRIP_PIXEL = 6                # in filmstrips and grids (168 px frames)
BACKGROUND = 40                # grey between frames of a strip, so black images stay separate
TEXT = 235
LATEX = [{"left": "$$", "right": "$$", "display": True},
         {"left": "$", "right": "$", "display": False}]


class ModelMissing(CheckpointError):
    """A pretrained model (or gallery) is not on disk; the message names the file and the
    command that rebuilds it."""


# ---------------------------------------------------------------- images out

def upscale(image: np.ndarray, pixel: int = PIXEL) -> np.ndarray:
    """uint8 (h, w) -> (h pixel, w pixel), nearest neighbour: every model pixel a crisp block."""
    return np.asarray(image, dtype=np.uint8).repeat(pixel, axis=0).repeat(pixel, axis=1)


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def frame_gap(pixel: int) -> int:
    """The grey gap `compose` leaves around frames drawn `pixel` screen pixels a model pixel."""
    return max(4, pixel)


def compose(rows: Sequence[Sequence[np.ndarray]], pixel: int = STRIP_PIXEL,
            col_labels: Sequence[str] | None = None, row_labels: Sequence[str] | None = None,
            font_size: int = 22) -> np.ndarray:
    """A labelled grid of uint8 (28, 28) images (rows of equal length) -> one uint8 image.

    Each image is upscaled by `pixel`; frames are separated by a grey gap so black backgrounds
    stay apart; `col_labels` go above the columns, `row_labels` to the left of the rows."""
    rows = [list(r) for r in rows]
    if not rows or not rows[0] or any(len(r) != len(rows[0]) for r in rows):
        raise ValueError("compose needs a non-empty grid with rows of equal length")
    font, cell, gap = _font(font_size), SIDE * pixel, frame_gap(pixel)
    measure = ImageDraw.Draw(Image.new("L", (1, 1)))
    left = (math.ceil(max(measure.textlength(t, font=font) for t in row_labels)) + 2 * gap
            if row_labels else 0)                     # whole pixels: labels come from a cache
    top = font_size + 2 * gap if col_labels else 0
    n_rows, n_cols = len(rows), len(rows[0])
    width = int(left + n_cols * (cell + gap) + gap)
    height = int(top + n_rows * (cell + gap) + gap)
    canvas = Image.new("L", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for i, row in enumerate(rows):
        y = int(top + gap + i * (cell + gap))
        if row_labels:
            _paste_label(canvas, draw, (gap, y + cell / 2), row_labels[i], font_size, "lm")
        for j, image in enumerate(row):
            x = int(left + gap + j * (cell + gap))
            canvas.paste(Image.fromarray(upscale(image, pixel)), (x, y))
    if col_labels:
        for j, label in enumerate(col_labels):
            x = left + gap + j * (cell + gap) + cell / 2
            _paste_label(canvas, draw, (x, gap + font_size / 2), label, font_size, "mm")
    return np.asarray(canvas)


def _paste_label(canvas: Image.Image, draw: ImageDraw.ImageDraw, at: tuple[float, float],
                 text: str, size: int, anchor: str) -> None:
    """draw.text(at, text, anchor=anchor) in TEXT on BACKGROUND, from a cache of rendered labels
    where `at` is whole pixels (as every label of `compose` is): the same pixels, without
    rendering the glyphs again (a filmstrip redraws the same labels at every step)."""
    x, y = at
    if x != int(x) or y != int(y):
        draw.text(at, text, fill=TEXT, font=_font(size), anchor=anchor)
        return
    ink, (dx, dy) = _label(text, size, anchor)
    if ink is not None:
        canvas.paste(ink, (int(x) + dx, int(y) + dy))


@functools.lru_cache(maxsize=2048)
def _label(text: str, size: int, anchor: str) -> tuple[Image.Image | None, tuple[int, int]]:
    """`text` drawn in TEXT on BACKGROUND, cropped to its box, and the box's offset from the
    anchor point (None for text without a box)."""
    font = _font(size)
    left, top, right, bottom = font.getbbox(text, anchor=anchor)
    if right <= left or bottom <= top:
        return None, (0, 0)
    ink = Image.new("L", (right - left, bottom - top), BACKGROUND)
    ImageDraw.Draw(ink).text((-left, -top), text, fill=TEXT, font=font, anchor=anchor)
    return ink, (left, top)


def strip(images: Sequence[np.ndarray], labels: Sequence[str] | None = None,
          pixel: int = STRIP_PIXEL, row_label: str | None = None) -> np.ndarray:
    """One labelled row of frames (a filmstrip)."""
    return compose([images], pixel, labels, [row_label] if row_label else None)


def picture_out(elem_id: str, label: str | None = None, **kwargs) -> gr.Image:
    """An output for a composed picture (labels drawn in): PNG, crisp pixels, no floating label
    hiding its top-left corner; a download button (the PNG, for slides) and a fullscreen one
    (for the lecture hall)."""
    return gr.Image(label=label, format="png", interactive=False, show_label=False,
                    buttons=["download", "fullscreen"], elem_id=elem_id,
                    elem_classes="pixelated", **kwargs)


def seed_box(value: int = 0, *, label: str = "seed", **kwargs) -> gr.Number:
    """A box for a seed: a whole number in 0..2^31 - 1 (explorer.validate.SEED_MAX)."""
    return gr.Number(value, precision=0, minimum=0, maximum=SEED_MAX, label=label, **kwargs)


def file_out(elem_id: str, label: str, visible: bool = True) -> gr.File:
    """An output for a file to download (a GIF, a CSV), filled by an event. One filled only on
    request starts hidden (visible=False) and shows with its file (`file_shown`)."""
    return gr.File(label=label, interactive=False, elem_id=elem_id, height=80, min_width=200,
                   visible=visible, elem_classes="le-file")


def file_shown(path: str | None):
    """The update of a file output filled on request: shown with its file, hidden without."""
    return gr.update(value=path, visible=path is not None)


def reveal(event, *outputs) -> None:
    """Show `outputs` (hidden until then: no empty placeholder) once `event` has filled them:
    the event returns their values (its API result), a private follow-up makes them visible."""
    shown = gr.update(visible=True)
    event.success(lambda: shown if len(outputs) == 1 else (shown,) * len(outputs), None,
                  list(outputs), api_visibility="private", show_progress="hidden")


_FILE_DIR = Path(tempfile.gettempdir()) / f"latent-explorer-{os.getpid()}"
_FILE_KEEP_S = 900                               # Gradio copies a file at once; keep 15 min
_FILE_KEEP_BYTES = 64 * 2**20                    # and at most this much, the oldest go first
_FILE_MIN_S = 60                                 # but never a file younger than this


def _content_file(data: bytes, suffix: str, name: str = "") -> str:
    """Write `data` into the app's temporary folder as <name>-<sha1>.<suffix> (<sha1>.<suffix>
    without a name) and return the path. Written via a temporary name, so a reader never sees
    half a file; now and then the folder is pruned (`prune_files`)."""
    _FILE_DIR.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha1(data).hexdigest()
    path = _FILE_DIR / (f"{name}-{digest[:16]}.{suffix}" if name else f"{digest}.{suffix}")
    try:
        os.utime(path)                                          # there already: keep it longer
    except OSError:
        tmp = path.with_name(f"{path.name}.{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        if int(digest[:2], 16) % 32 == 0:                       # now and then: prune
            prune_files()
    return str(path)


def data_file(data: bytes, suffix: str, name: str) -> str:
    """Any file for download (a zip, a GIF drawn elsewhere) into the app's folder, named by
    content as every file here is (`_content_file`); returns its path."""
    return _content_file(data, suffix, name)


def prune_files(keep_s: float = _FILE_KEEP_S, keep_bytes: int = _FILE_KEEP_BYTES) -> int:
    """Delete the app's files older than `keep_s`, then the oldest until the rest take at most
    `keep_bytes` (files younger than _FILE_MIN_S stay: Gradio may not have copied them yet).
    Returns the bytes left."""
    files = []
    for f in _FILE_DIR.iterdir() if _FILE_DIR.exists() else ():
        try:
            st = f.stat()
            files.append((st.st_mtime, st.st_size, f))
        except OSError:
            pass
    now, total = time.time(), sum(size for _, size, _ in files)
    for mtime, size, f in sorted(files, key=lambda x: x[0]):
        age = now - mtime
        if age < _FILE_MIN_S or (age < keep_s and total <= keep_bytes):
            break
        try:
            f.unlink()
            total -= size
        except OSError:
            pass
    return total


def png_file(image: np.ndarray, name: str = "") -> str:
    """Write a uint8 picture as a PNG file named by its content (<name>-<hash>.png with a name)
    and return the path.

    Handlers return paths rather than arrays on purpose: Gradio saves an array by rewriting
    <cache>/<hash>/image.png in place, so two events that show the same picture at once (both
    tabs reset to the same images A and B) can serve a half-written file. A path is copied into
    the cache atomically."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG", compress_level=1)
    return _content_file(buffer.getvalue(), "png", name)


_GREY_PALETTE = np.repeat(np.arange(256, dtype=np.uint8), 3).tobytes()   # index i = grey i


def gif_file(frames: Sequence[Sequence[np.ndarray]], labels: Sequence[Sequence[str]] | None,
             pixel: int = STRIP_PIXEL, ms_per_frame: int | Sequence[int] = 120,
             name: str = "animation", order: Sequence[int] | None = None) -> str:
    """An animated GIF (looping forever) of labelled frames; returns its path.

    Frame i is one row of uint8 (28, 28) images, drawn by `compose` (nearest neighbour, `pixel`
    screen pixels a model pixel) with labels[i] above its columns (one label per image). Every
    frame has the same number of images, so every frame has the same size. The GIF plays the
    frames in `order` (indices, e.g. `ping_pong(n)`; default: each once), each shown
    `ms_per_frame` (one duration, or one per frame played). Pillow merges a frame identical to
    the one before it into that one: callers keep consecutive frames distinct (their labels
    differ: t, w, step...)."""
    if not frames:
        raise ValueError("a GIF needs at least one frame")
    if labels is not None and len(labels) != len(frames):
        raise ValueError(f"{len(frames)} frames but {len(labels)} labels")
    if len({len(row) for row in frames}) != 1:
        raise ValueError("every frame of a GIF needs the same number of images")
    order = list(range(len(frames))) if order is None else list(order)
    images = {}
    for i in dict.fromkeys(order):                      # each distinct frame composed once
        p = compose([frames[i]], pixel, labels[i] if labels is not None else None)
        image = Image.frombytes("P", (p.shape[1], p.shape[0]), np.ascontiguousarray(p).tobytes())
        image.putpalette(_GREY_PALETTE)                 # grey levels as palette indices
        images[i] = image
    played = [images[i] for i in order]
    duration = ms_per_frame if isinstance(ms_per_frame, int) else list(ms_per_frame)
    buffer = io.BytesIO()
    played[0].save(buffer, format="GIF", save_all=True, append_images=played[1:],
                   duration=duration, loop=0, optimize=False)   # optimize: ~20x slower here
    return _content_file(buffer.getvalue(), "gif", name)


def ping_pong(n: int) -> list[int]:
    """Frame order 0, 1, ..., n-1, n-2, ..., 1: A -> B -> A, so a looping GIF has no jump
    (2n - 2 frames for n >= 2; both ends once)."""
    return list(range(n)) + list(range(n - 2, 0, -1))


GIF_MS, GIF_HOLD_MS = 150, 700           # a GIF frame; an end frame (A, B, t = T) held longer


def interpolation_gif(columns: Sequence[np.ndarray], names: Sequence[str],
                      weights: Sequence[str], name: str, pixel: int = STRIP_PIXEL) -> str:
    """A looping GIF of interpolations side by side, for slides: columns are uint8 (F, 28, 28)
    each (frame i at weight weights[i]), named above them (the first with its w), played
    A -> B -> A (`ping_pong`: 2F - 2 frames) with A and B held. Returns its path."""
    frames = len(weights)
    order = ping_pong(frames)
    rows = [[column[i] for column in columns] for i in range(frames)]
    labels = [[f"{names[0]}, w = {w}", *names[1:]] for w in weights]
    durations = [GIF_HOLD_MS if i in (0, frames - 1) else GIF_MS for i in order]
    return gif_file(rows, labels, pixel, durations, name, order)


def csv_text(rows) -> str:
    """Rows in the csv module's dialect (commas, quoted when needed), one line each."""
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    return text.getvalue()


def csv_file(header: Sequence[str], rows, name: str, head: str = "") -> str:
    """A CSV file of a header and rows, `head` (rows already written by csv_text) first;
    returns its path."""
    text = csv_text([header]) + head + csv_text(rows)
    return _content_file(text.encode(), "csv", name)


def _as_files(result):
    """Every uint8 picture among a handler's outputs -> a PNG file path (see png_file)."""
    if isinstance(result, np.ndarray) and result.dtype == np.uint8 and result.ndim in (2, 3):
        return png_file(result)
    if isinstance(result, tuple):
        return tuple(_as_files(r) for r in result)
    return result


# ---------------------------------------------------------------- text

def caption(text: str, **kwargs) -> gr.Markdown:
    """A short caption beside a view: what it shows and its equation ($...$ is LaTeX)."""
    return gr.Markdown(text, latex_delimiters=LATEX, elem_classes="caption", **kwargs)


def terms_table(nats: dict[str, float], dims: int = SIDE * SIDE) -> str:
    """Markdown table of -ELBO terms in nats and bits/dim (bits/dim = nats / (dims ln 2))."""
    lines = ["| term | nats | bits/dim |", "|---|---:|---:|"]
    for name, value in nats.items():
        bold = "**" if name == "total (-ELBO)" else ""
        cell = name.replace("|", "\\|")                          # a bar would end the cell
        lines.append(f"| {bold}{cell}{bold} | {value:.1f} | {value / (dims * np.log(2)):.3f} |")
    return "\n".join(lines)


# ---------------------------------------------------------------- errors

def _message(e: Exception) -> str:
    return str(e) or type(e).__name__


def _as_gr_error(fn: Callable, e: Exception) -> gr.Error:
    """The gr.Error a handler's failure becomes: bad arguments and missing models keep their own
    message; anything else is a bug, logged for us and said plainly to the user."""
    if isinstance(e, gr.Error):
        return e
    if isinstance(e, ModelMissing):
        return gr.Error(_message(e), title="Model not available", print_exception=False)
    if isinstance(e, (ValueError, TypeError, KeyError, IndexError, CheckpointError)):
        return gr.Error(_message(e), title="Cannot do that", print_exception=False)
    log.exception("handler %s failed", fn.__name__)
    return gr.Error(f"Something went wrong ({type(e).__name__}: {e}). The app is still "
                    "running; try other settings.")


def friendly(fn: Callable) -> Callable:
    """Wrap an event handler: any failure of `fn` becomes a clear gr.Error toast in the page,
    never a stack trace (bad arguments and missing models keep their own message), and the app
    keeps serving; pictures it returns (uint8 arrays) go out as PNG files (see png_file).
    A generator handler (a stream) stays a generator, each of its yields treated alike."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def stream(*args, **kwargs):
            try:
                for result in fn(*args, **kwargs):
                    yield _as_files(result)
            except Exception as e:
                raise _as_gr_error(fn, e) from None
        return stream

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return _as_files(fn(*args, **kwargs))
        except Exception as e:
            raise _as_gr_error(fn, e) from None
    return wrapper
