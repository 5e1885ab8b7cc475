"""The VAE tab: encoder view, prior samples, interpolation, latent maps, the 2-D VAE's manifold.

`create_vae_tab(demo, dataset)` lays it out inside a gr.Tab and wires every event (each with an
api_name); the computations live in vae_views.py. Run alone: `python -m ui.vae_tab`.
"""

from __future__ import annotations

import gradio as gr

from . import vae_views as views
from .common import caption, file_out, friendly, picture_out, quiet
from .inputs import banner_text, create_input_panel, hover_image, wire_input_panel
from .maps import create_map_panel
from .store import STORE

NAMES = ("vae", "vae2d")
PROJECTION_LIMIT = dict(concurrency_limit=1, concurrency_id="projection")  # t-SNE: one at a time


def create_vae_tab(demo: gr.Blocks, dataset: gr.Radio) -> None:
    panel = create_input_panel(dataset.value, "vae", NAMES)

    gr.Markdown("## Encoder: what the VAE makes of image A")
    caption("The encoder gives a Gaussian $q(z|x) = \\mathcal{N}(\\mu(x), \\mathrm{diag}\\,"
            "\\sigma^2(x))$. Each draw $z = \\mu + \\sigma \\odot \\epsilon$, "
            "$\\epsilon \\sim \\mathcal{N}(0, I)$ decodes to a slightly different image; the "
            "reconstruction decodes $z = \\mu$. The loss is "
            "$-\\mathrm{ELBO} = -\\log p(x|z) + \\mathrm{KL}(q(z|x)\\,\\|\\,p(z))$, one draw of "
            "$\\epsilon$ (seeded), in nats and in bits/dim $= \\text{nats} / (784 \\ln 2)$.")
    with gr.Row():
        k = gr.Slider(1, views.K_MAX, value=8, step=1, label="K draws of z", elem_id="vae-k")
        seed = gr.Number(0, precision=0, minimum=0, label="seed of eps", elem_id="vae-seed")
    with gr.Row(equal_height=False):
        pair = picture_out("vae-recon", "x and its reconstruction", height=300)
        posterior = gr.Plot(label="mu(x) and sigma(x)", elem_id="vae-posterior")
    draws = picture_out("vae-draws", "decoded draws z = mu + sigma * eps")
    with gr.Row(equal_height=False):
        terms = gr.Markdown(elem_id="vae-terms")
        with gr.Accordion("all numbers (JSON)", open=False):
            numbers = gr.JSON(elem_id="vae-numbers")

    gr.Markdown("## Prior samples")
    caption("Draw $z \\sim \\mathcal{N}(0, T^2 I)$ and decode the mean of $p(x|z)$. "
            "Temperature $T < 1$ stays near the centre of the prior: cleaner, less varied.")
    with gr.Row():
        n = gr.Slider(1, views.SAMPLES_MAX, value=16, step=1, label="how many", elem_id="vae-n")
        temperature = gr.Slider(0, 2, value=1, step=0.05, label="temperature T",
                                elem_id="vae-temperature")
        sample_seed = gr.Number(0, precision=0, minimum=0, label="seed", elem_id="vae-sample-seed")
    samples = picture_out("vae-samples", "x = mean p(x|z), z ~ N(0, T^2 I)")

    gr.Markdown("## Interpolation from A to B")
    caption("Between the means $z_A = \\mu(A)$ and $z_B = \\mu(B)$: "
            "**lerp** $z_w = (1-w) z_A + w z_B$ cuts through the middle, where $\\|z\\|$ "
            "drops below the $\\approx\\sqrt{D}$ shell that $\\mathcal{N}(0, I)$ samples live on; "
            "**slerp** $z_w = \\frac{\\sin((1-w)\\Omega)}{\\sin \\Omega} z_A + "
            "\\frac{\\sin(w\\Omega)}{\\sin \\Omega} z_B$ follows the great circle. "
            "**pixels** $(1-w) A + w B$ is the cross-fade a latent space should beat.")
    frames = gr.Slider(2, views.FRAMES_MAX, value=8, step=1, label="frames N",
                       elem_id="vae-frames")
    lerp_img, slerp_img, fade_img = (picture_out(f"vae-{key}", label) for key, label in
                                     (("lerp", "lerp"), ("slerp", "slerp"), ("fade", "pixels")))
    norms = gr.Plot(label="||z|| along each path", elem_id="vae-norms")
    with gr.Row(equal_height=True):
        itp_gif = file_out("vae-itp-gif", "GIF of the interpolation")
        caption("For slides: slerp, lerp and the pixel cross-fade side by side, A to B and "
                "back, looping smoothly.")

    gr.Markdown("## Map of the latent space")
    caption("Every gallery image's $\\mu(x)$, mapped to 2-D by PCA (a linear projection) or "
            "t-SNE (keeps neighbours together; perplexity $\\approx$ the number of neighbours). "
            "A and B, uploads and drawings included, are placed on the fitted map (PCA "
            "projects them; t-SNE embeds them without moving the map); on PCA the lerp and "
            "slerp paths are drawn. Hover a point to see it; click it to make it image A or B. "
            "Look for the classes that overlap: those are the ones the encoder barely tells apart.")
    maps = create_map_panel("vae")

    gr.Markdown("## The 2-D VAE: the whole latent space at once")
    caption("A second VAE with $D = 2$: each cell decodes the mean of $p(x|z)$ at its "
            "$z = (z_1, z_2)$; the dots are the gallery's $\\mu(x)$ under this model. Where the "
            "prior $\\mathcal{N}(0, I)$ has mass, every $z$ decodes to something plausible.")
    with gr.Row():
        grid_n = gr.Slider(2, views.GRID_MAX, value=15, step=1, label="grid size",
                           elem_id="vae2d-n")
        extent = gr.Slider(0.5, 6, value=3, step=0.5, label="extent: z in [-e, e]^2",
                           elem_id="vae2d-extent")
    manifold_note = gr.Markdown(banner_text(dataset.value, ("vae2d",)), elem_id="vae2d-note")
    with gr.Row(equal_height=False):
        manifold = gr.Plot(label="decoded grid and the gallery", elem_id="vae2d-map", scale=3)
        hovered2d = gr.Image(label="point under the mouse", format="png", interactive=False,
                             height=280, scale=1, elem_id="vae2d-hovered",
                             elem_classes="pixelated")
    manifold_click = gr.Textbox(visible="hidden", elem_id="vae2d-map-click")
    manifold_hover = gr.Textbox(visible="hidden", elem_id="vae2d-map-hover")

    # ---------------------------------------------------------------- events
    reset = wire_input_panel(panel, dataset, "vae", NAMES, [maps.click, manifold_click])
    a = [panel.a_index, panel.a_image]
    ab = [*a, panel.b_index, panel.b_image]

    enc_in, enc_out = [dataset, *a, k, seed], [pair, posterior, draws, terms, numbers]
    gr.on([k.change, seed.change], friendly(views.encode), enc_in, enc_out,
          api_name="vae_encode", show_progress="hidden")
    gr.on([demo.load, panel.a_image.change], quiet(views.encode, 5), enc_in, enc_out,
          api_name="vae_encode_auto", api_visibility="undocumented", show_progress="hidden")

    smp_in = [dataset, n, temperature, sample_seed]
    gr.on([n.change, temperature.change, sample_seed.change], friendly(views.sample), smp_in,
          samples, api_name="vae_sample", show_progress="hidden")
    gr.on([demo.load], quiet(views.sample, 1), smp_in, samples, api_name="vae_sample_auto",
          api_visibility="undocumented")
    reset.then(quiet(views.sample, 1), smp_in, samples, api_name="vae_sample_reset",
               api_visibility="undocumented")

    itp_in, itp_out = [dataset, *ab, frames], [lerp_img, slerp_img, fade_img, norms, itp_gif]
    frames.change(friendly(views.interpolate), itp_in, itp_out, api_name="vae_interpolate",
                  show_progress="hidden")
    gr.on([demo.load, panel.a_image.change, panel.b_image.change], quiet(views.interpolate, 5),
          itp_in, itp_out, api_name="vae_interpolate_auto", api_visibility="undocumented",
          show_progress="hidden")

    map_in, map_out = [dataset, maps.method, maps.perplexity, *ab, frames], [maps.plot, maps.csv]
    gr.on([maps.compute.click, maps.method.change], friendly(views.project), map_in, map_out,
          api_name="vae_project", **PROJECTION_LIMIT)
    gr.on([demo.load], quiet(views.project, 2), map_in, map_out, api_name="vae_project_auto",
          api_visibility="undocumented")
    reset.then(quiet(views.project, 2), map_in, map_out, api_name="vae_project_reset",
               api_visibility="undocumented", **PROJECTION_LIMIT)
    gr.on([panel.a_image.change, panel.b_image.change, frames.change], quiet(views.overlay, 2),
          map_in, map_out, api_name="vae_map_overlay", api_visibility="undocumented",
          show_progress="hidden")
    maps.hover.change(friendly(hover_image), [dataset, maps.hover], maps.hovered,
                      api_name="vae_map_hover", show_progress="hidden")
    manifold_hover.change(friendly(hover_image), [dataset, manifold_hover], hovered2d,
                          api_name="vae2d_map_hover", show_progress="hidden")

    grid_in = [dataset, grid_n, extent]
    gr.on([grid_n.change, extent.change], friendly(views.manifold), grid_in, manifold,
          api_name="vae2d_grid", show_progress="hidden")
    gr.on([demo.load], quiet(views.manifold, 1), grid_in, manifold, api_name="vae2d_grid_auto",
          api_visibility="undocumented")
    reset.then(quiet(views.manifold, 1), grid_in, manifold, api_name="vae2d_grid_reset",
               api_visibility="undocumented")
    reset.then(lambda ds: (banner_text(ds, ("vae2d",)), None, None), dataset,
               [manifold_note, maps.hovered, hovered2d], api_name="vae_clear",
               api_visibility="undocumented")


if __name__ == "__main__":
    with gr.Blocks(title="Latent Explorer: VAE") as demo:
        data = gr.Radio(["fashion-mnist", "mnist"], value=STORE.default_dataset(), label="dataset")
        create_vae_tab(demo, data)
        from .bridge import JS
        demo.load(None, js=JS)
    demo.launch()
