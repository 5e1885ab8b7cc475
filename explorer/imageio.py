"""Images in: any picture -> the uint8 (28, 28) white-on-black image the models were trained on.

`to_model_input` is the one place where an outside picture enters the backend; the UI and the
API both go through it.

Accepted: a file path (PNG, JPEG, WebP, GIF and animated GIF or WebP -- first frame --, BMP,
TIFF, anything else Pillow reads), a PIL image, a numpy array (H, W), (H, W, 1), (H, W, 3) or
(H, W, 4) of uint8, uint16, bool, int or float (NaN/inf allowed), or a Sketchpad value
{"composite": <one of those>, ...}; every PIL mode (1, L, LA, P with or without transparency,
RGB, RGBA, I;16, I, F, CMYK, ...), from 1x1 up to MAX_PIXELS pixels. A picture larger than
WORK_SIDE a side is box-averaged down to it first, so an 8000x8000 photo never becomes a 0.5 GB
float64 array.

Refused, always with an `ImageInputError` (a ValueError) that says why: a missing path, a folder,
an empty (0-byte) file, a file that is not an image (text, corrupt bytes), a damaged or truncated
image, one over MAX_PIXELS (checked from the header, before anything is decoded: decompression
bombs), an empty or blank drawing, an empty array or one of the wrong shape or dtype, and any
other Python type.
"""

from __future__ import annotations

import math
import stat
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

SIDE = 28                      # the models' image side
FIT_BOX = {"mnist": 20, "fashion-mnist": 28}   # MNIST digits sit in a 20x20 box, clothes fill 28x28
MAX_PIXELS = 8000 * 8000       # larger pictures are refused from their header (64 megapixels)
WORK_SIDE = 1024               # larger pictures are box-averaged to at most this side first
FORMATS = "PNG, JPEG, WebP, GIF, BMP or TIFF"
_WIDE = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")           # 16/32-bit single-band modes
_ALPHA = ("LA", "La", "PA", "RGBA", "RGBa")


class ImageInputError(ValueError):
    """A picture that cannot become a model input; the message tells the user why."""


# ---------------------------------------------------------------- any input -> a PIL image

def _open(image) -> Image.Image:
    """A file path, PIL image, numpy array (H, W[, C]) or Sketchpad dict -> a loaded PIL image
    of at most MAX_PIXELS pixels."""
    if isinstance(image, dict):                                  # gr.Sketchpad / ImageEditor value
        image = image.get("composite")
        if image is None:
            raise ImageInputError("the drawing is empty: pick the brush and draw first")
    if image is None or (isinstance(image, str) and not image.strip()):
        raise ImageInputError("no image given: upload, draw or pick one")
    if isinstance(image, (str, Path)):
        return _open_file(Path(image))
    if isinstance(image, np.ndarray):
        return _from_array(image)
    if isinstance(image, Image.Image):
        _check_size(image.size, "the image")
        try:
            image.load()
        except Exception as e:
            raise ImageInputError(f"could not read the image ({type(e).__name__}: {e})") from None
        return image
    raise ImageInputError(f"cannot read an image from a {type(image).__name__}: give a file "
                          "path, a PIL image, a numpy array or a drawing")


def _check_size(size: tuple[int, int], what: str) -> None:
    """Refuse a (width, height) with no pixels or more than MAX_PIXELS."""
    w, h = size
    if w < 1 or h < 1:
        raise ImageInputError(f"{what} has no pixels ({w} x {h})")
    if w * h > MAX_PIXELS:
        raise ImageInputError(f"{what} is too large: {w} x {h} pixels, at most "
                              f"{MAX_PIXELS // 10**6} megapixels (8000 x 8000) are accepted")


def _open_file(path: Path) -> Image.Image:
    """Path -> loaded PIL image (first frame, EXIF orientation applied). The size is checked from
    the header before decoding; a big JPEG is decoded at 1/2 .. 1/8 scale (`Image.draft`)."""
    name = repr(path.name or str(path))
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ImageInputError(f"image file {name} not found") from None
    except (OSError, ValueError) as e:                           # permissions, NUL in the name
        raise ImageInputError(f"could not open {name} ({getattr(e, 'strerror', None) or e})") \
            from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageInputError(f"{name} is a folder, not an image file")
    if not stat.S_ISREG(st.st_mode):
        raise ImageInputError(f"{name} is not a regular file")
    if st.st_size == 0:
        raise ImageInputError(f"the file {name} is empty (0 bytes)")
    try:
        with open(path, "rb") as f:
            pil = Image.open(f)                                  # reads the header only
            _check_size(pil.size, name)
            if max(pil.size) > WORK_SIDE:
                pil.draft(None, (WORK_SIDE, WORK_SIDE))          # JPEG only; others ignore it
            pil.load()
            try:
                ImageOps.exif_transpose(pil, in_place=True)
            except Exception:                                    # a bad EXIF block: keep as is
                pass
        return pil
    except ImageInputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageInputError(f"{name} is too large (a decompression bomb?): at most "
                              f"{MAX_PIXELS // 10**6} megapixels are accepted") from None
    except UnidentifiedImageError:
        raise ImageInputError(f"could not read {name} as an image: not a {FORMATS} file "
                              "(or another format Pillow reads)") from None
    except OSError as e:
        raise ImageInputError(f"could not read {name} as an image: the file is damaged or "
                              f"truncated ({e})") from None
    except MemoryError:
        raise ImageInputError(f"{name} is too large to decode") from None
    except Exception as e:                                       # decoders fail in many ways
        raise ImageInputError(f"could not read {name} as an image: the file is damaged or uses "
                              f"an unsupported encoding ({type(e).__name__}: {e})") from None


