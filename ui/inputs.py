"""The input panel both model tabs share: pick images A and B by clicking the gallery or a map,
by uploading any image, or by drawing one. Each slot shows exactly what the model sees.

A slot is a gallery index (None for an uploaded or drawn image) and a picture (the 28x28 input,
upscaled). Handlers downstream take (dataset, index, image): the picture wins when given.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import numpy as np

from explorer.report import card

from . import talk
from .bridge import parse_click
from .common import friendly, png_file, quiet, to_model_input, upscale
from .picture import Picture
from .store import MODEL_FILES, STORE, default_pair, gallery_image

GALLERY_PER_CLASS = 6          # thumbnails per class in the clickable gallery
THUMB_PIXEL = 4                # thumbnails at 112 x 112
TARGETS = ("A", "B")


@dataclass
class InputPanel:
    banner: gr.Markdown
    cards: gr.Markdown
    gallery: gr.Gallery
    target: gr.Radio
    a_index: gr.Number
    a_image: gr.Image
    b_index: gr.Number
    b_image: gr.Image
    upload: gr.Image
    sketch: gr.Sketchpad
    use_sketch: gr.Button

    @property
    def slots(self) -> list[gr.components.Component]:
        return [self.a_index, self.a_image, self.b_index, self.b_image]


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
        raise ValueError(f"target must be 'A' or 'B', got {target!r}")
    picked = (index, upscale(image))
    keep = (gr.skip(), gr.skip())
    return (*picked, *keep) if target == "A" else (*keep, *picked)


def pick_gallery(dataset: str, target: str, evt: gr.SelectData) -> tuple:
    """A click on thumbnail evt.index puts that gallery image in slot `target`."""
    index = int(gallery_picks(dataset)[evt.index])
    return _set(target, index, gallery_image(dataset, index))


def pick_index(dataset: str, index: float) -> np.ndarray:
    """Gallery image `index`, upscaled: what the model sees."""
    return upscale(gallery_image(dataset, index))


def pick_upload(dataset: str, target: str, path: str | None) -> tuple:
    """An uploaded picture of any size or format -> its 28x28 grey version in slot `target`."""
    if path is None:
        return tuple(gr.skip() for _ in range(4))
    return _set(target, None, to_model_input(path, dataset))


def pick_drawing(dataset: str, target: str, sketch: dict | None) -> tuple:
    """The drawing (black on white) -> a 28x28 white-on-black input in slot `target`."""
    if sketch is None:
        raise ValueError("the drawing is empty: pick the brush and draw first")
    return _set(target, None, to_model_input(sketch, dataset))


def pick_map(dataset: str, target: str, payload: str) -> tuple:
    """A click on a map point (payload JSON {"index": i}) puts gallery image i in `target`."""
    index = parse_click(payload)
    if index is None:
        return tuple(gr.skip() for _ in range(4))
    return _set(target, index, gallery_image(dataset, index))


def hover_image(dataset: str, payload: str) -> np.ndarray | None:
    """The gallery image under the mouse on a map (payload = its index), upscaled."""
    index = parse_click(payload)
    return None if index is None else upscale(gallery_image(dataset, index))


def banner_text(dataset: str, names: tuple[str, ...]) -> str:
    missing = STORE.missing(dataset, names)
    return "\n\n".join(f"**Not available:** {m}" for m in missing)


def model_cards(dataset: str, names: tuple[str, ...]) -> str:
    """What each model this tab runs on `dataset` is, from its record (explorer.report.card)."""
    return "\n\n".join(f"**The {MODEL_FILES[n][1]}** ({dataset}): "
                         f"{card(STORE.meta[(dataset, n)], STORE.model(dataset, n).config)}"
                         for n in names if (dataset, n) in STORE.models)


def reset(dataset: str, names: tuple[str, ...], scene: tuple | None = None) -> tuple:
    """A dataset switch: new thumbnails, images A and B (the defaults, or those of a bookmarked
    `scene` (a, b) being restored: ui/talk.py), the banner of missing models, the model cards."""
    banner, cards = banner_text(dataset, names), model_cards(dataset, names)
    if (dataset, "gallery") in STORE.errors:
        return (gr.update(value=[]), None, None, None, None, banner, cards)
    a, b = default_pair(dataset)
    if scene is not None:
        a, b = (d if s is None else s for s, d in zip(scene, (a, b)))
    thumbnails = gr.update(value=gallery_items(dataset), selected_index=None)
    return (thumbnails, a, pick_index(dataset, a), b, pick_index(dataset, b), banner, cards)


# ---------------------------------------------------------------- layout and wiring

def create_input_panel(dataset: str, prefix: str, names: tuple[str, ...]) -> InputPanel:
    """The panel's components, filled for `dataset` (the app's default)."""
    thumbnails, a, a_img, b, b_img, banner, cards = reset(dataset, names)
    banner = gr.Markdown(banner, elem_id=f"{prefix}-banner")
    with gr.Accordion("About the model: training, bits/dim, sample quality", open=False,
                      elem_id=f"{prefix}-about"):
        cards = gr.Markdown(cards, elem_id=f"{prefix}-cards")
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            gallery = gr.Gallery(thumbnails.get("value"), label="gallery: click an image",
                                 columns=10, height=300,
                                 allow_preview=False, format="png", elem_classes="pixelated",
                                 elem_id=f"{prefix}-gallery", object_fit="contain")
            with gr.Row():
                target = gr.Radio(list(TARGETS), value="A", label="a click puts the image in",
                                  elem_id=f"{prefix}-target")
                a_index = gr.Number(a, label="A: gallery index", precision=0, minimum=0,
                                    elem_id=f"{prefix}-a-index")
                b_index = gr.Number(b, label="B: gallery index", precision=0, minimum=0,
                                    elem_id=f"{prefix}-b-index")
        a_image = Picture(a_img, type="filepath", image_mode=None, format="png", height=300,
                           label="A: what the model sees (28x28)", interactive=False, scale=1,
                           elem_id=f"{prefix}-a", elem_classes="pixelated")
        b_image = Picture(b_img, type="filepath", image_mode=None, format="png", height=300,
                           label="B: what the model sees (28x28)", interactive=False, scale=1,
                           elem_id=f"{prefix}-b", elem_classes="pixelated")
    with gr.Accordion("Your own image: upload any picture or draw one", open=False):
        with gr.Row():
            upload = Picture(type="filepath", image_mode=None, height=300,
                              label="upload (any size, any format)",
                              sources=["upload", "clipboard"],
                              elem_id=f"{prefix}-upload")
            sketch = gr.Sketchpad(canvas_size=(280, 280), type="numpy", label="draw (brush first)",
                                  brush=gr.Brush(default_size=20, colors=["#000000"],
                                                 color_mode="fixed"),
                                  elem_id=f"{prefix}-sketch")
            with gr.Column():
                gr.Markdown("Uploads become grey, a light background is inverted (the data are "
                            "white on black), the content is fitted and centred in 28x28; the "
                            "slot shows the result.")
                use_sketch = gr.Button("use the drawing", elem_id=f"{prefix}-use-sketch")
    return InputPanel(banner, cards, gallery, target, a_index, a_image, b_index, b_image, upload,
                      sketch, use_sketch)


def wire_input_panel(panel: InputPanel, dataset: gr.Radio, prefix: str, names: tuple[str, ...],
                     map_clicks: list[gr.Textbox] = ()):
    """Every way of choosing an input; each event has an api_name `<prefix>_pick_...`.
    Returns the dataset-switch event, for the tab to chain its own updates with `.then`."""
    slots = panel.slots
    # a gallery click carries gr.SelectData, which an API call cannot send: private, and the API
    # has <prefix>_pick_index_a / _b (or an index passed straight to each view) instead
    panel.gallery.select(friendly(pick_gallery), [dataset, panel.target], slots,
                         api_name=f"{prefix}_pick_gallery", api_visibility="private",
                         show_progress="hidden")
    panel.a_index.submit(friendly(pick_index), [dataset, panel.a_index], panel.a_image,
                         api_name=f"{prefix}_pick_index_a", show_progress="hidden")
    panel.b_index.submit(friendly(pick_index), [dataset, panel.b_index], panel.b_image,
                         api_name=f"{prefix}_pick_index_b", show_progress="hidden")
    panel.upload.upload(friendly(pick_upload), [dataset, panel.target, panel.upload], slots,
                        api_name=f"{prefix}_pick_upload")
    panel.use_sketch.click(friendly(pick_drawing), [dataset, panel.target, panel.sketch], slots,
                           api_name=f"{prefix}_pick_drawing")
    for i, box in enumerate(map_clicks):
        box.change(friendly(pick_map), [dataset, panel.target, box], slots,
                   api_name=f"{prefix}_pick_map{i or ''}", show_progress="hidden")

    def _reset(ds: str, request: gr.Request) -> tuple:
        session = request.session_hash if request is not None else None
        return reset(ds, names, talk.pending(session, prefix, ds))
    return dataset.change(quiet(_reset, 7), dataset,
                          [panel.gallery, *slots, panel.banner, panel.cards],
                          api_name=f"{prefix}_dataset_switch", api_visibility="undocumented")
