"""Latent Explorer: `python app.py` serves the app on http://127.0.0.1:7860.

This file only composes: one module per tab in ui/, models loaded once in ui/store.py and
shared read-only, per-session choices in the page's components. Every event has an api_name,
so the app is also an API (`gradio_client.Client(url).view_api()`).
"""

from __future__ import annotations

import argparse
import os
import threading

from explorer import allocator

allocator.configure()            # before any thread starts (explorer/allocator.py)

import gradio as gr  # noqa: E402  (after the allocator is set)

from explorer.data import DATASETS  # noqa: E402
from ui import hvae_views, talk, vae_views, vdm_views
from ui.bridge import JS, PRESENTER_JS
from ui.hvae_tab import create_hvae_tab
from ui.store import STORE
from ui.vae_tab import create_vae_tab
from ui.vdm_tab import create_vdm_tab

with gr.Blocks(title="Latent Explorer") as demo:
    gr.Markdown("# Latent Explorer\nFrom autoencoders to diffusion models, one small model at a "
                "time. Pick images by clicking a gallery or a map, upload or draw your own.")
    with gr.Row(equal_height=True):
        dataset = gr.Radio(list(DATASETS), value=STORE.default_dataset(), label="dataset",
                           elem_id="dataset", scale=2)
        presenter = gr.Checkbox(False, label="presenter mode: large type, high contrast (key P)",
                                elem_id="presenter", scale=1)
    with gr.Accordion("Scenes for a talk: bookmarkable links", open=False, elem_id="scenes"):
        gr.Markdown(talk.presets_markdown() + "\n\nOr by hand: `?tab=vae&dataset=mnist&a=12&"
                    "b=340`, `&t=600` (VDM), `&layer=2` (HVAE), `&presenter=1`. Keys: **S** "
                    "step, **R** run, **X** stop, **←/→** move t by 10 (VDM tab), **P** presenter.")
    with gr.Tabs() as tabs:
        with gr.Tab("VAE", id="vae", elem_id="tab-vae"):
            create_vae_tab(demo, dataset)
        with gr.Tab("Hierarchical VAE", id="hvae", elem_id="tab-hvae"):
            create_hvae_tab(demo, dataset)
        with gr.Tab("Diffusion (VDM)", id="vdm", elem_id="tab-vdm"):
            create_vdm_tab(demo, dataset)
    demo.load(None, js=JS)
    presenter.change(None, presenter, None, js=PRESENTER_JS)

    def _by_id(elem_id: str) -> gr.components.Component:
        return next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == elem_id)
    slots = [_by_id(f"{p}-{part}") for p in talk.PREFIXES
             for part in ("a-index", "a", "b-index", "b")]
    demo.load(talk.apply, dataset, [dataset, tabs, presenter, _by_id("vdm-t"),
                                    _by_id("hvae-res-layer"), *slots],
              api_name="talk_scene", api_visibility="undocumented")

# Cheap events (encode, interpolate, sliders) run up to 4 at a time each; projections share one
# slot (concurrency_id "projection") so one user's t-SNE cannot starve the rest.
demo.queue(default_concurrency_limit=4)


# Gradio keeps a copy of the page's component settings for every session it has seen, about
# 0.5 MB each here (measured: 20 new sessions, +11 MB of RSS), until the session count passes
# this cap and the least recently used go; its default, 10,000, would let a busy Space grow by
# gigabytes. State values of a closed tab are dropped by Gradio after an hour.
SESSIONS_KEPT = 500


def warm_up() -> None:
    """Gallery latents and PCA maps of the default dataset first, so the first visitor of a
    fresh start (a Space waking up) does not wait for them."""
    first = STORE.default_dataset()
    for dataset in [first, *(d for d in DATASETS if d != first)]:
        vae_views.warm_up(dataset)
        hvae_views.warm_up(dataset)
        vdm_views.warm_up(dataset)


def main() -> None:
    parser = argparse.ArgumentParser(description="Latent Explorer")
    # Hugging Face Spaces (and Docker set-ups) say where to listen through Gradio's variables
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="interface to listen on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--share", action="store_true", help="also serve on a public gradio.live link")
    args = parser.parse_args()
    threading.Thread(target=warm_up, daemon=True).start()
    allocator.start_trimming()
    demo.launch(server_name=args.host, server_port=args.port, share=args.share,
                state_session_capacity=SESSIONS_KEPT)


if __name__ == "__main__":
    main()