def _from_array(array: np.ndarray) -> Image.Image:
    """numpy (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) -> PIL image.

    uint8 as it is; bool -> 0 / 255; uint16 as a 16-bit PNG would be read (grey -> I;16, colour
    -> its high byte); other numbers are taken as floats in [0, 1] if none (finite) exceeds 1,
    else as 0..255, with NaN -> 0 and clipping to 0..255."""
    a = np.asarray(array)
    if a.size == 0:
        raise ImageInputError(f"the image array is empty (shape {a.shape})")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise ImageInputError("an image array must be (H, W) or (H, W, C) with C = 1, 3 or 4 "
                              f"channels, got shape {array.shape}")
    _check_size((a.shape[1], a.shape[0]), "the image array")
    if a.dtype.kind == "b":
        a = a.astype(np.uint8) * np.uint8(255)
    elif a.dtype.kind == "u" and a.dtype.itemsize == 1:
        pass
    elif a.dtype.kind == "u" and a.dtype.itemsize == 2:
        a = a.astype(np.uint16)                                  # native byte order
        if a.ndim == 2:
            return Image.fromarray(np.ascontiguousarray(a))      # mode I;16
        a = (a >> 8).astype(np.uint8)
    elif a.dtype.kind in "iuf":
        a = _numbers_to_uint8(a)
    else:
        raise ImageInputError(f"an image array must hold numbers, got dtype {a.dtype}")
    return Image.fromarray(np.ascontiguousarray(a))


