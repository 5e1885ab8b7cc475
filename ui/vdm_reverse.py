"""The VDM tab's reverse process: one true run per session, stepped, streamed, stopped, rewound
and branched. The run is an `explorer.trajectory.Trajectory` kept in the session's gr.State (a
`Session`); every handler takes that state and returns it with the views of the current step.

    x_{t_prev} ~ p(x_{t_prev} | x_t) = q(x_{t_prev} | x_t, x0_hat),  x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps_hat) / sqrt(alpha_bar_t)

Two events of one session (say Step clicked during Run) never move the same run at once: each
takes the session's lock, and one that finds it taken says so instead of waiting.
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass

import gradio as gr
import numpy as np
import torch

from explorer.data import to_uint8
from explorer.samplers import DEFAULT_TIMESTEP_SPACING, KARRAS_RHO, SAMPLERS, TIMESTEP_SPACINGS
from explorer.trajectory import Trajectory

from . import plots
from .common import GIF_HOLD_MS, PIXEL, check_float, check_int, check_seed, compose, gif_file
from .store import STORE, check_dataset

STEPS_MAX, FILM_FRAMES, NOISE_SCALE = 1000, 10, 3.0
GIF_FRAMES, GIF_MS = 60, 80               # the run's GIF: at most 60 frames
STREAM_EVERY_S = 0.1                      # Run yields at most ~10 frames a second
BLANK = np.full((28, 28), 40, np.uint8)


@dataclass(eq=False)
class Session:
    """A session's reverse run, the dataset whose VDM it runs, and how many of its steps the
    page shows (the last `views`)."""
    dataset: str
    run: Trajectory
    shown: int = 0


_locks: "weakref.WeakKeyDictionary[Session, threading.Lock]" = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()


_stops: "weakref.WeakKeyDictionary[Session, threading.Event]" = weakref.WeakKeyDictionary()


def _lock(session: Session) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(session, threading.Lock())


def _stop_flag(session: Session) -> threading.Event:
    with _locks_guard:
        return _stops.setdefault(session, threading.Event())


def _busy() -> gr.Error:
    return gr.Error("A run is in progress in this page: press Stop first.", title="Busy",
                    print_exception=False)


# ---------------------------------------------------------------- the views of a run

def _image(x: torch.Tensor, scale: float = 1.0) -> np.ndarray:
    return to_uint8((x / scale).clamp(-1, 1))[0]


def views(session: Session, shown: int | None = None):
    """What the page shows after `shown` steps (default: all taken): the step panel
    (x_t | eps_hat | x0_hat | x_t_prev), the filmstrip of the run so far, a caption, the numbers
    and the update of the step slider. Returns (session, panel, film, text, numbers, slider)."""
    run = session.run
    shown = run.taken if shown is None else check_int("step", shown, 0, run.taken)
    session.shown = shown
    timesteps = run.timesteps(STORE.model(session.dataset, "vdm").schedule)
    t_of = lambda k: timesteps[k] if k < len(timesteps) else 0        # t before step k
    if shown == 0:
        frames = [_image(run.xs[0]), BLANK, BLANK, BLANK]
        labels = [f"x_T (t = {t_of(0)})", "eps_hat", "x0_hat", "next"]
    else:
        k = shown - 1
        frames = [_image(run.xs[k]), _image(run.eps[k], NOISE_SCALE), _image(run.x0s[k]),
                  _image(run.xs[k + 1])]
        labels = [f"x_t, t = {t_of(k)}", f"eps_hat / {NOISE_SCALE:g}", "x0_hat",
                  f"x_t, t = {t_of(k + 1)}"]
    panel = compose([frames], PIXEL - 2, labels, font_size=20)
    picks = sorted(set(np.linspace(0, shown, min(FILM_FRAMES, shown + 1)).round().astype(int)))
    film = compose([[_image(run.xs[k]) for k in picks],
                    [_image(run.x0s[k - 1]) if k else BLANK for k in picks]], 4,
                   [f"t={t_of(k)}" for k in picks], ["x_t", "x0_hat"], font_size=16)
    seed = run.seed_of(max(shown - 1, 0))
    text = (f"**{run.sampler.upper()}**{f' (eta = {run.eta:g})' if run.sampler == 'ddim' else ''}"
            f", {run.steps} steps: **{shown} taken** (t = {t_of(shown)})"
            f"{' of ' + str(run.taken) + ' in the run' if shown < run.taken else ''}"
            f"{', done: x_0 reached' if run.done and shown == run.taken else ''}; "
            f"noise seed {seed}" + (f", branches at steps {[b[0] for b in run.branches[1:]]}"
                                    if len(run.branches) > 1 else "")
            + f"; steps {spacing_words(run.timestep_spacing)}")
    numbers = {"dataset": session.dataset, "sampler": run.sampler, "eta": run.eta,
               "steps": run.steps, "timestep_spacing": run.timestep_spacing,
               "timesteps": list(timesteps), "taken": run.taken, "shown": shown, "t": t_of(shown),
               "done": run.done, "branches": [list(b) for b in run.branches]}
    slider = gr.update(maximum=max(run.taken, 1), value=shown, interactive=run.taken > 0)
    return session, panel, film, text, numbers, slider


def run_gif(session: Session | None) -> str:
    """A GIF of the run so far, for slides: frames [x_t | x0_hat] as in the filmstrip (x0_hat
    of the step that led to x_t; blank before the first), at min(taken + 1, GIF_FRAMES) evenly
    spaced moments 0..taken, the first and last always among them (the last held). Reads the
    run without changing it. Returns the GIF's path."""
    session = _require(session)
    run = session.run
    xs, x0s = list(run.xs), list(run.x0s)                # a snapshot: Run may be appending
    taken = min(len(x0s), len(xs) - 1)
    timesteps = run.timesteps(STORE.model(session.dataset, "vdm").schedule)
    t_of = lambda k: timesteps[k] if k < len(timesteps) else 0        # t before step k
    picks = np.linspace(0, taken, min(GIF_FRAMES, taken + 1)).round().astype(int).tolist()
    frames = [[_image(xs[k]), _image(x0s[k - 1]) if k else BLANK] for k in picks]
    labels = [[f"x_t, t = {t_of(k)}", f"x0_hat, step {k}"] for k in picks]
    durations = [GIF_MS] * (len(picks) - 1) + [GIF_HOLD_MS]
    return gif_file(frames, labels, PIXEL - 2, durations, f"vdm-run-{run.sampler}")


