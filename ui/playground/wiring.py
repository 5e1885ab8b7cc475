"""The 2-D playground's events. The page's controls make or reconfigure the session's lab and
feed both views (`playground_view`); drawing points on the data plot is the view's 'draw'
event; Train, Pause, Stop, the field and the trajectories are the views' own server functions
(ui/playground/live.py). The public API (`playground_setup`, `playground_train`,
`playground_field`, `playground_trajectories`, the downloads) runs the same code on the same
lab, kept in the session's state.
"""

from __future__ import annotations

import json
import time

import gradio as gr

from explorer.toy.data import check_points

from ..common import friendly, reveal
from ..events import api, on
from ..page import event_data, view_event
from . import lab as labs
from . import views
from .layout import PlaygroundTab

TRAIN_REPORT_S = 0.5              # the API's training stream: one message this often


def _settings(data, size, seed, schedule, width, depth, lr, iterations, batch) -> labs.Settings:
    return labs.Settings(data=data, size=int(size), seed=int(seed), schedule=schedule,
                         width=int(width), depth=int(depth), lr=float(lr), steps=int(iterations),
                         batch=int(batch))


def _lab(state) -> labs.Lab:
    if not isinstance(state, labs.Lab):
        raise ValueError("no playground in this session yet: call playground_setup first (or "
                         "open the 2-D playground tab)")
    return labs.remember(state)


# ---------------------------------------------------------------- the page

def reconfigure_view(data, size, seed, schedule, width, depth, lr, iterations, batch, state):
    """A control changed (or the page loaded): the session's lab for these settings, and both
    views' data."""
    settings = _settings(data, size, seed, schedule, width, depth, lr, iterations, batch)
    if data == "drawn" and (state is None or getattr(state, "drawn", None) is None):
        raise ValueError("no points drawn yet: click on the data plot to add points (at least 2)")
    lab = labs.reconfigure(state if isinstance(state, labs.Lab) else None, settings)
    value = views.view_data(lab)
    return lab, value, value


def draw_view(data, size, seed, schedule, width, depth, lr, iterations, batch, state,
              evt: gr.EventData):
    """Points drawn on the data plot ({"points": [[x, y], ...]}): a lab on them."""
    drawn = check_points(event_data(evt).get("points"))
    settings = _settings("drawn", size, seed, schedule, width, depth, lr, iterations, batch)
    lab = labs.reconfigure(state if isinstance(state, labs.Lab) else None, settings, drawn)
    value = views.view_data(lab)
    return "drawn", lab, value, value


def paths_export(state, evt: gr.EventData):
    """The trajectories the reverse view shows ({"what": "gif" | "csv", "n", "steps", "seed"})
    as a file."""
    asked = event_data(evt)
    lab = _lab(state)
    result = views.trajectories(lab, asked.get("n", 200), asked.get("steps", 100),
                                asked.get("seed", 0))
    if asked.get("what") == "csv":
        return views.trajectories_csv(result)
    return views.trajectories_gif(result, lab.points)


# ---------------------------------------------------------------- the public API

def setup(data, size, seed, schedule, width, depth, lr, iterations, batch, points, state):
    """A lab for these settings (points: JSON [[x, y], ...], used when data is 'drawn')."""
    drawn = None
    if data == "drawn":
        try:
            drawn = check_points(json.loads(points or "null"))
        except json.JSONDecodeError as e:
            raise ValueError(f"points: not JSON ({e.msg}); valid: [[x, y], ...]") from None
        except ValueError as e:
            raise ValueError(f"points: {e}") from None
    settings = _settings(data, size, seed, schedule, width, depth, lr, iterations, batch)
    lab = labs.reconfigure(state if isinstance(state, labs.Lab) else None, settings, drawn)
    return lab, labs.summary(lab)