def _numbers_to_uint8(a: np.ndarray) -> np.ndarray:
    """Numbers in [0, 1] (if no finite value exceeds 1) or 0..255 -> uint8, NaN -> 0, clipped.
    Works in chunks of rows, so a big float64 array needs no full-size temporaries."""
    rows = max(1, 2**22 // max(1, a[0].size))                    # ~4 M values a chunk
    hi = -math.inf
    for r in range(0, len(a), rows):
        chunk = a[r:r + rows]
        finite = chunk[np.isfinite(chunk)]
        if finite.size:
            hi = max(hi, float(finite.max()))
    scale = 255.0 if hi <= 1.0 else 1.0
    out = np.empty(a.shape, np.uint8)
    for r in range(0, len(a), rows):
        chunk = np.nan_to_num(a[r:r + rows].astype(np.float64), nan=0.0, posinf=255.0,
                              neginf=0.0)
        out[r:r + rows] = np.clip(chunk, 0.0, 255.0 / scale) * scale   # clip first: no overflow
    return out


# ---------------------------------------------------------------- PIL image -> grey floats

def _is_upscale(pil: Image.Image) -> bool:
    """Whether a square image of side 28 s is an exact nearest-neighbour upscale of a 28x28 one,
    checked one band of s rows at a time (in the image's own mode)."""
    n = pil.width
    if pil.height != n or n % SIDE:
        return False
    s = n // SIDE
    for i in range(SIDE):
        band = np.asarray(pil.crop((0, i * s, n, (i + 1) * s)))   # (s, n[, C])
        if (band != band[:1]).any():
            return False
        row = band[0].reshape(SIDE, s, -1)
        if (row != row[:, :1]).any():
            return False
    return True


def _shrink(pil: Image.Image) -> Image.Image:
    """A picture over WORK_SIDE a side -> box-averaged to at most WORK_SIDE a side (in its own
    mode, alpha premultiplied); an exact upscale of a 28x28 image -> its 56x56 upscale, so it
    is still recognised as one."""
    w, h = pil.size
    if max(w, h) <= WORK_SIDE:
        return pil
    if _is_upscale(pil):
        return pil.resize((2 * SIDE, 2 * SIDE), Image.Resampling.NEAREST)
    if pil.mode in ("P", "PA"):                                  # average colours, not indices
        pil = pil.convert("RGBA")
    elif pil.mode == "1":
        pil = pil.convert("L")
    factor = math.ceil(max(w, h) / WORK_SIDE)
    size = (max(1, w // factor), max(1, h // factor))
    return pil.resize(size, Image.Resampling.BOX)


def _gray_on_white(pil: Image.Image) -> np.ndarray:
    """Any PIL mode -> float (H, W) in 0..255, transparent parts composited on white."""
    if pil.mode in _WIDE:                                        # 16/32-bit: rescale to 8 bits
        a = np.asarray(pil, dtype=np.float64)
        finite = np.isfinite(a)
        if not finite.any():
            return np.zeros(a.shape)
        lo, hi = float(a[finite].min()), float(a[finite].max())
        a = np.nan_to_num(a, nan=lo, posinf=hi, neginf=lo)
        return np.zeros_like(a) if hi <= lo else (a - lo) * 255.0 / (hi - lo)
    try:
        if pil.mode == "La":
            pil = pil.convert("LA")
        if pil.mode in _ALPHA or pil.mode == "P" or "transparency" in pil.info:
            rgba = pil.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            pil = Image.alpha_composite(white, rgba)
        return np.asarray(pil.convert("L"), dtype=np.float64)
    except ValueError:
        raise ImageInputError(f"images in PIL mode {pil.mode!r} are not supported") from None


def _blocks_of(a: np.ndarray) -> np.ndarray | None:
    """If `a` is an exact nearest-neighbour upscale of a 28x28 image, that image; else None."""
    h, w = a.shape
    if h != w or h % SIDE:
        return None
    s = h // SIDE
    blocks = a.reshape(SIDE, s, SIDE, s)
    return blocks[:, 0, :, 0] if np.ptp(blocks, axis=(1, 3)).max() == 0 else None


# ---------------------------------------------------------------- the model's input

def to_model_input(image, dataset: str = "fashion-mnist") -> np.ndarray:
    """The uint8 (28, 28) white-on-black image a model sees for any picture.

    1. any mode (L, RGB, RGBA, P, I;16, ...) -> grey, transparency composited on white;
       a picture over WORK_SIDE a side is box-averaged down first;
    2. a light background (border median > 127) is inverted: the datasets are white on black;
    3. a 28x28 image is taken as it is; otherwise a blank one (all one grey, or nothing above
       8/255 once inverted) is refused;
    4. an exact nearest-neighbour upscale of a 28x28 image is taken as it is;
    5. otherwise the content's bounding box is fitted (aspect kept) into a 20x20 box for MNIST,
       28x28 for Fashion-MNIST, and its centre of mass moved to the centre, as the datasets were
       made.
    Raises ImageInputError (a ValueError) with a message for the user when it cannot.
    """
    a = _gray_on_white(_shrink(_open(image)))
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    if np.median(border) > 127:
        a = 255.0 - a
    if a.shape == (SIDE, SIDE):
        return np.clip(np.rint(a), 0, 255).astype(np.uint8)
    if np.ptp(a) == 0 or a.max() < 8:
        raise ImageInputError("the image is blank: nothing stands out from its background")
    small = _blocks_of(a)
    if small is not None:
        return np.clip(np.rint(small), 0, 255).astype(np.uint8)
    ink = a > 0.1 * float(a.max())
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    crop = a[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    box = FIT_BOX.get(dataset, SIDE)
    scale = box / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    fitted = np.asarray(Image.fromarray(crop.astype(np.float32), mode="F")
                        .resize(size, Image.Resampling.LANCZOS), dtype=np.float64)
    out = np.zeros((SIDE, SIDE))
    h, w = fitted.shape
    top, left = (SIDE - h) // 2, (SIDE - w) // 2
    out[top:top + h, left:left + w] = np.clip(fitted, 0, 255)
    mass = out.sum()
    if mass > 0:                                                 # centre of mass -> centre
        yy, xx = np.mgrid[:SIDE, :SIDE]
        dy = int(round((SIDE - 1) / 2 - (out * yy).sum() / mass))
        dx = int(round((SIDE - 1) / 2 - (out * xx).sum() / mass))
        dy = int(np.clip(dy, -top, SIDE - top - h))
        dx = int(np.clip(dx, -left, SIDE - left - w))
        out = np.roll(out, (dy, dx), axis=(0, 1))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- a folder of pictures

def read_folder(folder: Path, dataset: str = "") -> tuple[list[str], np.ndarray, list[tuple[str, str]]]:
    """Every picture under `folder` (subfolders included; hidden files and folders left out),
    each through to_model_input: (names relative to folder in sorted order, uint8 images
    (N, 28, 28), [(name, why) of every file that could not be read]). A file that is not a
    picture is skipped and reported, never fatal."""
    names, images, skipped = [], [], []
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        name = path.relative_to(folder).as_posix()
        if any(part.startswith(".") for part in Path(name).parts):
            continue
        try:
            images.append(to_model_input(path, dataset))
            names.append(name)
        except ImageInputError as e:
            skipped.append((name, str(e)))
    stack = np.stack(images) if images else np.zeros((0, SIDE, SIDE), dtype=np.uint8)
    return names, stack, skipped
