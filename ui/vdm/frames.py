"""The reverse run as the page's run view receives it (ui/static/views/run.js): compact messages
of uint8 pictures in base64, about 3 KB a step, instead of a PNG panel, a PNG filmstrip and a
Plotly figure per step. The page keeps the run's history and draws every view of it from these.

    {"seq", "run", "start", "taken", "done", "branches", "steps": [{"t", "eps", "x0", "x"}, ...],
     "head": {...} (a new run: timesteps, log-SNR curve, x_T, sampler, eta, steps, seed, ...,
              compute: what the page runs the network with, or null: ui/compute.py)}

It is the run view's value. `steps[i]` is step start + i: eps_hat / NOISE_SCALE, x0_hat and the sample after the step, as
`ui.vdm.run.image` makes them for the PNGs (so canvas and download show the same pixels). The
page cuts its history to `start` steps and appends; a page that lacks steps a message builds on
asks for them (`since`, the 'resync' event).
"""

from __future__ import annotations

from ..common import BACKGROUND
from ..compute import page_compute
from ..page import float32_b64, uint8_b64
from ..store import STORE
from .run import (FILM_FRAMES, FILM_LABEL, FILM_ROWS, GIF_FRAMES, NOISE_SCALE, PANEL_LABELS,
                  PANEL_PIXEL, Session, image, spacing_words)

# what the run view draws with, beside the MANIFEST (ui/page.py)
CONFIG = {"panel": PANEL_LABELS, "gif_frames": GIF_FRAMES,
          "film": {"frames": FILM_FRAMES, "label": FILM_LABEL, "rows": FILM_ROWS},
          "noise_scale": NOISE_SCALE, "panel_pixel": PANEL_PIXEL, "background": BACKGROUND}


def _head(session: Session) -> dict:
    run = session.run
    schedule = STORE.model(session.dataset, "vdm").schedule
    return {"key": session.key, "dataset": session.dataset, "sampler": run.sampler, "eta": run.eta,
            "steps": run.steps, "evaluations": run.evaluations, "seed": run.branches[0][1],
            "spacing": spacing_words(run.timestep_spacing),
            "timesteps": list(session.timesteps()),
            "log_snr": float32_b64(schedule.log_snr[1:].numpy()),     # t = 1..T
            "x_T": uint8_b64(image(run.xs[0])), "compute": _page_compute(session.dataset)}


def _page_compute(dataset: str) -> dict | None:
    """What the page runs the network with (ui/compute.py), None when it cannot: made once per
    dataset (it hashes the graphs)."""
    return STORE.cached(("page-compute", dataset), lambda: page_compute(dataset))


def _step(session: Session, k: int) -> dict:
    run = session.run
    return {"t": session.t_before(k), "eps": uint8_b64(image(run.eps[k], NOISE_SCALE)),
            "x0": uint8_b64(image(run.x0s[k])), "x": uint8_b64(image(run.xs[k + 1]))}


def taken(session: Session) -> int:
    """Steps the run has taken and fully recorded (a Run may be appending as this reads)."""
    run = session.run
    return min(len(run.x0s), len(run.eps), len(run.xs) - 1)


def message(session: Session, since: int | None = None, page_run: int | None = None,
            stopped: bool = False, limit: int | None = None) -> dict:
    """The message that brings a page holding `since` steps of run `page_run` up to date: every
    step from `since` on (a new head and every step when the page holds another run), at most
    `limit` of them (the page asks again for the rest). `stopped`: the reply to the page's Stop
    (the page draws again from it)."""
    run = session.run
    done_steps = taken(session)
    head = page_run != session.id or since is None
    start = 0 if head else min(int(since), done_steps)
    end = done_steps if limit is None else min(done_steps, start + limit)
    msg = {"seq": session.next_seq(), "run": session.id, "start": start, "taken": done_steps,
           "done": done_steps >= run.evaluations, "branches": [list(b) for b in run.branches],
           "steps": [_step(session, k) for k in range(start, end)]}
    if stopped:
        msg["stopped"] = True
    if head:
        msg["head"] = _head(session)
    return msg


def held(data: dict) -> tuple[int | None, int | None]:
    """(steps the page holds, its run id) from what the run view sent with an event."""
    since, run = data.get("have"), data.get("run")
    return (int(since) if isinstance(since, (int, float)) else None,
            int(run) if isinstance(run, (int, float)) else None)
