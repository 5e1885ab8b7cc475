"""The VAE tab's layout: encoder view, prior samples, interpolation, latent maps, the 2-D VAE's
manifold. `create(dataset)` makes the components; wiring.py connects them to views.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from ..common import caption, file_out, picture_out, seed_box
from ..maps import MapPanel, create_map_panel
from ..page import view
from ..panel import TabHeader, banner_text, create_tab_header
from . import views, walk as walk_

NAMES = ("vae", "vae2d")


@dataclass
class VAETab:
    header: TabHeader
    k: gr.Slider
    seed: gr.Number
    pair: gr.Image
    posterior: gr.Plot
    draws: gr.Image
    terms: gr.Markdown
    numbers: gr.JSON
    n: gr.Slider
    temperature: gr.Slider
    sample_seed: gr.Number
    samples: gr.Image
    frames: gr.Slider
    lerp: gr.Image
    slerp: gr.Image
    fade: gr.Image
    norms: gr.Plot
    itp_gif: gr.File
    maps: MapPanel
    grid_n: gr.Slider
    extent: gr.Slider
    manifold_note: gr.Markdown
    manifold: gr.Plot
    hovered2d: gr.Image
    walk: gr.HTML


def create(dataset: str) -> VAETab:
    """The tab's components, for `dataset` (the app's default)."""
    header = create_tab_header(dataset, "vae", NAMES)

    gr.Markdown("## Encoder: what the VAE makes of image A")
    caption("The encoder gives a Gaussian $q(z|x) = \\mathcal{N}(\\mu(x), \\mathrm{diag}\\,"
            "\\sigma^2(x))$. Each draw $z = \\mu + \\sigma \\odot \\epsilon$, "
            "$\\epsilon \\sim \\mathcal{N}(0, I)$ decodes to a slightly different image; the "
            "reconstruction decodes $z = \\mu$. The loss is "
            "$-\\mathrm{ELBO} = -\\log p(x|z) + \\mathrm{KL}(q(z|x)\\,\\|\\,p(z))$, one draw of "
            "$\\epsilon$ (seeded), in nats and in bits/dim $= \\text{nats} / (784 \\ln 2)$.")
    with gr.Row():
        k = gr.Slider(1, views.K_MAX, value=8, step=1, label="K draws of z", elem_id="vae-k")
        seed = seed_box(label="seed of eps", elem_id="vae-seed")
    with gr.Row(equal_height=False):
        pair = picture_out("vae-recon", "x and its reconstruction", height=300)
        posterior = gr.Plot(label="mu(x) and sigma(x)", elem_id="vae-posterior")
    draws = picture_out("vae-draws", "decoded draws z = mu + sigma * eps")
    with gr.Row(equal_height=False):
        terms = gr.Markdown(elem_id="vae-terms", elem_classes="le-table")
        with gr.Accordion("all numbers (JSON)", open=False):
            numbers = gr.JSON(elem_id="vae-numbers")

    gr.Markdown("## Prior samples")
    caption("Draw $z \\sim \\mathcal{N}(0, T^2 I)$ and decode the mean of $p(x|z)$. "
            "Temperature $T < 1$ stays near the centre of the prior: cleaner, less varied.")
    with gr.Row():
        n = gr.Slider(1, views.SAMPLES_MAX, value=16, step=1, label="how many", elem_id="vae-n")
        temperature = gr.Slider(0, 2, value=1, step=0.05, label="temperature T",
                                elem_id="vae-temperature")
        sample_seed = seed_box(label="seed", elem_id="vae-sample-seed")
    samples = picture_out("vae-samples", "x = mean p(x|z), z ~ N(0, T^2 I)")

    gr.Markdown("## Interpolation from A to B")
    caption("Between the means $z_A = \\mu(A)$ and $z_B = \\mu(B)$: "
            "**lerp** $z_w = (1-w) z_A + w z_B$ cuts through the middle, where $\\|z\\|$ "
            "drops below the $\\approx\\sqrt{D}$ shell that $\\mathcal{N}(0, I)$ samples live on; "
            "**slerp** $z_w = \\frac{\\sin((1-w)\\Omega)}{\\sin \\Omega} z_A + "
            "\\frac{\\sin(w\\Omega)}{\\sin \\Omega} z_B$ follows the great circle. "
            "**pixels** $(1-w) A + w B$ is the cross-fade a latent space should beat. "
            "Drag $w$ or press Play: this browser decodes each frame as you move; the strips "
            "below are for slides.")
    walk = view("walk", "vae-walk", config=walk_.CONFIG, server_functions=[walk_.frames])
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
    manifold_note = gr.Markdown(banner_text(dataset, ("vae2d",)), elem_id="vae2d-note")
    with gr.Row(equal_height=False):
        manifold = gr.Plot(label="decoded grid and the gallery", elem_id="vae2d-map", scale=3)
        hovered2d = gr.Image(label="point under the mouse", format="png", interactive=False,
                             height=280, scale=1, elem_id="vae2d-hovered",
                             elem_classes="pixelated")
    return VAETab(header, k, seed, pair, posterior, draws, terms, numbers, n, temperature,
                  sample_seed, samples, frames, lerp_img, slerp_img, fade_img, norms, itp_gif,
                  maps, grid_n, extent, manifold_note, manifold, hovered2d, walk)
