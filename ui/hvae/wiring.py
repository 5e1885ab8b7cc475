"""The hierarchical-VAE tab's events: each view registered once for all its triggers
(ui/events.py `on`)."""

from __future__ import annotations

import gradio as gr

from ..events import on
from ..panel import InputPanel
from . import views, walk
from .layout import HVAETab

PROJECTION_LIMIT = dict(concurrency_limit=1, concurrency_id="projection")


def layer_bounds(dataset: str) -> tuple:
    """The three layer sliders on a dataset: maximum = its model's L, back at layer 1."""
    return views.layer_bounds(dataset, True)


def wire(tab: HVAETab, page: gr.HTML, dataset: gr.Radio, panel: InputPanel) -> None:
    a = [panel.a_index, panel.a_image]
    ab = [*a, panel.b_index, panel.b_image]
    slots_changed = [panel.a_key.change, panel.b_key.change]
    # the layer sliders follow the model's L: narrowed on load, and back to layer 1 on a switch
    page.load(views.layer_bounds, dataset, tab.layer_sliders, api_visibility="private")
    dataset.change(layer_bounds, dataset, tab.layer_sliders, api_visibility="private")

    on(views.encode, [dataset, *a, tab.seed], [tab.pair, tab.layers, tab.terms, tab.numbers],
       api_name="hvae_encode", user=[tab.seed.change], auto=[page.load, panel.a_key.change],
       show_progress="minimal")
    resample = [tab.res_button.click, tab.res_layer.change, tab.res_t.change, tab.res_n.change,
                tab.res_seed.change, tab.below.change]
    on(views.resample, [dataset, *a, tab.res_layer, tab.res_t, tab.res_n, tab.res_seed,
                        tab.below], tab.resampled, api_name="hvae_resample", user=resample,
       auto=[page.load, panel.a_key.change])
    on(views.interpolate, [dataset, *ab, tab.itp_layer, tab.frames],
       [tab.lerp, tab.slerp, tab.norms, tab.itp_gif], api_name="hvae_interpolate",
       user=[tab.itp_layer.change, tab.frames.change], auto=[page.load, *slots_changed])
    # the live walk: its ends once per A, B and layer; the page walks and decodes (walk.py)
    on(walk.view_data, [dataset, *ab, tab.itp_layer], tab.walk, api_name="hvae_walk_view",
       api_visibility="undocumented", user=[tab.itp_layer.change],
       auto=[page.load, *slots_changed])

    maps = tab.maps
    on(views.project, [dataset, maps.leading, maps.method, maps.perplexity, *ab, tab.frames],
       [maps.plot, maps.csv], api_name="hvae_project",
       user=[maps.compute.click, maps.method.change, maps.leading.change, tab.frames.change],
       auto=[page.load, *slots_changed], show_progress="full", **PROJECTION_LIMIT)
    dataset.change(lambda: None, None, maps.hovered, api_visibility="private")

    on(views.ancestral, [dataset, tab.anc_n, tab.anc_t, tab.anc_seed], tab.ancestral,
       api_name="hvae_sample", user=[tab.anc_n.change, tab.anc_t.change, tab.anc_seed.change],
       auto=[page.load, dataset.change])
