"""Talk mode: scenes a speaker can bookmark, restored from the page's URL.

    ?preset=sneaker-dissolving            a named scene (PRESETS)
    ?tab=vae&dataset=mnist&a=12&b=340     or the parts by hand: tab, dataset, a, b (a gallery
    &t=600&layer=2&presenter=1            index, or a class name such as Sneaker), t (VDM tab),
                                          layer (HVAE tab), presenter
    ?tab=playground&data=spiral           the 2-D playground on one of its data sets

`scene_from_query` turns the query into a `Scene` (an unknown preset or a bad value is refused
with a message listing what is valid); `apply` is the page-load handler that shows it. A dataset
switch resets images A and B, so the scene also leaves its A and B with the session (`pending`);
the input panel takes them from there when the switch arrives (ui/panel.py). Keyboard shortcuts
and the presenter look live in the page (ui/static/views/page.js).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace

import gradio as gr
import numpy as np

from explorer.data import DATASETS
from explorer.toy.data import SETS as TOY_SETS

from .common import check_int
from .store import STORE

TABS = ("vae", "hvae", "vdm", "playground")


@dataclass(frozen=True)
class Scene:
    """What a bookmark restores; None leaves that part as the page has it."""
    dataset: str | None = None
    tab: str | None = None
    a: int | str | None = None        # gallery index, or a class name: its first gallery image
    b: int | str | None = None
    t: int | None = None              # the VDM tab's t slider
    layer: int | None = None          # the HVAE tab's resampled layer
    data: str | None = None           # the 2-D playground's data set
    presenter: bool = False


PRESETS: dict[str, tuple[str, Scene]] = {
    "sneaker-dissolving": ("a sneaker dissolving into noise (VDM tab: move t, then Step / Run)",
                           Scene("fashion-mnist", "vdm", a="Sneaker", b="Ankle boot", t=450)),
    "three-to-eight": ("a 3 turning into an 8 (VAE tab: lerp, slerp and the pixel cross-fade)",
                       Scene("mnist", "vae", a="3", b="8")),
    "hvae-layers": ("what each HVAE layer encodes (resample the top layer, keep the rest)",
                    Scene("fashion-mnist", "hvae", a="Ankle boot", b="Bag", layer=2)),
    "digit-denoising": ("a digit rebuilt from noise, step by step (VDM tab on MNIST)",
                        Scene("mnist", "vdm", a="7", b="1", t=600)),
}


def _index(dataset: str, value: int | str) -> int:
    """Gallery index `value` (an int), or the first gallery image of the class named `value` (a
    str, so "3" is MNIST's class 3; the URL turns digits into an int)."""
    gallery = STORE.gallery(dataset)
    names = list(gallery.class_names)
    if isinstance(value, str):
        if value not in names:
            raise ValueError(f"unknown class {value!r} in {dataset}; valid: {', '.join(names)}")
        return int(np.flatnonzero(gallery.labels == names.index(value))[0])
    return check_int("gallery index", value, 0, len(gallery) - 1)


def scene_from_query(query: dict[str, str]) -> Scene | None:
    """The Scene a URL names (None when it names none). Raises ValueError on a bad part."""
    query = {k: v for k, v in query.items() if v not in (None, "")}
    keys = {"preset", "tab", "dataset", "a", "b", "t", "layer", "data", "presenter"}
    if not keys & set(query):
        return None
    scene = Scene()
    if "preset" in query:
        if query["preset"] not in PRESETS:
            raise ValueError(f"unknown preset {query['preset']!r}; valid: {', '.join(PRESETS)}")
        scene = PRESETS[query["preset"]][1]
    if "tab" in query and query["tab"] not in TABS:
        raise ValueError(f"unknown tab {query['tab']!r}; valid: {', '.join(TABS)}")
    if "dataset" in query and query["dataset"] not in DATASETS:
        raise ValueError(f"unknown dataset {query['dataset']!r}; valid: {', '.join(DATASETS)}")
    if "data" in query and query["data"] not in TOY_SETS:
        raise ValueError(f"unknown data {query['data']!r}; valid: {', '.join(TOY_SETS)}")
    parts = {k: query[k] for k in ("tab", "dataset", "data") if k in query}
    for k in ("a", "b"):                        # digits: a gallery index; else a class name
        if k in query:
            value = query[k].strip()
            parts[k] = int(value) if value.lstrip("-").isdigit() else value
    if "t" in query:
        parts["t"] = check_int("t", query["t"], 0, 100_000)
    if "layer" in query:
        parts["layer"] = check_int("layer", query["layer"], 1, 16)
    if "presenter" in query:
        parts["presenter"] = query["presenter"].lower() in ("1", "true", "yes", "on")
    return replace(scene, **parts)


# ---------------------------------------------------------------- what each session still awaits

_pending: OrderedDict[str, tuple[float, tuple[str, int | None, int | None]]] = OrderedDict()
_guard = threading.Lock()
_KEEP_S, _KEEP_N = 120.0, 1000


def _leave(session: str, slots: tuple[str, int | None, int | None]) -> None:
    with _guard:
        _pending[session] = (time.monotonic(), slots)
        while len(_pending) > _KEEP_N or (
                _pending and time.monotonic() - next(iter(_pending.values()))[0] > _KEEP_S):
            _pending.popitem(last=False)


def pending(session: str | None, dataset: str) -> tuple[int | None, int | None] | None:
    """The (A, B) a scene left for this session on `dataset`, taken once."""
    if session is None:
        return None
    with _guard:
        entry = _pending.get(session)
        if entry is None or entry[1][0] != dataset:
            return None
        del _pending[session]
    return entry[1][1], entry[1][2]


# ---------------------------------------------------------------- the page-load handler

def apply(current_dataset: str, request: gr.Request) -> tuple:
    """Show the scene the URL names. Returns updates of (dataset, tabs, the page view (presenter
    mode), the t a scene asks the VDM tab's scrub for, the HVAE layer, the playground's data
    set, then a_index, a_image, b_index, b_image)."""
    from .panel import pick_index                                 # (panel imports this module)
    nothing = (gr.skip(),) * 10
    try:
        scene = scene_from_query(dict(request.query_params) if request else {})
    except ValueError as e:
        gr.Warning(f"The link's scene cannot be shown: {e}")
        return nothing
    if scene is None:
        return nothing
    dataset = scene.dataset or current_dataset
    try:
        a = None if scene.a is None else _index(dataset, scene.a)
        b = None if scene.b is None else _index(dataset, scene.b)
    except ValueError as e:
        gr.Warning(f"The link's scene cannot be shown: {e}")
        return nothing
    slots: list = []
    for index in (a, b):
        slots += [gr.skip(), gr.skip()] if index is None else [index, pick_index(dataset, index)]
    if request is not None and dataset != current_dataset and (a is not None or b is not None):
        _leave(request.session_hash, (dataset, a, b))
    skip = gr.skip()
    return (dataset if scene.dataset else skip,
            gr.Tabs(selected=scene.tab) if scene.tab else skip,
            {"presenter": True} if scene.presenter else skip,
            scene.t if scene.t is not None else skip,
            scene.layer if scene.layer is not None else skip,
            scene.data if scene.data is not None else skip,
            *slots)


def presets_markdown() -> str:
    """The list of presets as links, for the page."""
    return " · ".join(f"[{text}](?preset={name})" for name, (text, _) in PRESETS.items())
