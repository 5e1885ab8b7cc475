"""The VAE tab's events: each view registered once, for the user's moves and for what the page
fires by itself (the page loading, a dataset switch, a new A or B): ui/events.py `on`."""

from __future__ import annotations

import gradio as gr

from ..events import on
from ..panel import InputPanel, banner_text
from . import views, walk
from .layout import VAETab

PROJECTION_LIMIT = dict(concurrency_limit=1, concurrency_id="projection")  # t-SNE: one at a time


def wire(tab: VAETab, page: gr.HTML, dataset: gr.Radio, panel: InputPanel) -> None:
    a = [panel.a_index, panel.a_image]
    ab = [*a, panel.b_index, panel.b_image]
    slots_changed = [panel.a_key.change, panel.b_key.change]

    on(views.encode, [dataset, *a, tab.k, tab.seed],
       [tab.pair, tab.posterior, tab.draws, tab.terms, tab.numbers], api_name="vae_encode",
       user=[tab.k.change, tab.seed.change], auto=[page.load, panel.a_key.change])
    on(views.sample, [dataset, tab.n, tab.temperature, tab.sample_seed], tab.samples,
       api_name="vae_sample", user=[tab.n.change, tab.temperature.change, tab.sample_seed.change],
       auto=[page.load, dataset.change])
    on(views.interpolate, [dataset, *ab, tab.frames],
       [tab.lerp, tab.slerp, tab.fade, tab.norms, tab.itp_gif], api_name="vae_interpolate",
       user=[tab.frames.change], auto=[page.load, *slots_changed])
    # the live walk: its ends once per A and B; the page walks and decodes (ui/vae/walk.py)
    on(walk.view_data, [dataset, *ab], tab.walk, api_name="vae_walk_view",
       api_visibility="undocumented", auto=[page.load, *slots_changed])

    maps = tab.maps
    # a new A or B (a dataset switch brings both) redraws the map: from the cache once fitted
    on(views.project, [dataset, maps.method, maps.perplexity, *ab, tab.frames],
       [maps.plot, maps.csv], api_name="vae_project",
       user=[maps.compute.click, maps.method.change, tab.frames.change],
       auto=[page.load, *slots_changed], show_progress="full", **PROJECTION_LIMIT)

    on(views.manifold, [dataset, tab.grid_n, tab.extent], tab.manifold, api_name="vae2d_grid",
       user=[tab.grid_n.change, tab.extent.change], auto=[page.load, dataset.change])
    dataset.change(lambda ds: (banner_text(ds, ("vae2d",)), None, None), dataset,
                   [tab.manifold_note, maps.hovered, tab.hovered2d], api_visibility="private")
