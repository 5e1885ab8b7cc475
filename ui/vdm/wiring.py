"""The VDM tab's events. The page's own events feed its views (the scrub: x_0, eps and the
schedules' tables once per image; the reverse run: a new run when Reset or a setting asks for
one) and are named `*_view`; the run view moves its run through server functions of its own
(ui/vdm/live.py). The public API (`vdm_forward`, `vdm_reset`, `vdm_step`, ...) keeps its results
(PNG pictures, plots, JSON) through endpoints of its own (ui/events.py `api`), on the same
handlers.
"""

from __future__ import annotations

import gradio as gr

from ..common import file_shown, friendly, png_file, reveal
from ..events import api, on
from ..page import event_data, view_event
from ..panel import InputPanel
from . import frames, live, pagerun, run, views
from .layout import VDMTab

SAMPLER = dict(concurrency_limit=2, concurrency_id="vdm-sampler")   # network-bound work


def wire(tab: VDMTab, page: gr.HTML, dataset: gr.Radio, panel: InputPanel) -> None:
    a = [panel.a_index, panel.a_image]
    _forward(tab, page, dataset, a, panel.a_key)
    _reverse(tab, page, dataset)
    _the_rest(tab, page, dataset, panel, a)


# ---------------------------------------------------------------- forward process

def scrub_view(dataset, index, image, schedule, seed, scene_t):
    """A new x_0 or eps for the scrub view (its value); the old scrub's files go."""
    return views.scrub_view_data(dataset, index, image, schedule, seed, scene_t), file_shown(None)


def _forward(tab: VDMTab, page: gr.HTML, dataset: gr.Radio, a: list, a_key: gr.State) -> None:
    """The scrub view mixes x_t itself as its t moves: the server sends it x_0, eps and the
    schedules' tables when the image, the schedule or the seed change (or a scene sets t)."""
    source = [dataset, *a, tab.schedule, tab.noise_seed]
    ports = tab.api
    on(scrub_view, [*source, ports.t], [tab.scrub, tab.forward_file], api_name="vdm_scrub_view",
       api_visibility="undocumented", concurrency_limit=8,
       user=[tab.schedule.change, tab.noise_seed.change, ports.t.change],
       auto=[page.load, a_key.change])

    def xt_png(dataset, index, image, schedule, seed, evt: gr.EventData):
        return views.scrub_png(dataset, index, image, schedule, seed, event_data(evt).get("t", 0))
    reveal(view_event(tab.scrub, "png")(friendly(xt_png), source, tab.forward_file,
                                        api_name="vdm_scrub_png", api_visibility="undocumented"),
           tab.forward_file)
    reveal(tab.scrub_gif.click(friendly(views.scrub_gif), [*source, tab.gif_frames],
                               tab.forward_file, api_name="vdm_scrub_gif"), tab.forward_file)
    api(views.forward, [*source, ports.t], [ports.x_t, ports.histogram, ports.scrub_numbers],
        api_name="vdm_forward")
    api(views.curves, [dataset, ports.t], ports.curves, api_name="vdm_curves")


# ---------------------------------------------------------------- the reverse run

def reset_view(dataset, sampler, steps, eta, seed, spacing, session):
    session = live.remember(run.reset(dataset, sampler, steps, eta, seed, spacing, session))
    return session, frames.message(session), file_shown(None)


def reconfigure_view(dataset, sampler, steps, eta, seed, spacing, session):
    """A setting changed: a new run, unless the session's run already has these settings."""
    if run.unchanged(dataset, sampler, steps, eta, seed, spacing, session):
        return gr.skip(), gr.skip(), gr.skip()
    return reset_view(dataset, sampler, steps, eta, seed, spacing, session)


def run_png(session, evt: gr.EventData):
    """The step panel, the filmstrip or the GIF of the run the page shows (the view's 'png':
    {what, shown, at}), drawn by the server from the same pixels. `at` ({taken, branches}): the
    page's run when the page took its steps itself; the server's copy catches up first."""
    session = run._require(session)
    data = event_data(evt)
    if isinstance(data.get("at"), dict):
        pagerun.catch_up(session, data["at"].get("taken"), data["at"].get("branches"))
    if data.get("what") == "gif":
        return run.run_gif(session)
    shown = data.get("shown", session.run.taken)
    shown = min(int(shown) if isinstance(shown, (int, float)) else 0, session.run.taken)
    if data.get("what") == "film":
        return png_file(run.film_picture(session, shown), name=f"vdm-film-{shown}")
    return png_file(run.panel_picture(session, shown), name=f"vdm-step-{shown}")


