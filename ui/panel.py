"""The input panel every tab shares: pick images A and B by clicking the gallery or a map, by
uploading any image, or by drawing one. One panel above the tabs, so an image chosen in one tab
is A or B in every tab (a talk follows one sneaker from the VAE to the VDM). Each slot shows
exactly what the model sees.

A slot is a gallery index (None for an uploaded or drawn image) and a picture (the 28x28 input,
upscaled). Handlers downstream take (dataset, index, image): the picture wins when given.

A pick that fails (a file that is not a picture, an empty drawing) says why in a toast and leaves
both slots as they were; through the API it is an error. Each tab has a header of its own
(`TabHeader`): the banner of missing models and what its models are.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass

import gradio as gr
import numpy as np

from explorer.report import card

from . import talk
from .common import friendly, png_file, to_model_input, upscale
from .page import event_data, view_event
from .guard import NO_UPLOAD, optional
from .picture import Drawing, Picture, Unreadable
from .plots import sampler_quality_plot
from .store import MODEL_FILES, STORE, default_pair, gallery_image

GALLERY_PER_CLASS = 6          # thumbnails per class in the clickable gallery
GALLERY_COLUMNS = 6            # one row per class: fits the panel at 1280 px and wider
THUMB_PIXEL = 4                # thumbnails at 112 x 112
TARGETS = ("A", "B")
PREFIXES = ("vae", "hvae", "vdm")    # the tabs' own names of the panel's API endpoints


@dataclass
class InputPanel:
    gallery: gr.Gallery
    target: gr.Radio
    a_index: gr.Number
    a_image: gr.Image
    b_index: gr.Number
    b_image: gr.Image
    upload: gr.Image
    sketch: Drawing
    use_sketch: gr.Button
    map_payload: gr.Textbox            # the API's map click (JSON {"index": i}); hidden
    # What the views of A and B follow: a new key each time the page puts a picture in the slot
    # (`keyed`). Not the pictures' own change events: Gradio's Image fires `change` whenever its
    # value is replaced by an equal copy, which the page does while events that read the slot
    # come and go; measured on tiny models after a dataset switch, every view of A and B then
    # ran again every few seconds, for good, the page's main thread busy all along. A State's
    # change is decided on the server, from its value.
    a_key: gr.State
    b_key: gr.State

    @property
    def slots(self) -> list[gr.components.Component]:
        return [self.a_index, self.a_image, self.b_index, self.b_image]

    @property
    def keys(self) -> list[gr.State]:
        return [self.a_key, self.b_key]


@dataclass
class TabHeader:
    """A tab's banner (models missing on this dataset) and its models' records."""
    names: tuple[str, ...]
    banner: gr.Markdown
    cards: gr.Markdown
    quality: gr.Plot | None = None    # the VDM's sample distance against NFE, per sampler


# ---------------------------------------------------------------- handlers (API-friendly)

def gallery_picks(dataset: str) -> np.ndarray:
    """Indices of the thumbnails: the first GALLERY_PER_CLASS gallery images of every class."""
    labels = STORE.gallery(dataset).labels
    return np.concatenate([np.flatnonzero(labels == c)[:GALLERY_PER_CLASS]
                           for c in range(int(labels.max()) + 1)])


def gallery_items(dataset: str) -> list[tuple[str, str]]:
    """(PNG path, caption) of every thumbnail."""
    gallery = STORE.gallery(dataset)
    names = gallery.class_names
    return [(png_file(upscale(gallery.images[i], THUMB_PIXEL)), f"#{i} {names[gallery.labels[i]]}")
            for i in gallery_picks(dataset)]


def _set(target: str, index: int | None, image: np.ndarray) -> tuple:
    """Updates of (a_index, a_image, b_index, b_image) that put a picture in slot `target`."""
    if target not in TARGETS:
        raise ValueError(f"target: {target!r} is not valid; valid: 'A' or 'B'")
    picked = (index, upscale(image))
    keep = (gr.skip(), gr.skip())
    return (*picked, *keep) if target == "A" else (*keep, *picked)


def _refused(param: str, message: str, evt: gr.EventData | None) -> tuple:
    """A pick that cannot be made: from the page, a toast and both slots left as they were
    (the event must not fail, or Gradio marks every slot as failed); through the API, an
    error naming the parameter."""
    if getattr(evt, "target", None) is None:
        raise ValueError(f"{param}: {message}")
    gr.Warning(message, title="That image cannot be used")
    return (gr.skip(),) * 4


def pick_gallery(dataset: str, target: str, evt: gr.SelectData) -> tuple:
    """A click on thumbnail evt.index puts that gallery image in slot `target`."""
    index = int(gallery_picks(dataset)[evt.index])
    return _set(target, index, gallery_image(dataset, index))


def pick_index(dataset: str, index: float) -> np.ndarray:
    """Gallery image `index`, upscaled: what the model sees."""
    return upscale(gallery_image(dataset, index))


def pick_upload(dataset: str, target: str, path, evt: gr.EventData = None) -> tuple:
    """An uploaded picture of any size or format -> its 28x28 grey version in slot `target`."""
    if path is None:
        if getattr(evt, "target", None) is None:                # the API: say what is missing
            raise ValueError(f"path: {NO_UPLOAD}")
        return (gr.skip(),) * 4                                 # the page: the upload cleared
    if isinstance(path, Unreadable):
        return _refused("path", path.message, evt)
    try:
        return _set(target, None, to_model_input(path, dataset))
    except ValueError as e:
        return _refused("path", str(e), evt)


def pick_drawing(dataset: str, target: str, sketch: dict | None,
                 evt: gr.EventData = None) -> tuple:
    """The drawing (black on white) -> a 28x28 white-on-black input in slot `target`."""
    try:
        if sketch is None:
            raise ValueError("the drawing is empty: draw on the canvas first")
        if isinstance(sketch, Unreadable):
            raise ValueError(sketch.message)
        return _set(target, None, to_model_input(sketch, dataset))
    except ValueError as e:
        return _refused("sketch", str(e), evt)


def _click_index(payload) -> int | None:
    """The gallery index in a map click ({"index": 12, ...}, its JSON, or '12'), or None."""
    import json
    if payload in (None, ""):
        return None
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except json.JSONDecodeError:
            raise ValueError(f"payload: {payload!r} is not valid; valid: JSON like "
                             '{"index": 3}') from None
    index = payload.get("index") if isinstance(payload, dict) else payload
    if not isinstance(index, int) or isinstance(index, bool):
        raise ValueError(f"payload: {payload!r} is not valid; valid: a whole number (a gallery "
                         'index) or JSON like {"index": 3}')
    return index


def pick_map(dataset: str, target: str, payload) -> tuple:
    """A click on a map point (payload {"index": i}, or its JSON) puts gallery image i in
    `target`."""
    index = _click_index(payload)
    if index is None:
        raise ValueError(f"payload: {payload!r} is not valid; valid: a gallery index or JSON "
                         'like {"index": 3}')
    return _set(target, index, gallery_image(dataset, index, "payload"))


def pick_map_event(dataset: str, target: str, evt: gr.EventData) -> tuple:
    """A point clicked on one of the page's maps (the page view's 'pick': {map, index})."""
    return pick_map(dataset, target, event_data(evt))


def hover_image(dataset: str, payload) -> np.ndarray | None:
    """The gallery image under the mouse on a map (payload = its index), upscaled."""
    index = _click_index(payload)
    return None if index is None else upscale(gallery_image(dataset, index, "payload"))


def banner_text(dataset: str, names: tuple[str, ...]) -> str:
    missing = STORE.missing(dataset, names)
    return "\n\n".join(f"**Not available:** {m}" for m in missing)


def model_cards(dataset: str, names: tuple[str, ...]) -> str:
    """What each model this tab runs on `dataset` is, from its record (explorer.report.card)."""
    return "\n\n".join(f"**The {MODEL_FILES[n][1]}** ({dataset}): "
                       f"{card(STORE.meta[(dataset, n)], STORE.model(dataset, n).config)}"
                       for n in names if (dataset, n) in STORE.models)


def reset(dataset: str, scene: tuple | None = None) -> tuple:
    """A dataset switch: new thumbnails and images A and B (the defaults, or those of a
    bookmarked `scene` (a, b) being restored: ui/talk.py)."""
    if (dataset, "gallery") in STORE.errors:
        return (gr.update(value=[]), None, None, None, None)
    a, b = default_pair(dataset)
    if scene is not None:
        a, b = (d if s is None else s for s, d in zip(scene, (a, b)))
    thumbnails = gr.update(value=gallery_items(dataset), selected_index=None)
    return (thumbnails, a, pick_index(dataset, a), b, pick_index(dataset, b))


# ---------------------------------------------------------------- layout

def quality_figure(dataset: str):
    """The VDM's sample distance against network evaluations on `dataset` (None: no scores)."""
    meta = STORE.meta.get((dataset, "vdm")) if (dataset, "vdm") in STORE.models else None
    return sampler_quality_plot((meta or {}).get("samples") or {})


