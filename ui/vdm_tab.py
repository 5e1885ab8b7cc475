"""The VDM tab: the forward process scrubbed live, one reverse run stepped by hand, noise and
denoise, interpolation through DDIM-inverted x_T, the loss over time, the gallery dissolving.

`create_vdm_tab(demo, dataset)` lays it out and wires every event (each with an api_name); the
computations live in vdm_views.py (stateless) and vdm_reverse.py (the session's run). The t
slider's path (`vdm_scrub`) only mixes the session's x_0 and eps: no model call, no re-encoding,
and no queue shared with the samplers. Run alone: `python -m ui.vdm_tab`.
"""

from __future__ import annotations

import gradio as gr

from explorer.samplers import DEFAULT_TIMESTEP_SPACING, KARRAS_RHO

from . import vdm_reverse as reverse
from . import vdm_views as views
from .common import caption, file_out, friendly, picture_out, quiet
from .inputs import create_input_panel, wire_input_panel
from .store import STORE

NAMES = ("vdm",)
SAMPLER = dict(concurrency_limit=2, concurrency_id="vdm-sampler")   # network-bound work


def create_vdm_tab(demo: gr.Blocks, dataset: gr.Radio) -> None:
    T = views.model_T(dataset.value)
    panel = create_input_panel(dataset.value, "vdm", NAMES)

    gr.Markdown("## Forward process: image A dissolving into noise")
    caption("The encoder of this hierarchical VAE is fixed: "
            "$q(x_t|x_{t-1}) = \\mathcal{N}(\\sqrt{\\alpha_t}\\,x_{t-1}, (1-\\alpha_t) I)$, so "
            "in one shot $x_t = \\sqrt{\\bar\\alpha_t}\\,x_0 + \\sqrt{1-\\bar\\alpha_t}\\,\\epsilon$, "
            "$\\epsilon \\sim \\mathcal{N}(0, I)$ (drawn once from the seed, so scrubbing is "
            "smooth). Look for the histogram becoming the red $\\mathcal{N}(0,1)$ and for where "
            "each schedule spends its steps: $\\mathrm{SNR}(t) = \\bar\\alpha_t / (1-\\bar\\alpha_t)$. "
            "The VDM's learned schedule, trained for likelihood, keeps $x_t$ nearly clean until "
            "late and then destroys it fast: the reverse process below runs on it.")
    with gr.Row():
        schedule = gr.Radio(list(views.SCHEDULE_CHOICES), value="cosine",
                            label="schedule (learned: the VDM's own)", elem_id="vdm-schedule")
        noise_seed = gr.Number(0, precision=0, minimum=0, label="seed of eps",
                               elem_id="vdm-noise-seed")
    with gr.Row(equal_height=True):
        t = gr.Slider(0, T, value=T // 4, step=1, label="t", elem_id="vdm-t", scale=4)
        scrub_gif_frames = gr.Slider(*views.SCRUB_GIF_FRAMES, value=40, step=1,
                                     label="GIF frames", elem_id="vdm-scrub-gif-frames", scale=1)
        scrub_gif_btn = gr.Button("GIF of the scrub", elem_id="vdm-scrub-gif-btn", scale=1)
    with gr.Row(equal_height=False):
        x_t = picture_out("vdm-xt", "x_t", height=300, scale=1)
        histogram = gr.Plot(label="pixels of x_t", elem_id="vdm-hist", scale=2)
    with gr.Row(equal_height=True):
        scrub_gif = file_out("vdm-scrub-gif", "GIF of the forward process")
        caption("For slides: image A dissolving, $x_t$ from $t = 0$ to $T$ with this seed's "
                "$\\epsilon$, as a looping GIF.")
    curves = gr.Plot(label="schedules", elem_id="vdm-curves")
    with gr.Accordion("numbers at t (JSON)", open=False):
        scrub_numbers = gr.JSON(elem_id="vdm-scrub-numbers")
    scrub_state = gr.State(None)
    # x_0, eps and the schedule for the page to paint the scrub itself (scrub_paint.py)
    scrub_data = gr.Textbox(visible="hidden", elem_id="vdm-scrub-data")

    gr.Markdown("## Reverse process: one run, step by step")
    caption("A network predicts the noise, $\\hat\\epsilon_\\theta(x_t, t)$; from it "
            "$\\hat x_0 = (x_t - \\sqrt{1-\\bar\\alpha_t}\\,\\hat\\epsilon) / \\sqrt{\\bar\\alpha_t}$ "
            "and a step draws $x_{t'} \\sim p(x_{t'}|x_t) = q(x_{t'}|x_t, \\hat x_0)$. "
            "**DDPM** adds fresh noise every step; **DDIM** with $\\eta = 0$ adds none (a seed "
            "only fixes $x_T$). DDPM is the default: from pure noise this small model's DDIM "
            "samples come out blotchier, its DDPM samples look like the data (MODELS.md). Watch "
            "$\\hat x_0$ settle long before $x_t$ looks clean. Step, Run (Stop halts it), move "
            "the slider back to any step and rewind or branch there with another seed. "
            "**Spacing** picks which $t$ the steps visit: Karras et al.'s spacing "
            "($\\sigma_t^{1/\\rho}$ even, where $\\sigma_t = e^{-\\lambda_t/2}$ is the "
            "noise-to-signal ratio and $\\lambda_t = \\log \\mathrm{SNR}(t)$) spends most of them "
            "at the noisy end, where a few big steps go wrong; the captions show each step's $t$.")
    with gr.Row():
        sampler = gr.Radio(["ddpm", "ddim"], value="ddpm", label="sampler", elem_id="vdm-sampler")
        eta = gr.Slider(0, 1, value=0, step=0.05, label="eta (DDIM)", elem_id="vdm-eta")
        steps = gr.Slider(1, reverse.STEPS_MAX, value=50, step=1, label="steps",
                          elem_id="vdm-steps")
        seed = gr.Number(0, precision=0, minimum=0, label="seed", elem_id="vdm-seed")
        spacing = gr.Radio([(f"Karras, ρ = {KARRAS_RHO:g}", "karras"), ("even in t", "linspace")],
                           value=DEFAULT_TIMESTEP_SPACING, label="timestep spacing",
                           elem_id="vdm-spacing")
    with gr.Row():
        reset_btn = gr.Button("Reset", elem_id="vdm-reset")
        step_btn = gr.Button("Step", variant="primary", elem_id="vdm-step")
        run_btn = gr.Button("Run", variant="primary", elem_id="vdm-run")
        stop_btn = gr.Button("Stop", variant="stop", elem_id="vdm-stop")
    step_panel = picture_out("vdm-panel", "x_t | eps_hat | x0_hat | x_t_prev")
    step_text = gr.Markdown(elem_id="vdm-step-text")
    shown = gr.Slider(0, 1, value=0, step=1, label="show the run after step k",
                      interactive=False, elem_id="vdm-shown")
    with gr.Row():
        branch_seed = gr.Number(1, precision=0, minimum=0, label="branch seed",
                                elem_id="vdm-branch-seed")
        rewind_btn = gr.Button("rewind to step k", elem_id="vdm-rewind")
        branch_btn = gr.Button("branch at step k with the branch seed", elem_id="vdm-branch")
    film = picture_out("vdm-film", "the run so far")
    steps_curve = gr.Plot(label="where the run's steps fall", elem_id="vdm-steps-plot")
    caption("Each dot is a timestep the run visits, on the learned schedule's log-SNR "
            "$\\lambda_t$ (filled: the run has been there; the star: now). Even in $t$ they "
            "sit at nearly even heights, as $\\lambda_t$ falls almost linearly in $t$; Karras' "
            "spacing crowds them where $\\lambda_t$ is low and $x_t$ is still mostly noise.")
    with gr.Row(equal_height=True):
        run_gif_btn = gr.Button("GIF of the run", elem_id="vdm-run-gif-btn", scale=1)
        run_gif = file_out("vdm-run-gif", "GIF of the run")
        caption("For slides: the run so far, $x_t$ beside $\\hat x_0$, at most "
                f"{reverse.GIF_FRAMES} frames from $x_T$ to the last step taken.")
    with gr.Accordion("run state (JSON)", open=False):
        run_numbers = gr.JSON(elem_id="vdm-run-numbers")
    run_state = gr.State(None)

    gr.Markdown("## Noise and denoise: how much of image A survives")
    caption("Noise A to $x_t \\sim q(x_t|x_0)$ with four different $\\epsilon$, then run the "
            "reverse process from $t$ back to 0. Small $t$: the details come back. Large $t$: "
            "only the rough shape (or nothing) survives, and each $\\epsilon$ gives another "
            "plausible image.")
    with gr.Row():
        nd_t = gr.Slider(1, T, value=views.midpoint_t(dataset.value), step=1,
                         label="t (the VDM's learned schedule)", elem_id="vdm-nd-t")
        nd_steps = gr.Slider(1, 200, value=25, step=1, label="steps", elem_id="vdm-nd-steps")
        nd_sampler = gr.Radio(["ddim", "ddpm"], value="ddim", label="sampler",
                              elem_id="vdm-nd-sampler")
        nd_seed = gr.Number(0, precision=0, minimum=0, label="seed", elem_id="vdm-nd-seed")
        nd_btn = gr.Button("noise and denoise", variant="primary", elem_id="vdm-nd-run")
    nd_grid = picture_out("vdm-nd-grid", "x_0 | x_t | denoised")
    with gr.Accordion("numbers (JSON): PSNR of each denoised image against A", open=False):
        nd_numbers = gr.JSON(elem_id="vdm-nd-numbers")

    gr.Markdown("## Interpolation from A to B through x_T")
    caption("Deterministic DDIM ($\\eta = 0$) is an invertible map $x_0 \\leftrightarrow x_T$. "
            "Invert A and B to $x_T^A, x_T^B$, whiten each to the standard normal $z$ behind it "
            "($x_T = m + S^{1/2} z$ under the prior $p(x_T) = \\mathcal{N}(m, S)$), walk the great "
            "circle $\\mathrm{slerp}(z^A, z^B; w)$ (the $\\approx\\sqrt{784} = 28$ shell where "
            "Gaussian noise lives), decode every frame. The pixel cross-fade is for contrast.")
    with gr.Row():
        frames = gr.Slider(2, views.FRAMES_MAX, value=8, step=1, label="frames",
                           elem_id="vdm-frames")
        itp_steps = gr.Slider(*views.INVERT_STEPS, value=50, step=1, label="DDIM steps",
                              elem_id="vdm-itp-steps")
        itp_btn = gr.Button("interpolate", variant="primary", elem_id="vdm-interpolate")
    slerp_img = picture_out("vdm-slerp", "slerp of x_T, decoded")
    fade_img = picture_out("vdm-fade", "pixel cross-fade")
    with gr.Row(equal_height=True):
        itp_gif = file_out("vdm-itp-gif", "GIF of the interpolation")
        caption("For slides: the decoded slerp from A to B and back, looping smoothly.")
    with gr.Accordion("numbers (JSON): round-trip error, ||z||", open=False):
        itp_numbers = gr.JSON(elem_id="vdm-itp-numbers")

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
        loss_btn = gr.Button("compute the loss", variant="primary", elem_id="vdm-loss-run")
    loss_curve = gr.Plot(label="L_t against t", elem_id="vdm-loss")
    with gr.Row(equal_height=False):
        loss_terms = gr.Markdown(elem_id="vdm-loss-terms")
        with gr.Accordion("numbers (JSON)", open=False):
            loss_numbers = gr.JSON(elem_id="vdm-loss-numbers")

    gr.Markdown("## The gallery dissolving")
    caption("Every gallery image's $x_t$ (one fixed $\\epsilon$ each) on the PCA axes of the "
            "clean images. As $t$ grows each class shrinks by $\\sqrt{\\bar\\alpha_t}$ towards "
            "x = 0 (a flat grey image) while the same $\\mathcal{N}(0, (1-\\bar\\alpha_t) I)$ cloud swallows "
            "them all: at $t = T$ nothing tells the classes apart.")
    dissolve_t = gr.Slider(0, T, value=0, step=1, label="t", elem_id="vdm-dissolve-t")
    dissolve_map = gr.Plot(label="gallery x_t", elem_id="vdm-dissolve")
    with gr.Row(equal_height=True):
        dissolve_csv = file_out("vdm-dissolve-csv", "CSV of the map")
        caption("For slides or another plotting tool: every point of this map at this $t$ "
                "(index, label, class name, x, y).")
    dissolve_click = gr.Textbox(visible="hidden", elem_id="vdm-dissolve-click")

    # ---------------------------------------------------------------- events
    reset = wire_input_panel(panel, dataset, "vdm", NAMES, [dissolve_click])
    a = [panel.a_index, panel.a_image]
    b = [panel.b_index, panel.b_image]

    fwd_in, fwd_out = [dataset, *a, schedule, noise_seed, t], [scrub_state, x_t, histogram,
                                                               scrub_numbers]
    # after a new x_0 or eps: the page's copy of them, and the old scrub's GIF goes
    new_scrub = dict(fn=lambda state: (views.scrub_data(state), None), inputs=scrub_state,
                     outputs=[scrub_data, scrub_gif], api_visibility="private",
                     show_progress="hidden")
    gr.on([schedule.change, noise_seed.change], friendly(views.forward), fwd_in, fwd_out,
          api_name="vdm_forward", show_progress="hidden").then(**new_scrub)
    gr.on([demo.load, panel.a_image.change], quiet(views.forward, 4), fwd_in, fwd_out,
          api_name="vdm_forward_auto", api_visibility="undocumented", show_progress="hidden"
          ).then(**new_scrub)
    # while t moves the page paints x_t and its histogram itself (scrub_paint.py); the server's
    # reply comes once the move ends (Gradio's release: a pointer let go, or the page script
    # after a key or a scene link moved t), so a drag sends one request, not one per step
    # always_last: a release while the last reply is on its way is sent once that reply lands
    # (Gradio's default for release, "once", would drop it and leave the server at the old t)
    t.release(friendly(views.scrub), [scrub_state, t], [x_t, histogram, scrub_numbers],
              api_name="vdm_scrub", api_visibility="undocumented", show_progress="hidden",
              concurrency_limit=8, trigger_mode="always_last")
    # the page script moves the curves' cursor as t moves (bridge.py); the server redraws them
    # when a drag ends
    gr.on([demo.load, t.release], friendly(views.curves), [dataset, t], curves,
          api_name="vdm_curves", show_progress="hidden", concurrency_limit=8,
          trigger_mode="always_last")
    scrub_gif_btn.click(friendly(views.scrub_gif), [dataset, *a, schedule, noise_seed,
                                                   scrub_gif_frames], scrub_gif,
                        api_name="vdm_scrub_gif")

    run_in = [dataset, sampler, steps, eta, seed, spacing, run_state]
    run_out = [run_state, step_panel, film, step_text, run_numbers, shown]
    reset_btn.click(friendly(reverse.reset), run_in, run_out, api_name="vdm_reset"
                    ).then(lambda: None, None, run_gif, api_visibility="private",  # its GIF
                           show_progress="hidden")
    gr.on([sampler.change, steps.release, eta.release, seed.submit, spacing.change],
          friendly(reverse.reconfigure), run_in, [*run_out, run_gif],
          api_name="vdm_reconfigure", api_visibility="undocumented", trigger_mode="always_last")
    gr.on([demo.load], quiet(reverse.reset, 6), run_in, run_out, api_name="vdm_reset_auto",
          api_visibility="undocumented")
    step_btn.click(friendly(reverse.step), run_state, run_out, api_name="vdm_step",
                   show_progress="hidden", **SAMPLER)
    run_event = run_btn.click(friendly(reverse.run), run_state, run_out, api_name="vdm_run",
                              show_progress="hidden", **SAMPLER)
    stop_btn.click(friendly(reverse.stop), run_state, None, cancels=[run_event],
                   api_name="vdm_stop").then(
        friendly(reverse.stopped), run_state, run_out, api_name="vdm_stopped",
        api_visibility="undocumented")
    shown.input(friendly(reverse.show), [run_state, shown], run_out, api_name="vdm_show",
                show_progress="hidden")
    rewind_btn.click(friendly(reverse.rewind), [run_state, shown], run_out, api_name="vdm_rewind")
    branch_btn.click(friendly(reverse.branch), [run_state, shown, branch_seed], run_out,
                     api_name="vdm_branch", **SAMPLER)
    run_gif_btn.click(friendly(reverse.run_gif), run_state, run_gif, api_name="vdm_run_gif")
    # every view of the run (reset, step, a streamed frame, the slider) rewrites its caption or
    # moves the slider, and the plot follows. It reads what is shown from the session: a change
    # may fire before the page has taken the slider's new value (and the run's JSON sits in a
    # closed accordion, which the page does not render, so its change never fires)
    gr.on([step_text.change, shown.change], friendly(reverse.steps_plot), run_state,
          steps_curve, api_name="vdm_steps_plot", api_visibility="undocumented",
          show_progress="hidden", concurrency_limit=8, trigger_mode="always_last")

    nd_in = [dataset, *a, nd_t, nd_steps, nd_sampler, nd_seed]
    nd_btn.click(friendly(views.noise_and_denoise), nd_in, [nd_grid, nd_numbers],
                 api_name="vdm_denoise", **SAMPLER)
    itp_in = [dataset, *a, *b, frames, itp_steps]
    itp_btn.click(friendly(views.interpolate), itp_in, [slerp_img, fade_img, itp_numbers, itp_gif],
                  api_name="vdm_interpolate", **SAMPLER)
    loss_btn.click(friendly(views.loss_over_time), [dataset, *a, points, noise_seed],
                   [loss_curve, loss_terms, loss_numbers], api_name="vdm_loss", **SAMPLER)
    dissolve_in, dissolve_out = [dataset, dissolve_t, schedule], [dissolve_map, dissolve_csv]
    gr.on([dissolve_t.change, schedule.change], friendly(views.dissolve), dissolve_in,
          dissolve_out, api_name="vdm_dissolve", show_progress="hidden")
    gr.on([demo.load], quiet(views.dissolve, 2), dissolve_in, dissolve_out,
          api_name="vdm_dissolve_auto", api_visibility="undocumented")

    reset.then(quiet(views.forward, 4), fwd_in, fwd_out, api_name="vdm_forward_reset",
               api_visibility="undocumented")
    reset.then(friendly(views.curves), [dataset, t], curves, api_name="vdm_curves_reset",
               api_visibility="undocumented")
    reset.then(quiet(reverse.reset, 6), run_in, run_out, api_name="vdm_reset_reset",
               api_visibility="undocumented")
    reset.then(quiet(views.dissolve, 2), dissolve_in, dissolve_out,
               api_name="vdm_dissolve_reset", api_visibility="undocumented")


if __name__ == "__main__":
    with gr.Blocks(title="Latent Explorer: VDM") as demo:
        data = gr.Radio(["fashion-mnist", "mnist"], value=STORE.default_dataset(), label="dataset")
        create_vdm_tab(demo, data)
    demo.launch()