def train_stream(state):
    """Train to the iterations asked for (or the time limit), reporting as it goes."""
    lab = _lab(state)
    labs.train(lab)
    try:
        while lab.training:
            time.sleep(TRAIN_REPORT_S)
            yield labs.summary(lab)
        yield labs.summary(lab)
    finally:
        if lab.training:                     # the caller went away: pause, keep the model
            labs.halt(lab, "paused")


def pause(state):
    return labs.summary(labs.halt(_lab(state), "paused"))


def stop(state):
    return labs.summary(labs.halt(_lab(state), "stopped"))


def field(state, t, grid, which):
    """The field at t as numbers: the grid's points, eps_hat, eps* (or the scores), the gap
    |eps_hat - eps*| and, at t, E||eps - eps_hat||^2 beside the exact E||eps - eps*||^2."""
    out = views.field(_lab(state), t, grid, which)
    return {"t": out["t"], "grid": out["grid"], "which": which,
            **{k: out[k].round(5).tolist() for k in ("points", "learned", "exact", "gap")},
            "gap_mean": out["gap_mean"], "mse_at_t": out["mse"]}


def trajectories(state, n, steps, seed):
    lab = _lab(state)
    result = views.trajectories(lab, n, steps, seed)
    summary = views.trajectories_summary(result, lab.points)
    summary["x_0"] = {name: run[-1].round(5).tolist() for name, run in result["runs"].items()}
    return summary, views.trajectories_csv(result)


def trajectories_gif(state, n, steps, seed):
    lab = _lab(state)
    return views.trajectories_gif(views.trajectories(lab, n, steps, seed), lab.points)


def wire(tab: PlaygroundTab, page: gr.HTML) -> None:
    controls = [tab.data, tab.size, tab.seed, tab.schedule, tab.width, tab.depth, tab.lr,
                tab.iterations, tab.batch]
    views_out = [tab.state, tab.toy, tab.paths]
    on(reconfigure_view, [*controls, tab.state], views_out, api_name="playground_view",
       api_visibility="undocumented", concurrency_limit=4,
       user=[tab.data.change, tab.size.release, tab.seed.input, tab.schedule.input,
             tab.width.release, tab.depth.release, tab.lr.input, tab.iterations.release,
             tab.batch.release, view_event(tab.toy, "reset")],
       auto=[page.load])
    view_event(tab.toy, "draw")(friendly(draw_view), [*controls, tab.state],
                                [tab.data, *views_out], api_name="playground_draw_view",
                                api_visibility="undocumented", show_progress="hidden")
    for button, fn, name in ((tab.training_gif, views.training_gif, "playground_training_gif"),
                             (tab.points_csv, views.points_csv, "playground_points_csv"),
                             (tab.model_zip, views.model_zip, "playground_model")):
        reveal(button.click(friendly(lambda state, fn=fn: fn(_lab(state))),
                            tab.state, tab.files, api_name=name), tab.files)
    reveal(view_event(tab.paths, "export")(friendly(paths_export), tab.state, tab.paths_files,
                                           api_name="playground_paths_export",
                                           api_visibility="undocumented"), tab.paths_files)

    ports = tab.api
    api(setup, [*controls, ports.points, tab.state], [tab.state, ports.numbers],
        api_name="playground_setup")
    api(train_stream, tab.state, ports.numbers, api_name="playground_train",
        concurrency_limit=labs.TRAINING_AT_ONCE, concurrency_id="playground-train")
    api(pause, tab.state, ports.numbers, api_name="playground_pause")
    api(stop, tab.state, ports.numbers, api_name="playground_stop")
    api(field, [tab.state, ports.t, ports.grid, ports.which], ports.numbers,
        api_name="playground_field")
    api(trajectories, [tab.state, ports.n, ports.steps, ports.seed],
        [ports.numbers, tab.paths_files], api_name="playground_trajectories")
    api(trajectories_gif, [tab.state, ports.n, ports.steps, ports.seed], tab.paths_files,
        api_name="playground_trajectories_gif")