def create_tab_header(dataset: str, prefix: str, names: tuple[str, ...],
                      quality: bool = False) -> TabHeader:
    """A tab's banner and "About the model", filled for `dataset` (the app's default); with
    `quality`, the VDM's samplers' quality against their cost, plotted."""
    banner = gr.Markdown(banner_text(dataset, names), elem_id=f"{prefix}-banner")
    with gr.Accordion("About the model: training, bits/dim, sample quality", open=False,
                      elem_id=f"{prefix}-about"):
        cards = gr.Markdown(model_cards(dataset, names), elem_id=f"{prefix}-cards")
        plot = (gr.Plot(quality_figure(dataset), label="samplers: quality against cost",
                        elem_id=f"{prefix}-quality") if quality else None)
    return TabHeader(names, banner, cards, plot)


def create_input_panel(dataset: str) -> InputPanel:
    """The panel's components, filled for `dataset` (the app's default)."""
    thumbnails, a, a_img, b, b_img = reset(dataset)
    with gr.Row(equal_height=False, elem_id="panel"):
        with gr.Column(scale=3, min_width=320):
            gallery = gr.Gallery(thumbnails.get("value"), label="gallery: click an image",
                                 columns=GALLERY_COLUMNS, height=300, allow_preview=False,
                                 format="png", elem_classes="pixelated", elem_id="gallery",
                                 object_fit="contain")
            with gr.Row():
                target = gr.Radio(list(TARGETS), value="A", label="a click puts the image in",
                                  elem_id="target")
                a_index = optional(gr.Number(a, label="A: gallery index", precision=0,
                                             minimum=0, elem_id="a-index"))
                b_index = optional(gr.Number(b, label="B: gallery index", precision=0,
                                             minimum=0, elem_id="b-index"))
        with gr.Column(scale=2, min_width=300):
            with gr.Row(elem_classes="le-slots"):
                a_image = Picture(a_img, type="filepath", image_mode=None, format="png",
                                  height=240, label="A (28x28)",
                                  buttons=["download", "fullscreen"],
                                  interactive=False, elem_id="a", elem_classes="pixelated",
                                  min_width=140)
                b_image = Picture(b_img, type="filepath", image_mode=None, format="png",
                                  height=240, label="B (28x28)",
                                  buttons=["download", "fullscreen"],
                                  interactive=False, elem_id="b", elem_classes="pixelated",
                                  min_width=140)
    with gr.Accordion("Your own image: upload any picture or draw one", open=False,
                      elem_id="own-image"):
        with gr.Row():
            upload = Picture(type="filepath", image_mode=None, height=300,
                             label="upload (any size, any format)",
                             sources=["upload", "clipboard"], elem_id="upload")
            sketch = Drawing(canvas_size=(280, 280), type="numpy", label="draw",
                                  brush=gr.Brush(default_size=20, colors=["#000000"],
                                                 color_mode="fixed"),
                                  elem_id="sketch")
            with gr.Column():
                gr.Markdown("Uploads become grey, a light background is inverted (the data are "
                            "white on black), the content is fitted and centred in 28x28; the "
                            "slot shows the result. Draw in black, then put the drawing in the "
                            "slot the gallery clicks go to.")
                use_sketch = gr.Button("use the drawing", elem_id="use-sketch")
    map_payload = gr.Textbox(visible=False, label="map click (JSON)")
    return InputPanel(gallery, target, a_index, a_image, b_index, b_image, upload, sketch,
                      use_sketch, map_payload, gr.State(""), gr.State(""))


