"""The page layer: views drawn by ES modules in ui/static/, and what page and server share.

A view is a gr.HTML whose template never changes (Gradio leaves its DOM alone after the first
render) and whose `js_on_load` is ui/static/on_load.js for every view: it imports the view's
module and calls its `mount({element, trigger, props, watch, manifest, config})`. The server
feeds a view through its value (the scrub's x_0, eps and tables; the run's latest message);
what the page owns (the step shown, the scrub's t) travels with the events the view triggers:
`trigger(name, data)`, read with `event_data`. Gradio registers a custom event of a gr.HTML only
for names quoted in its js_on_load, so on_load.js names them all (`VIEW_EVENTS`).

`MANIFEST` is everything page and server agree on (element ids, keys, picture geometry, array
formats); every view gets it with its config, so nothing is parsed back out of titles or file
names.
Files in ui/static/ are served as they are (`gr.set_static_paths`), no build step.
"""

from __future__ import annotations

import base64
import json
import types
from pathlib import Path

import gradio as gr
import numpy as np
from gradio.events import EventListener

STATIC = Path(__file__).resolve().parent / "static"
ON_LOAD = (STATIC / "on_load.js").read_text(encoding="utf-8")
VIEW_EVENTS = ("pick", "hover", "reset", "png", "draw", "export")

gr.set_static_paths(paths=[STATIC])


def static_url(name: str) -> str:
    """The URL of ui/static/<name>, relative to the page (so it works under any root path)."""
    return f"gradio_api/file={(STATIC / name).as_posix()}"


# element ids of the Gradio components the page scripts act on; everything else the page draws
# itself, inside its views
MAPS = ("vae-map", "vae2d-map", "hvae-map", "vdm-dissolve")      # plots whose points pick A / B
SKETCHES = ("sketch",)                                           # drawn on from the first stroke
KEYS = {"s": "step", "r": "run", "x": "stop", "p": "presenter",  # key -> action a view offers
        "ArrowLeft": "t-10", "ArrowRight": "t+10"}

MANIFEST = {
    "maps": list(MAPS),
    "sketches": list(SKETCHES),
    "keys": KEYS,
    "image": {"side": 28, "encoding": "base64 of uint8 pixels, row-major, 0 = black"},
    "float32": {"encoding": "base64 of little-endian float32, row-major"},
    "events": list(VIEW_EVENTS),
}


def view(name: str, elem_id: str, value=None, config: dict | None = None,
         server_functions: list | None = None) -> gr.HTML:
    """A view drawn by ui/static/views/<name>.js. What never changes (its module, the MANIFEST,
    `config`: constants of this view) is written into its template, base64 JSON, once; the
    server's data for it is its `value` (Gradio replaces a view's custom props when it updates a
    view not drawn yet, say in a tab not opened, so nothing lasting may live there). Its module
    may call `server_functions` (Gradio's: `server.<name>(data)`), each taking one argument."""
    for event in VIEW_EVENTS:
        assert f"'{event}'" in ON_LOAD, f"on_load.js must name the view event {event!r}"
    boot = base64.b64encode(json.dumps({"module": static_url(f"views/{name}.js"),
                                        "manifest": MANIFEST,
                                        "config": config or {}}).encode()).decode()
    return gr.HTML(value, html_template=f'<div class="le-view le-{name}" data-boot="{boot}"></div>',
                   js_on_load=ON_LOAD, apply_default_css=False, container=False,
                   elem_id=elem_id, server_functions=server_functions)


def view_event(view_: gr.HTML, name: str):
    """The view's event `name` (what its module triggers), bound to it as Gradio binds its own
    events, so it registers like any trigger: `view_event(v, "step")(fn, ...)` or in `gr.on`."""
    if name not in VIEW_EVENTS:
        raise ValueError(f"unknown view event {name!r}; valid: {', '.join(VIEW_EVENTS)}")
    return types.MethodType(EventListener(event_name=name).listener, view_)


# ---------------------------------------------------------------- arrays for the page

def uint8_b64(image: np.ndarray) -> str:
    """A uint8 picture as the page reads it (MANIFEST["image"])."""
    return base64.b64encode(np.ascontiguousarray(image, dtype=np.uint8).tobytes()).decode()


def float32_b64(values) -> str:
    """Numbers as little-endian float32 (MANIFEST["float32"])."""
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f4").tobytes()).decode()


def event_data(evt: gr.EventData | None) -> dict:
    """What a view sent with its trigger(name, data) ({} without any)."""
    data = getattr(evt, "_data", None)
    return data if isinstance(data, dict) else {}
