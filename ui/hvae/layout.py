"""The hierarchical-VAE tab's layout: latents and ELBO terms per layer, resampling one layer,
interpolation and maps at a chosen layer, ancestral sampling level by level. `create(dataset)`
makes the components; wiring.py connects them to views.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ..common import caption, file_out, picture_out, seed_box
from ..maps import MapPanel, create_map_panel
from ..page import view
from ..panel import TabHeader, create_tab_header
from . import views, walk as walk_

NAMES = ("hvae",)


@dataclass
class HVAETab:
    header: TabHeader
    seed: gr.Number
    pair: gr.Image
    terms: gr.Markdown
    numbers: gr.JSON
    layers: gr.Plot
    res_layer: gr.Slider
    res_t: gr.Slider
    res_n: gr.Slider
    res_seed: gr.Number
    below: gr.Radio
    res_button: gr.Button
    resampled: gr.Image
    itp_layer: gr.Slider
    frames: gr.Slider
    lerp: gr.Image
    slerp: gr.Image
    norms: gr.Plot
    itp_gif: gr.File
    maps: MapPanel
    anc_n: gr.Slider
    anc_t: gr.Slider
    anc_seed: gr.Number
    ancestral: gr.Image
    walk: gr.HTML

    @property
    def layer_sliders(self) -> list[gr.Slider]:
        return [self.res_layer, self.itp_layer, self.maps.leading]


def create(dataset: str) -> HVAETab:
    """The tab's components, for `dataset` (the app's default)."""
    header = create_tab_header(dataset, "hvae", NAMES)

    def layer_slider(elem_id: str) -> gr.Slider:
        # the page narrows the range to the model's L on load and on a dataset switch
        return gr.Slider(1, views.LAYER_MAX, value=1, step=1, label="layer k (1 = next to x)",
                         elem_id=elem_id)

    gr.Markdown("## Encoder: image A, layer by layer")
    caption("The encoder is a chain $q(z_1|x)\\,q(z_2|z_1) \\cdots q(z_L|z_{L-1})$, shown at its "
            "means; the decoder runs back down, $p(z_L)\\,p(z_{L-1}|z_L) \\cdots p(x|z_1)$. "
            "The loss splits as the seeds write it: $-\\mathrm{ELBO} = -\\log p(x|z_1) + "
            "\\sum_{l=1}^{L-1} \\underbrace{\\mathbb{E}_q[\\log q(z_l|z_{l-1}) - \\log "
            "p(z_l|z_{l+1})]}_{\\text{consistency}_l} + \\underbrace{\\mathrm{KL}(q(z_L|z_{L-1})"
            "\\,\\|\\,p(z_L))}_{\\text{prior matching}}$ (one seeded draw). Active units: "
            "dims with $\\mathrm{Var}_x(\\mathbb{E}_q[z_l]) > 0.01$ over the gallery.")
    seed = seed_box(label="seed of the draw z ~ q",
                     elem_id="hvae-seed")
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            pair = picture_out("hvae-recon", "x and its reconstruction", height=300)
            terms = gr.Markdown(elem_id="hvae-terms", elem_classes="le-table")
            with gr.Accordion("all numbers (JSON)", open=False):
                numbers = gr.JSON(elem_id="hvae-numbers")
        layers = gr.Plot(label="latents per layer", elem_id="hvae-layers", scale=2)

    gr.Markdown("## Resample one layer: what each level encodes")
    caption("Keep the layers above $k$ at the encoder's means of A, draw "
            "$z_k \\sim p(z_k|z_{k+1})$ with its standard deviation times $T$ "
            "($\\mathcal{N}(0, T^2 I)$ for the top layer), and let the layers below follow at "
            "their prior means (or drawn too). $x$ depends on $z_1$ only, so what changes across "
            "the draws is what layer $k$ decides.")
    with gr.Row():
        res_layer = layer_slider("hvae-res-layer")
        res_t = gr.Slider(0, 2, value=1, step=0.05, label="temperature T", elem_id="hvae-res-t")
        res_n = gr.Slider(1, views.SAMPLES_MAX, value=8, step=1, label="draws",
                          elem_id="hvae-res-n")
        res_seed = seed_box(label="seed", elem_id="hvae-res-seed")
        below = gr.Radio(list(views.BELOW), value="prior mean", label="layers below k",
                         elem_id="hvae-below")
    res_button = gr.Button("resample layer k", variant="primary", elem_id="hvae-resample")
    resampled = picture_out("hvae-resampled", "x, reconstruction, draws with layer k resampled")

    gr.Markdown("## Interpolation at layer k")
    caption("Move only $z_k$ from A's encoder mean to B's (lerp, slerp); the layers below follow "
            "at their prior means $\\mathbb{E}[p(z_{l}|z_{l+1})]$. At $k = 1$ this is a plain "
            "latent interpolation; higher up, the end frames show what layer $k$ keeps of A and "
            "B. Drag $w$ or press Play: this browser decodes each frame as you move; the strips "
            "below are for slides.")
    itp_layer = layer_slider("hvae-itp-layer")
    walk = view("walk", "hvae-walk", config=walk_.CONFIG, server_functions=[walk_.frames])
    frames = gr.Slider(2, views.FRAMES_MAX, value=8, step=1, label="frames N",
                       elem_id="hvae-frames")
    lerp_img = picture_out("hvae-lerp", "lerp")
    slerp_img = picture_out("hvae-slerp", "slerp")
    norms = gr.Plot(label="||z_k|| along each path", elem_id="hvae-norms")
    with gr.Row(equal_height=True):
        itp_gif = file_out("hvae-itp-gif", "GIF of the interpolation")
        caption("For slides: slerp and lerp of $z_k$ side by side, A to B and back, looping "
                "smoothly.")

    gr.Markdown("## Map of one layer's latents")
    caption("The gallery's encoder means at layer $k$, mapped by PCA or t-SNE and coloured by "
            "class. A and B are placed on the map; on PCA the paths of $z_k$ are drawn. Hover a "
            "point to see it; click it to make it image A or B. Compare the layers: which one "
            "sorts the gallery by class, and which one mixes the classes?")
    maps = create_map_panel("hvae", lambda: layer_slider("hvae-map-layer"))

    gr.Markdown("## Ancestral sampling, level by level")
    caption("$z_L \\sim \\mathcal{N}(0, T^2 I)$, then $z_{l-1} \\sim p(z_{l-1}|z_l)$ (std times "
            "$T$) down to $x = \\mathbb{E}[p(x|z_1)]$. Row $z_l$ decodes the sample's $z_l$ "
            "with the layers below at their prior means: top rows show what the upper layers "
            "alone decide, the last row is the sample.")
    with gr.Row():
        anc_n = gr.Slider(1, views.SAMPLES_MAX, value=8, step=1, label="samples",
                          elem_id="hvae-anc-n")
        anc_t = gr.Slider(0, 2, value=1, step=0.05, label="temperature T", elem_id="hvae-anc-t")
        anc_seed = seed_box(label="seed", elem_id="hvae-anc-seed")
    ancestral = picture_out("hvae-ancestral", "z_L -> ... -> z_1 -> x")
    return HVAETab(header, seed, pair, terms, numbers, layers, res_layer, res_t, res_n, res_seed,
                   below, res_button, resampled, itp_layer, frames, lerp_img, slerp_img, norms,
                   itp_gif, maps, anc_n, anc_t, anc_seed, ancestral, walk)