def steps_plot(session: Session | None):
    """Where the run's steps fall on its VDM's log-SNR(t) (plots.steps_plot), after the steps
    the page shows; None before the first run."""
    if session is None:
        return None
    run = session.run
    schedule = STORE.model(session.dataset, "vdm").schedule
    log_snr = schedule.log_snr.numpy()
    figure = STORE.cached(("vdm", session.dataset, "steps"), lambda: plots.steps_figure(log_snr))
    return plots.steps_plot(figure, log_snr, run.timesteps(schedule),
                            min(session.shown, run.taken), spacing_words(run.timestep_spacing))


# ---------------------------------------------------------------- handlers

def spacing_words(spacing: str) -> str:
    """How a run's steps are spaced, in words for its caption."""
    return f"spaced by Karras' ρ = {KARRAS_RHO:g}" if spacing == "karras" else "evenly in t"


def reset(dataset: str, sampler: str = "ddpm", steps: int = 50, eta: float = 0.0,
          seed: int = 0, spacing: str = DEFAULT_TIMESTEP_SPACING, session: Session | None = None):
    """A new run: x_T ~ p(x_T) (the model's prior) drawn from `seed`, with the chosen sampler,
    step count and timestep spacing."""
    check_dataset(dataset)
    model = STORE.model(dataset, "vdm")
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; valid: {', '.join(SAMPLERS)}")
    if spacing not in TIMESTEP_SPACINGS:
        raise ValueError(f"unknown spacing {spacing!r}; valid: {', '.join(TIMESTEP_SPACINGS)}")
    steps = check_int("steps", steps, 1, min(STEPS_MAX, model.T))
    eta = check_float("eta", eta, 0.0, 1.0)
    if session is not None and not _lock(session).acquire(blocking=False):
        raise _busy()
    try:
        return views(Session(dataset, Trajectory.start(sampler, steps, eta, check_seed(seed),
                                                       prior=model.prior_from_standard,
                                                       timestep_spacing=spacing)))
    finally:
        if session is not None:
            _lock(session).release()


