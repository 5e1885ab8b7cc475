"""Latent Explorer: `python app.py` serves the app on http://127.0.0.1:7860.

This file only composes: the shared input panel above one package per tab in ui/ (layout,
wiring, views), models loaded once in ui/store.py and shared read-only, per-session choices in
the page's components. The page's own code (ES modules and CSS in ui/static/) comes in through
its views (ui/page.py). Every event has an api_name, so the app is also an API
(`gradio_client.Client(url).view_api()`).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading

MODELS_ENV = "EXPLORER_MODELS"   # explorer.folder.MODELS_ENV (read when explorer.data is imported)


def models_from_argv(argv: list[str]) -> None:
    """`--models DIR` (repeatable): a set trained with `python -m explorer.train --data` shown
    as one more dataset in every tab. Put into $EXPLORER_MODELS before anything reads the
    datasets (explorer.data reads it once, at import)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--models", action="append", default=[])
    folders = parser.parse_known_args(argv)[0].models
    for folder in folders:
        if not os.path.isdir(folder):
            raise SystemExit(f"--models {folder}: not a folder (train one with python -m "
                             "explorer.train --data DIR --out <folder>/vdm)")
    if folders:
        os.environ[MODELS_ENV] = os.pathsep.join(
            [*filter(None, os.environ.get(MODELS_ENV, "").split(os.pathsep)), *folders])


if __name__ == "__main__":
    models_from_argv(sys.argv[1:])

from explorer import allocator  # noqa: E402

allocator.configure()            # before any thread starts (explorer/allocator.py)

import gradio as gr  # noqa: E402  (after the allocator is set)
from starlette.middleware import Middleware  # noqa: E402

from explorer.data import DATASETS  # noqa: E402
from ui import hvae, playground, talk, vae, vdm  # noqa: E402
from ui.common import friendly  # noqa: E402
from ui.compute import CrossOriginIsolation  # noqa: E402
from ui.events import api  # noqa: E402
from ui.guard import Blocks  # noqa: E402
from ui.page import event_data, view, view_event  # noqa: E402
from ui.panel import create_input_panel, hover_image, keyed, wire_input_panel  # noqa: E402
from ui.store import STORE  # noqa: E402

with Blocks(title="Latent Explorer") as demo:          # ui/guard.py: every input checked
    with gr.Row(equal_height=True, elem_id="top"):
        with gr.Column(scale=3, min_width=300):
            gr.Markdown("# Latent Explorer\nFrom autoencoders to diffusion models, one small "
                        "model at a time. Pick images A and B by clicking the gallery or a map, "
                        "upload or draw your own: every tab uses the same A and B.",
                        elem_id="title")
        with gr.Column(scale=1, min_width=260):
            dataset = gr.Radio(list(DATASETS), value=STORE.default_dataset(), label="dataset",
                               elem_id="dataset")
            # the page itself: its style, talk mode's keys, presenter mode, clicks on the maps
            page = view("page", "page", value={"presenter": False})
    with gr.Accordion("Scenes for a talk: bookmarkable links", open=False, elem_id="scenes"):
        gr.Markdown(talk.presets_markdown() + "\n\nOr by hand: `?tab=vae&dataset=mnist&a=12&"
                    "b=340`, `&t=600` (VDM), `&layer=2` (HVAE), `?tab=playground&data=spiral` (2-D playground), `&presenter=1`. Keys: **S** "
                    "step, **R** run, **X** stop, **←/→** move t by 10 (VDM tab), **P** presenter.")
    panel = create_input_panel(dataset.value)
    with gr.Tabs(overflow_behavior="wrap") as tabs:      # a phone: every tab in view, on two rows
        with gr.Tab("VAE", id="vae", elem_id="tab-vae"):
            vae_tab = vae.create(dataset.value)
        with gr.Tab("Hierarchical VAE", id="hvae", elem_id="tab-hvae"):
            hvae_tab = hvae.create(dataset.value)
        with gr.Tab("Diffusion (VDM)", id="vdm", elem_id="tab-vdm"):
            vdm_tab = vdm.create(dataset.value)
        with gr.Tab("2-D playground", id="playground", elem_id="tab-playground"):
            playground_tab = playground.create()

    wire_input_panel(panel, dataset, page, [vae_tab.header, hvae_tab.header, vdm_tab.header])
    vae.wire(vae_tab, page, dataset, panel)
    hvae.wire(hvae_tab, page, dataset, panel)
    vdm.wire(vdm_tab, page, dataset, panel)
    playground.wire(playground_tab, page)

    # the point under the mouse on a map: the page view says which map and which point
    hovered = {"vae-map": vae_tab.maps.hovered, "vae2d-map": vae_tab.hovered2d,
               "hvae-map": hvae_tab.maps.hovered}

    def hover(ds: str, evt: gr.EventData) -> tuple:
        data = event_data(evt)
        return tuple(hover_image(ds, data) if data.get("map") == key else gr.skip()
                     for key in hovered)
    view_event(page, "hover")(friendly(hover), dataset, list(hovered.values()),
                              api_name="map_hover", api_visibility="undocumented",
                              show_progress="hidden", trigger_mode="always_last")
    for name, output in (("vae", vae_tab.maps.hovered), ("vae2d", vae_tab.hovered2d),
                         ("hvae", hvae_tab.maps.hovered)):
        api(hover_image, [dataset, panel.map_payload], output, api_name=f"{name}_map_hover")

    demo.load(keyed(talk.apply), dataset, [dataset, tabs, page, vdm_tab.api.t, hvae_tab.res_layer,
                                           playground_tab.data, *panel.slots, *panel.keys],
              api_name="talk_scene", api_visibility="undocumented")