def _reverse(tab: VDMTab, page: gr.HTML, dataset: gr.Radio) -> None:
    settings = [dataset, tab.sampler, tab.steps, tab.eta, tab.seed, tab.spacing, tab.run_state]
    view_out = [tab.run_state, tab.run]
    event = lambda name: view_event(tab.run, name)                          # noqa: E731
    # (a second reset while one runs, the page loading then a scene's dataset, runs after it:
    # the last run made is the one the page and the session hold; `on` is always_last)
    on(reset_view, settings, [*view_out, tab.run_file], api_name="vdm_reset_view",
       api_visibility="undocumented", user=[event("reset")], auto=[page.load, dataset.change])
    on(reconfigure_view, settings, [*view_out, tab.run_file], api_name="vdm_reconfigure_view",
       api_visibility="undocumented",
       user=[tab.sampler.change, tab.steps.input, tab.eta.input, tab.seed.input,
             tab.spacing.change])
    # Step, Run, Stop, rewind and branch: the view's own server functions (ui/vdm/live.py)
    reveal(event("png")(friendly(run_png), tab.run_state, tab.run_file, api_name="vdm_run_png",
                        api_visibility="undocumented", **SAMPLER), tab.run_file)

    # the public API: one run per session, driven in turns, answered with PNG pictures
    ports = tab.api
    pictures = [tab.run_state, ports.panel, ports.film, ports.text, ports.numbers, ports.shown]
    api(run.api_reset, settings, pictures, api_name="vdm_reset")
    api(run.run_gif, tab.run_state, tab.run_file, api_name="vdm_run_gif")
    api(run.api_step, tab.run_state, pictures, api_name="vdm_step", **SAMPLER)
    api(run.api_run, tab.run_state, pictures, api_name="vdm_run", **SAMPLER)
    # Stop sets the run's flag: the streaming run ends after the step under way and its stream
    # completes with the last pictures (cancelling the event instead would leave a raw HTTP
    # caller's stream open)
    api(run.stop, tab.run_state, None, api_name="vdm_stop").then(
        friendly(run.api_stopped), tab.run_state, pictures, api_name="vdm_stopped",
        api_visibility="undocumented")
    api(run.api_show, [tab.run_state, ports.shown], pictures, api_name="vdm_show")
    api(run.api_rewind, [tab.run_state, ports.shown], pictures, api_name="vdm_rewind")
    api(run.api_branch, [tab.run_state, ports.shown, ports.branch_seed], pictures,
        api_name="vdm_branch", **SAMPLER)


# ---------------------------------------------------------------- noise and denoise, etc.

def _the_rest(tab: VDMTab, page: gr.HTML, dataset: gr.Radio, panel: InputPanel,
              a: list) -> None:
    b = [panel.b_index, panel.b_image]
    reveal(tab.nd_button.click(friendly(views.noise_and_denoise),
                               [dataset, *a, tab.nd_t, tab.nd_steps, tab.nd_sampler, tab.nd_seed],
                               [tab.nd_grid, tab.nd_numbers], api_name="vdm_denoise", **SAMPLER),
           tab.nd_grid)

    reveal(tab.itp_button.click(friendly(views.interpolate),
                                [dataset, *a, *b, tab.frames, tab.itp_steps],
                                [tab.slerp, tab.fade, tab.itp_numbers, tab.itp_gif],
                                api_name="vdm_interpolate", **SAMPLER),
           tab.slerp, tab.fade, tab.itp_gif)
    reveal(tab.loss_button.click(friendly(views.loss_over_time),
                                 [dataset, *a, tab.points, tab.noise_seed],
                                 [tab.loss_curve, tab.loss_terms, tab.loss_numbers],
                                 api_name="vdm_loss", **SAMPLER), tab.loss_curve)
    on(views.dissolve, [dataset, tab.dissolve_t, tab.schedule],
       [tab.dissolve_map, tab.dissolve_csv], api_name="vdm_dissolve",
       user=[tab.dissolve_t.change, tab.schedule.change], auto=[page.load, dataset.change])
