"""The hierarchical-VAE tab: latents and ELBO terms per layer, resampling one layer, interpolation
and maps at a chosen layer, ancestral sampling level by level.

`create_hvae_tab(demo, dataset)` lays it out inside a gr.Tab and wires every event (each with an
api_name); the computations live in hvae_views.py. Run alone: `python -m ui.hvae_tab`.
"""

from __future__ import annotations

import gradio as gr

from . import hvae_views as views
from .common import caption, file_out, friendly, picture_out, quiet
from .inputs import create_input_panel, hover_image, wire_input_panel
from .maps import create_map_panel
from .store import STORE

NAMES = ("hvae",)
PROJECTION_LIMIT = dict(concurrency_limit=1, concurrency_id="projection")


def create_hvae_tab(demo: gr.Blocks, dataset: gr.Radio) -> None:
    panel = create_input_panel(dataset.value, "hvae", NAMES)

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
    seed = gr.Number(0, precision=0, minimum=0, label="seed of the draw z ~ q",
                     elem_id="hvae-seed")
    with gr.Row(equal_height=False):
        with gr.Column(scale=1):
            pair = picture_out("hvae-recon", "x and its reconstruction", height=300)
            terms = gr.Markdown(elem_id="hvae-terms")
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
        res_seed = gr.Number(0, precision=0, minimum=0, label="seed", elem_id="hvae-res-seed")
        below = gr.Radio(list(views.BELOW), value="prior mean", label="layers below k",
                         elem_id="hvae-below")
    res_button = gr.Button("resample layer k", variant="primary", elem_id="hvae-resample")
    resampled = picture_out("hvae-resampled", "x, reconstruction, draws with layer k resampled")

    gr.Markdown("## Interpolation at layer k")
    caption("Move only $z_k$ from A's encoder mean to B's (lerp, slerp); the layers below follow "
            "at their prior means $\\mathbb{E}[p(z_{l}|z_{l+1})]$. At $k = 1$ this is a plain "
            "latent interpolation; higher up, the end frames show what layer $k$ keeps of A and "
            "B.")
    with gr.Row():
        itp_layer = layer_slider("hvae-itp-layer")
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
    map_layer = maps.leading

    gr.Markdown("## Ancestral sampling, level by level")
    caption("$z_L \\sim \\mathcal{N}(0, T^2 I)$, then $z_{l-1} \\sim p(z_{l-1}|z_l)$ (std times "
            "$T$) down to $x = \\mathbb{E}[p(x|z_1)]$. Row $z_l$ decodes the sample's $z_l$ "
            "with the layers below at their prior means: top rows show what the upper layers "
            "alone decide, the last row is the sample.")
    with gr.Row():
        anc_n = gr.Slider(1, views.SAMPLES_MAX, value=8, step=1, label="samples",
                          elem_id="hvae-anc-n")
        anc_t = gr.Slider(0, 2, value=1, step=0.05, label="temperature T", elem_id="hvae-anc-t")
        anc_seed = gr.Number(0, precision=0, minimum=0, label="seed", elem_id="hvae-anc-seed")
    ancestral = picture_out("hvae-ancestral", "z_L -> ... -> z_1 -> x")

    # ---------------------------------------------------------------- events
    reset = wire_input_panel(panel, dataset, "hvae", NAMES, [maps.click])
    bounded = [res_layer, itp_layer, map_layer]
    demo.load(views.layer_bounds, dataset, bounded, api_name="hvae_layer_bounds",
              api_visibility="undocumented")
    reset = reset.then(lambda ds: (*views.layer_bounds(ds, True), None), dataset,
                       [*bounded, maps.hovered],
                       api_name="hvae_layer_reset", api_visibility="undocumented")
    a = [panel.a_index, panel.a_image]
    ab = [*a, panel.b_index, panel.b_image]

    enc_in, enc_out = [dataset, *a, seed], [pair, layers, terms, numbers]
    seed.change(friendly(views.encode), enc_in, enc_out, api_name="hvae_encode",
                show_progress="hidden")
    gr.on([demo.load, panel.a_image.change], quiet(views.encode, 4), enc_in, enc_out,
          api_name="hvae_encode_auto", api_visibility="undocumented")

    res_in = [dataset, *a, res_layer, res_t, res_n, res_seed, below]
    gr.on([res_button.click, res_layer.change, res_t.change, res_n.change, res_seed.change,
           below.change], friendly(views.resample), res_in, resampled, api_name="hvae_resample",
          show_progress="hidden")
    gr.on([demo.load, panel.a_image.change], quiet(views.resample, 1), res_in, resampled,
          api_name="hvae_resample_auto", api_visibility="undocumented", show_progress="hidden")

    itp_in, itp_out = [dataset, *ab, itp_layer, frames], [lerp_img, slerp_img, norms, itp_gif]
    gr.on([itp_layer.change, frames.change], friendly(views.interpolate), itp_in, itp_out,
          api_name="hvae_interpolate", show_progress="hidden")
    gr.on([demo.load, panel.a_image.change, panel.b_image.change], quiet(views.interpolate, 4),
          itp_in, itp_out, api_name="hvae_interpolate_auto", api_visibility="undocumented",
          show_progress="hidden")

    map_in = [dataset, map_layer, maps.method, maps.perplexity, *ab, frames]
    map_out = [maps.plot, maps.csv]
    gr.on([maps.compute.click, maps.method.change, map_layer.change], friendly(views.project),
          map_in, map_out, api_name="hvae_project", **PROJECTION_LIMIT)
    gr.on([demo.load], quiet(views.project, 2), map_in, map_out,
          api_name="hvae_project_auto", api_visibility="undocumented")
    reset.then(quiet(views.project, 2), map_in, map_out, api_name="hvae_project_reset",
               api_visibility="undocumented", **PROJECTION_LIMIT)
    gr.on([panel.a_image.change, panel.b_image.change, frames.change], quiet(views.overlay, 2),
          map_in, map_out, api_name="hvae_map_overlay", api_visibility="undocumented",
          show_progress="hidden")
    maps.hover.change(friendly(hover_image), [dataset, maps.hover], maps.hovered,
                      api_name="hvae_map_hover", show_progress="hidden")

    anc_in = [dataset, anc_n, anc_t, anc_seed]
    gr.on([anc_n.change, anc_t.change, anc_seed.change], friendly(views.ancestral), anc_in,
          ancestral, api_name="hvae_sample", show_progress="hidden")
    gr.on([demo.load], quiet(views.ancestral, 1), anc_in, ancestral, api_name="hvae_sample_auto",
          api_visibility="undocumented")
    reset.then(quiet(views.ancestral, 1), anc_in, ancestral, api_name="hvae_sample_reset",
               api_visibility="undocumented")


if __name__ == "__main__":
    with gr.Blocks(title="Latent Explorer: hierarchical VAE") as demo:
        data = gr.Radio(["fashion-mnist", "mnist"], value=STORE.default_dataset(), label="dataset")
        create_hvae_tab(demo, data)
        from .bridge import JS
        demo.load(None, js=JS)
    demo.launch()