# Cheap events (encode, interpolate, sliders) run up to 4 at a time each; projections share one
# slot (concurrency_id "projection") so one user's t-SNE cannot starve the rest. Every call goes
# through the queue (the page, gradio_client, POST /gradio_api/call/<api_name>): api_open=False
# closes the direct route (POST /gradio_api/run/<api_name>) that would skip it.
demo.queue(default_concurrency_limit=4, api_open=False)


# Gradio keeps a copy of the page's component settings for every session it has seen, about
# 0.5 MB each here (measured: 20 new sessions, +11 MB of RSS), until the session count passes
# this cap and the least recently used go; its default, 10,000, would let a busy Space grow by
# gigabytes. State values of a closed tab are dropped by Gradio after an hour.
SESSIONS_KEPT = 500

# Gradio's cache (uploads, and a copy of every file an event returns): every 30 min, the files
# older than 3 hours go (and all of them when the server stops). Set for `python app.py` only:
# the tests launch and close this same Blocks several times, and a close would take the files
# the next launch's page still shows. The app's own output folder: ui/common.py, prune_files.
CACHE_PRUNING = (1800, 3 * 3600)


def warm_up() -> None:
    """Gallery latents and PCA maps of the default dataset first, so the first visitor of a
    fresh start (a Space waking up) does not wait for them."""
    first = STORE.default_dataset()
    for dataset in [first, *(d for d in DATASETS if d != first)]:
        vae.views.warm_up(dataset)
        hvae.views.warm_up(dataset)
        vdm.views.warm_up(dataset)


def launch(**options):
    """`demo.launch(**options)` with what every launch of this app needs: the page cross-origin
    isolated (ui/compute.py CrossOriginIsolation), so the networks it runs get threads."""
    return demo.launch(app_kwargs={"middleware": [Middleware(CrossOriginIsolation)]}, **options)


def main() -> None:
    parser = argparse.ArgumentParser(description="Latent Explorer")
    # Hugging Face Spaces (and Docker set-ups) say where to listen through Gradio's variables
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="interface to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--share", action="store_true", help="also serve on a public gradio.live link")
    parser.add_argument("--models", action="append", default=[], metavar="DIR",
                        help="a folder of models trained with python -m explorer.train --data "
                             f"(and its gallery.npz), shown as one more dataset (repeatable; or "
                             f"${MODELS_ENV}, folders separated by {os.pathsep!r})")
    args = parser.parse_args()
    demo.delete_cache = CACHE_PRUNING
    threading.Thread(target=warm_up, daemon=True).start()
    allocator.start_trimming()
    launch(server_name=args.host, server_port=args.port, share=args.share,
           state_session_capacity=SESSIONS_KEPT)


if __name__ == "__main__":
    main()
