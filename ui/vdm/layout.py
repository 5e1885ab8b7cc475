"""The VDM tab's layout: the forward process scrubbed live, one reverse run stepped by hand,
noise and denoise, interpolation through DDIM-inverted x_T, the loss over time, the gallery
dissolving. `create(dataset)` makes the components (wiring.py connects them); the scrub and the
reverse run are views the page draws itself (ui/static/views/scrub.js, run.js).
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from explorer.samplers import DEFAULT_TIMESTEP_SPACING, KARRAS_RHO, SAMPLERS

from ..common import BACKGROUND, caption, file_out, picture_out, seed_box
from ..page import view
from ..panel import TabHeader, create_tab_header
from ..plots import HISTOGRAM_BINS, SAMPLER_NAMES
from . import frames, live, run, views

NAMES = ("vdm",)


@dataclass
class ApiPorts:
    """Hidden components that carry the public API's inputs and results where the page shows
    the same thing in a view of its own (the scrub, the reverse run)."""
    t: gr.Slider
    x_t: gr.Image
    histogram: gr.Plot
    scrub_numbers: gr.JSON
    curves: gr.Plot
    panel: gr.Image
    film: gr.Image
    text: gr.Markdown
    numbers: gr.JSON
    shown: gr.Slider
    branch_seed: gr.Number


@dataclass
class VDMTab:
    header: TabHeader
    schedule: gr.Radio
    noise_seed: gr.Number
    scrub: gr.HTML
    gif_frames: gr.Slider
    scrub_gif: gr.Button
    forward_file: gr.File
    sampler: gr.Radio
    eta: gr.Slider
    steps: gr.Slider
    seed: gr.Number
    spacing: gr.Radio
    run: gr.HTML
    run_file: gr.File
    run_state: gr.State
    nd_t: gr.Slider
    nd_steps: gr.Slider
    nd_sampler: gr.Radio
    nd_seed: gr.Number
    nd_button: gr.Button
    nd_grid: gr.Image
    nd_numbers: gr.JSON
    frames: gr.Slider
    itp_steps: gr.Slider
    itp_button: gr.Button
    slerp: gr.Image
    fade: gr.Image
    itp_gif: gr.File
    itp_numbers: gr.JSON
    points: gr.Slider
    loss_button: gr.Button
    loss_curve: gr.Plot
    loss_terms: gr.Markdown
    loss_numbers: gr.JSON
    dissolve_t: gr.Slider
    dissolve_map: gr.Plot
    dissolve_csv: gr.File
    api: ApiPorts


def _forward(dataset: str) -> dict:
    T = views.model_T(dataset)
    gr.Markdown("## Forward process: image A dissolving into noise")
    caption("The encoder of this hierarchical VAE is fixed: "
            "$q(x_t|x_{t-1}) = \\mathcal{N}(\\sqrt{\\alpha_t}\\,x_{t-1}, (1-\\alpha_t) I)$, so "
            "in one shot $x_t = \\sqrt{\\bar\\alpha_t}\\,x_0 + \\sqrt{1-\\bar\\alpha_t}\\,\\epsilon$, "
            "$\\epsilon \\sim \\mathcal{N}(0, I)$ (drawn once from the seed, so scrubbing is "
            "smooth). Drag $t$: the page mixes $x_t$ itself, so the picture follows the pointer. "
            "Look for the histogram becoming the red $\\mathcal{N}(0,1)$ and for where each "
            "schedule spends its steps: $\\mathrm{SNR}(t) = \\bar\\alpha_t / (1-\\bar\\alpha_t)$. "
            "The VDM's learned schedule, trained for likelihood, keeps $x_t$ nearly clean until "
            "late and then destroys it fast: the reverse process below runs on it.")
    with gr.Row():
        schedule = gr.Radio(list(views.SCHEDULE_CHOICES), value="cosine",
                            label="schedule (learned: the VDM's own)", elem_id="vdm-schedule")
        noise_seed = seed_box(label="seed of eps",
                               elem_id="vdm-noise-seed")
    scrub = view("scrub", "vdm-scrub", config={"bins": list(HISTOGRAM_BINS), "T": T,
                                               "t": T // 4, "background": BACKGROUND})
    with gr.Row(equal_height=True, elem_classes="le-downloads"):
        gif_frames = gr.Slider(*views.SCRUB_GIF_FRAMES, value=40, step=1, label="GIF frames",
                               elem_id="vdm-scrub-gif-frames", scale=2)
        scrub_gif = gr.Button("GIF of the scrub, t = 0 to T", elem_id="vdm-scrub-gif-btn",
                              scale=1)
    forward_file = file_out("vdm-scrub-gif", "x_t for slides", visible=False)
    return dict(schedule=schedule, noise_seed=noise_seed, scrub=scrub, gif_frames=gif_frames,
                scrub_gif=scrub_gif, forward_file=forward_file)


def _reverse() -> dict:
    gr.Markdown("## Reverse process: one run, step by step")
    caption("A network predicts the noise, $\\hat\\epsilon_\\theta(x_t, t)$; from it "
            "$\\hat x_0 = (x_t - \\sqrt{1-\\bar\\alpha_t}\\,\\hat\\epsilon) / \\sqrt{\\bar\\alpha_t}$ "
            "and a step draws $x_{t'} \\sim p(x_{t'}|x_t) = q(x_{t'}|x_t, \\hat x_0)$. "
            "**DDPM** adds fresh noise every step; **DDIM** with $\\eta = 0$ adds none (a seed "
            "only fixes $x_T$). DDPM is the default: from pure noise this small model's DDIM "
            "samples come out blotchier, its DDPM samples look like the data (MODELS.md). "
            "**DPM-Solver++(2M)** and **Heun** solve the same noise-free path (the probability-"
            "flow ODE) at second order: DPM-Solver++ reuses the previous step's $\\hat x_0$, "
            "Heun evaluates the network twice a step (an Euler step, then a corrector at the "
            "$t'$ it lands on; each is a step of the run below). **DPM-Solver++(2M) SDE** "
            "takes DPM-Solver++'s steps on the reverse SDE instead, adding fresh noise as DDPM "
            "does. \"About the model\" plots "
            "what each sampler's images score against its network evaluations. Watch "
            "$\\hat x_0$ settle long before $x_t$ looks clean. Step, Run (Stop freezes the run "
            "on the frame you see), move the step slider back to any step and rewind or branch "
            "there with another seed. **Spacing** picks which $t$ the steps visit: Karras et "
            "al.'s spacing ($\\sigma_t^{1/\\rho}$ even, where $\\sigma_t = e^{-\\lambda_t/2}$ is "
            "the noise-to-signal ratio and $\\lambda_t = \\log \\mathrm{SNR}(t)$) spends most of "
            "them at the noisy end, where a few big steps go wrong. The plot under the run "
            "shows where its steps fall on the learned $\\lambda_t$.")
    with gr.Row():
        sampler = gr.Radio([(SAMPLER_NAMES[n], n) for n in SAMPLERS], value="ddpm", label="sampler",
                           elem_id="vdm-sampler")
        eta = gr.Slider(0, 1, value=0, step=0.05, label="eta (DDIM)", elem_id="vdm-eta")
        steps = gr.Slider(1, run.STEPS_MAX, value=50, step=1, label="steps",
                          elem_id="vdm-steps")
        seed = seed_box(label="seed", elem_id="vdm-seed")
        spacing = gr.Radio([(f"Karras, ρ = {KARRAS_RHO:g}", "karras"), ("even in t", "linspace")],
                           value=DEFAULT_TIMESTEP_SPACING, label="timestep spacing",
                           elem_id="vdm-spacing")
    run_view = view("run", "vdm-run-view", config=frames.CONFIG, server_functions=live.SERVER_FUNCTIONS)
    run_file = file_out("vdm-run-gif", "the run for slides", visible=False)
    return dict(sampler=sampler, eta=eta, steps=steps, seed=seed, spacing=spacing, run=run_view,
                run_file=run_file, run_state=gr.State(None))


def _denoise(dataset: str) -> dict:
    T = views.model_T(dataset)
    gr.Markdown("## Noise and denoise: how much of image A survives")
    caption("Noise A to $x_t \\sim q(x_t|x_0)$ with four different $\\epsilon$, then run the "
            "reverse process from $t$ back to 0. Small $t$: the details come back. Large $t$: "
            "only the rough shape (or nothing) survives, and each $\\epsilon$ gives another "
            "plausible image.")
    with gr.Row():
        nd_t = gr.Slider(1, T, value=views.midpoint_t(dataset), step=1,
                         label="t (the VDM's learned schedule)", elem_id="vdm-nd-t")
        nd_steps = gr.Slider(1, 200, value=25, step=1, label="steps", elem_id="vdm-nd-steps")
        nd_sampler = gr.Radio(["ddim", "ddpm"], value="ddim", label="sampler",
                              elem_id="vdm-nd-sampler")
        nd_seed = seed_box(label="seed", elem_id="vdm-nd-seed")
        nd_button = gr.Button("noise and denoise", variant="primary", elem_id="vdm-nd-run")
    nd_grid = picture_out("vdm-nd-grid", "x_0 | x_t | denoised", visible=False)
    with gr.Accordion("numbers (JSON): PSNR of each denoised image against A", open=False):
        nd_numbers = gr.JSON(elem_id="vdm-nd-numbers")
    return dict(nd_t=nd_t, nd_steps=nd_steps, nd_sampler=nd_sampler, nd_seed=nd_seed,
                nd_button=nd_button, nd_grid=nd_grid, nd_numbers=nd_numbers)


def _interpolation() -> dict:
    gr.Markdown("## Interpolation from A to B through x_T")
    caption("Deterministic DDIM ($\\eta = 0$) is an invertible map $x_0 \\leftrightarrow x_T$. "
            "Invert A and B to $x_T^A, x_T^B$, whiten each to the standard normal $z$ behind it "
            "($x_T = m + S^{1/2} z$ under the prior $p(x_T) = \\mathcal{N}(m, S)$), walk the great "
            "circle $\\mathrm{slerp}(z^A, z^B; w)$ (the $\\approx\\sqrt{784} = 28$ shell where "
            "Gaussian noise lives), decode every frame. The pixel cross-fade is for contrast.")
    with gr.Row():
        frames_ = gr.Slider(2, views.FRAMES_MAX, value=8, step=1, label="frames",
                            elem_id="vdm-frames")
        itp_steps = gr.Slider(*views.INVERT_STEPS, value=50, step=1, label="DDIM steps",
                              elem_id="vdm-itp-steps")
        itp_button = gr.Button("interpolate", variant="primary", elem_id="vdm-interpolate")
    slerp = picture_out("vdm-slerp", "slerp of x_T, decoded", visible=False)
    fade = picture_out("vdm-fade", "pixel cross-fade", visible=False)
    itp_gif = file_out("vdm-itp-gif", "GIF of the interpolation", visible=False)
    with gr.Accordion("numbers (JSON): round-trip error, ||z||", open=False):
        itp_numbers = gr.JSON(elem_id="vdm-itp-numbers")
    return dict(frames=frames_, itp_steps=itp_steps, itp_button=itp_button, slerp=slerp,
                fade=fade, itp_gif=itp_gif, itp_numbers=itp_numbers)


def _loss() -> dict:
    gr.Markdown("## The loss over time: image A's -ELBO, term by term")
    caption("$-\\mathrm{ELBO} = \\underbrace{-\\log p(x_0|x_1)}_{\\text{reconstruction}} + "
            "\\underbrace{\\mathrm{KL}(q(x_T|x_0)\\,\\|\\,p(x_T))}_{\\text{prior matching}}"
            " + \\sum_{t=2}^{T} \\underbrace{\\mathrm{KL}(q(x_{t-1}|x_t,x_0)\\,\\|\\,"
            "p(x_{t-1}|x_t))}_{L_t \\text{, denoising matching}}$, with "
            "$L_t = \\tfrac12 (e^{\\gamma_t - \\gamma_{t-1}} - 1)\\,\\|\\epsilon - \\hat\\epsilon\\|^2$. "
            "With fewer points than $T-1$ the sum is estimated as $(T-1)$ times their mean. "
            "The prior $p(x_T)$ need not be $\\mathcal{N}(0,I)$: the learned schedule ends at a "
            "small but non-zero $\\mathrm{SNR}_T$ (under 0.01), where an image's mean and main "
            "shapes still show through the noise, and DDIM started from $\\mathcal{N}(0,I)$ "
            "never recovers them; a model may instead use the Gaussian with the moments of "
            "$q(x_T)$. \"About the model\" at the top of this tab says which prior this "
            "dataset's model has.")
    with gr.Row():
        points = gr.Slider(views.LOSS_POINTS[0], views.LOSS_POINTS[1], value=100, step=1,
                           label="points t evaluated (999 = every t, exact)",
                           elem_id="vdm-loss-points")
        loss_button = gr.Button("compute the loss", variant="primary", elem_id="vdm-loss-run")
    loss_curve = gr.Plot(label="L_t against t", elem_id="vdm-loss", visible=False)
    with gr.Row(equal_height=False):
        loss_terms = gr.Markdown(elem_id="vdm-loss-terms", elem_classes="le-table")
        with gr.Accordion("numbers (JSON)", open=False):
            loss_numbers = gr.JSON(elem_id="vdm-loss-numbers")
    return dict(points=points, loss_button=loss_button, loss_curve=loss_curve,
                loss_terms=loss_terms, loss_numbers=loss_numbers)


def _dissolve(dataset: str) -> dict:
    gr.Markdown("## The gallery dissolving")
    caption("Every gallery image's $x_t$ (one fixed $\\epsilon$ each) on the PCA axes of the "
            "clean images. As $t$ grows each class shrinks by $\\sqrt{\\bar\\alpha_t}$ towards "
            "x = 0 (a flat grey image) while the same $\\mathcal{N}(0, (1-\\bar\\alpha_t) I)$ cloud "
            "swallows them all: at $t = T$ nothing tells the classes apart. Click a point to "
            "make it image A or B.")
    dissolve_t = gr.Slider(0, views.model_T(dataset), value=0, step=1, label="t",
                           elem_id="vdm-dissolve-t")
    dissolve_map = gr.Plot(label="gallery x_t", elem_id="vdm-dissolve")
    with gr.Row(equal_height=True):
        dissolve_csv = file_out("vdm-dissolve-csv", "CSV of the map")
        caption("For slides or another plotting tool: every point of this map at this $t$ "
                "(index, label, class name, x, y).")
    return dict(dissolve_t=dissolve_t, dissolve_map=dissolve_map, dissolve_csv=dissolve_csv)


def _api_ports(dataset: str) -> ApiPorts:
    T = views.model_T(dataset)
    with gr.Group(visible=False):
        return ApiPorts(
            t=gr.Slider(0, T, value=T // 4, step=1, label="t", elem_id="vdm-t"),
            x_t=picture_out("vdm-xt", "x_t"),
            histogram=gr.Plot(label="pixels of x_t", elem_id="vdm-hist"),
            scrub_numbers=gr.JSON(elem_id="vdm-scrub-numbers"),
            curves=gr.Plot(label="schedules", elem_id="vdm-curves"),
            panel=picture_out("vdm-panel", "x_t | eps_hat | x0_hat | x_t_prev"),
            film=picture_out("vdm-film", "the run so far"),
            text=gr.Markdown(elem_id="vdm-step-text"),
            numbers=gr.JSON(elem_id="vdm-run-numbers"),
            shown=gr.Slider(0, run.STEPS_MAX, value=0, step=1, label="step k",
                            elem_id="vdm-shown"),
            branch_seed=seed_box(1, label="branch seed",
                                  elem_id="vdm-branch-seed"))


def create(dataset: str) -> VDMTab:
    """The tab's components, for `dataset` (the app's default)."""
    header = create_tab_header(dataset, "vdm", NAMES, quality=True)
    parts = {**_forward(dataset), **_reverse(), **_denoise(dataset), **_interpolation(),
             **_loss(), **_dissolve(dataset)}
    return VDMTab(header=header, api=_api_ports(dataset), **parts)