def reconfigure(dataset: str, sampler: str = "ddpm", steps: int = 50, eta: float = 0.0,
                seed: int = 0, spacing: str = DEFAULT_TIMESTEP_SPACING,
                session: Session | None = None):
    """A control changed: a new run with these settings, as `reset` (and the old run's GIF
    cleared: the views and None), unless the session's run already has them. A slider fires its
    release again when its number box loses focus (say, on the way to Run); that must neither
    wipe the steps taken nor race the run."""
    if session is not None:
        run = session.run
        try:
            same = (session.dataset, run.sampler, run.steps, run.eta, run.branches[0][1],
                    run.timestep_spacing) == (dataset, sampler, int(steps), float(eta), int(seed),
                                              spacing)
        except (TypeError, ValueError):
            same = False                                   # reset says what is wrong
        if same:
            return (gr.skip(),) * 7
    return (*reset(dataset, sampler, steps, eta, seed, spacing, session), None)


def _require(session: Session | None) -> Session:
    if session is None:
        raise ValueError("there is no run yet: press Reset")
    return session


def step(session: Session | None, n: int = 1):
    """Take the next n steps (1 by default) of the session's run."""
    session = _require(session)
    n = check_int("n", n, 1, STEPS_MAX)
    model = STORE.model(session.dataset, "vdm")
    if not _lock(session).acquire(blocking=False):
        raise _busy()
    try:
        for _ in range(n):
            if session.run.advance(model.predict_noise, model.schedule) is None:
                gr.Info("The run is done: x_0 reached. Rewind, branch or reset.")
                break
        return views(session)
    finally:
        _lock(session).release()


def run(session: Session | None):
    """Take every remaining step, streaming the views at most every STREAM_EVERY_S seconds
    (and the last). Stop (`stop`) ends it after the step under way; the steps taken stay."""
    session = _require(session)
    model = STORE.model(session.dataset, "vdm")
    if not _lock(session).acquire(blocking=False):
        raise _busy()
    stop = _stop_flag(session)
    stop.clear()
    try:
        last = 0.0
        for _ in session.run.run(model.predict_noise, model.schedule):
            if stop.is_set():                              # Stop: no step after this one
                break
            if time.monotonic() - last >= STREAM_EVERY_S:
                last = time.monotonic()
                yield views(session)
        yield views(session)
    finally:
        _lock(session).release()


def stop(session: Session | None) -> None:
    """Stop: the session's run takes no step after the one under way (the streaming event is
    cancelled too, but its worker thread would finish the frame it is computing)."""
    if session is not None:
        _stop_flag(session).set()


def stopped(session: Session | None):
    """The views of a stopped run, once it has let go of the session (up to 10 s)."""
    session = _require(session)
    lock = _lock(session)
    if lock.acquire(timeout=10):
        lock.release()
    return views(session)


def show(session: Session | None, shown: int | None = None):
    """The views after `shown` steps (default: every step taken), without changing the run (the
    step slider; after Stop, the last step the stopped run took)."""
    return views(_require(session), shown)


def rewind(session: Session | None, shown: int, seed=None):
    """Go back to the moment `shown` steps had been taken; with a seed, branch there: every
    later step draws its noise from the new seed (DDIM with eta = 0 draws none)."""
    session = _require(session)
    if not _lock(session).acquire(blocking=False):
        raise _busy()
    try:
        session.run.rewind(check_int("step", shown, 0, session.run.taken))
        if seed is not None:
            session.run.branch(check_seed(seed))
        return views(session)
    finally:
        _lock(session).release()


def branch(session: Session | None, shown: int, seed: int):
    """Rewind to `shown` steps and continue with noise from `seed` (one step is taken at once,
    so the branch shows)."""
    rewind(session, shown, seed)
    return step(session, 1)