def _key(update) -> str | dict:
    """A new key for a slot an event sets (or clears); gr.skip() for a slot it leaves alone."""
    left_alone = isinstance(update, dict) and update == gr.skip()
    return gr.skip() if left_alone else uuid.uuid4().hex


def keyed(fn):
    """`fn`, whose result ends with the slots' updates (a_index, a_image, b_index, b_image),
    followed by the slots' keys (InputPanel.a_key, .b_key): its event's outputs end with
    `panel.slots` then `panel.keys`."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        out = fn(*args, **kwargs)
        return (*out, _key(out[-3]), _key(out[-1]))
    return wrapper


def _keyed_one(fn):
    """`fn`, whose result is one slot's picture, followed by that slot's key."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        picture = fn(*args, **kwargs)
        return picture, _key(picture)
    return wrapper


# ---------------------------------------------------------------- wiring

def wire_input_panel(panel: InputPanel, dataset: gr.Radio, page: gr.HTML,
                     headers: list[TabHeader]) -> gr.Dependency:
    """Every way of choosing an input. The page's events are `pick_*`; the API keeps the
    names each tab had for them (`<prefix>_pick_*`, `<prefix>_map_hover`). Returns the dataset
    switch (its slots update: views of A and B follow through the slots' keys)."""
    from .events import api
    slots = [*panel.slots, *panel.keys]                  # what the page's picks update
    hidden = dict(show_progress="hidden")
    # a gallery click carries gr.SelectData, which an API call cannot send: private, and the API
    # has pick_index_a / _b (or an index passed straight to each view) instead
    panel.gallery.select(friendly(keyed(pick_gallery)), [dataset, panel.target], slots,
                         api_name="pick_gallery", api_visibility="private", **hidden)
    index_a = panel.a_index.submit(friendly(_keyed_one(pick_index)), [dataset, panel.a_index],
                                   [panel.a_image, panel.a_key], api_name="pick_index_a",
                                   **hidden)
    index_b = panel.b_index.submit(friendly(_keyed_one(pick_index)), [dataset, panel.b_index],
                                   [panel.b_image, panel.b_key], api_name="pick_index_b",
                                   **hidden)
    panel.upload.upload(friendly(keyed(pick_upload)), [dataset, panel.target, panel.upload],
                        slots, api_name="pick_upload")
    panel.use_sketch.click(friendly(keyed(pick_drawing)), [dataset, panel.target, panel.sketch],
                           slots, api_name="pick_drawing")
    view_event(page, "pick")(friendly(keyed(pick_map_event)), [dataset, panel.target], slots,
              api_name="pick_map_point", api_visibility="undocumented", **hidden)
    for prefix in PREFIXES:                              # (no page fires these: no keys)
        api(pick_index, [dataset, panel.a_index], panel.a_image, api_name=f"{prefix}_pick_index_a")
        api(pick_index, [dataset, panel.b_index], panel.b_image, api_name=f"{prefix}_pick_index_b")
        api(pick_upload, [dataset, panel.target, panel.upload], panel.slots,
            api_name=f"{prefix}_pick_upload")
        api(pick_drawing, [dataset, panel.target, panel.sketch], panel.slots,
            api_name=f"{prefix}_pick_drawing")
        api(pick_map, [dataset, panel.target, panel.map_payload], panel.slots,
            api_name=f"{prefix}_pick_map")
    del index_a, index_b

    @keyed
    def _reset(ds: str, request: gr.Request) -> tuple:
        session = request.session_hash if request is not None else None
        return reset(ds, talk.pending(session, ds))
    switch = dataset.change(friendly(_reset), dataset, [panel.gallery, *slots],
                            api_name="dataset_switch", api_visibility="undocumented")
    def _headers(ds: str) -> tuple:
        return tuple(value for h in headers
                     for value in (banner_text(ds, h.names), model_cards(ds, h.names),
                                   *([quality_figure(ds)] if h.quality is not None else [])))
    dataset.change(_headers, dataset,
                   [c for h in headers for c in (h.banner, h.cards, h.quality) if c is not None],
                   api_visibility="private")
    return switch
