"""The VDM tab's reverse process: one true run per session, stepped, streamed, stopped, rewound
and branched. The run is an `explorer.trajectory.Trajectory` kept in the session's gr.State (a
`Session`). The handlers below move it and return the Session; what is shown of it is made by a
renderer: `pictures` (PNG panel and filmstrip: the public API and the downloads) or
`ui.vdm.frames.message` (the page's view, compact arrays).

    x_{t_prev} ~ p(x_{t_prev} | x_t) = q(x_{t_prev} | x_t, x0_hat),  x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps_hat) / sqrt(alpha_bar_t)

Two events of one session (say Step clicked during Run) never move the same run at once: each
takes the session's lock, and one that finds it taken says so instead of waiting.

Runs are bounded in memory: every run's recorded steps together stay under RUNS_BYTES (a
1000-step run records ~9 MB); past it, the runs least recently moved are put away (their steps
dropped) and say "press Reset" when next asked to move.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import gradio as gr
import numpy as np
import torch

from explorer.data import to_uint8
from explorer.samplers import (DEFAULT_TIMESTEP_SPACING, KARRAS_RHO, SAMPLERS, TIMESTEP_SPACINGS,
                               network_evaluations)
from explorer.trajectory import Trajectory

from ..common import GIF_HOLD_MS, PIXEL, check_float, check_int, check_seed, compose, gif_file
from ..store import STORE, check_dataset

STEPS_MAX, FILM_FRAMES, NOISE_SCALE = 1000, 10, 3.0
PANEL_PIXEL, FILM_PIXEL = PIXEL - 2, 4         # screen pixels a model pixel, panel and film
PANEL_LABELS = {"start": ["x_T (t = {t})", "eps_hat", "x0_hat", "next"],
                "step": ["x_t, t = {t}", f"eps_hat / {NOISE_SCALE:g}", "x0_hat",
                         "x_t, t = {t_next}"]}
FILM_LABEL, FILM_ROWS = "t={t}", ["x_t", "x0_hat"]
GIF_FRAMES, GIF_MS = 60, 80               # the run's GIF: at most 60 frames
STREAM_EVERY_S = 0.1                      # the API's Run yields at most ~10 frames a second
BLANK = np.full((28, 28), 40, np.uint8)
RUNS_BYTES = 256 * 2**20                  # every session's recorded steps, all together
_RUN_IDS = itertools.count(1)
_TICKS = itertools.count(1)


@dataclass(eq=False)
class Session:
    """A session's reverse run, the dataset whose VDM it runs, how many of its steps are shown
    (the last `pictures`), an id that changes with every new run, the key its page follows it
    by (ui/vdm/live.py) and the numbers of the messages sent to the page (ui/vdm/frames.py)."""
    dataset: str
    run: Trajectory
    shown: int = 0
    id: int = field(default_factory=lambda: next(_RUN_IDS))
    key: str = field(default_factory=lambda: secrets.token_urlsafe(12), repr=False)
    next_seq: Callable[[], int] = field(default_factory=lambda: itertools.count(1).__next__,
                                        repr=False)
    active: bool = False                      # a Run is taking its steps
    queued: bool = False                      # a Run waits for a sampler worker (ui/vdm/live.py)
    ticket: object = field(default=None, repr=False)     # the Run that may start
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _waiters: list = field(default_factory=list, repr=False)
    _waiters_guard: threading.Lock = field(default_factory=threading.Lock, repr=False)
    used: int = field(default_factory=lambda: next(_TICKS), repr=False)   # last moved (order)
    put_away: bool = False                    # its steps were dropped to bound memory

    def __post_init__(self) -> None:
        with _ALL_GUARD:
            _ALL.add(self)

    def nbytes(self) -> int:
        """Bytes of the run's recorded tensors (x_t, x0_hat and eps_hat of every step, all of
        x_T's shape and type): counted, not summed, since every move of every run asks."""
        r = self.run
        one = r.xs[0].element_size() * r.xs[0].nelement()
        return (len(r.xs) + len(r.x0s) + len(r.eps)) * one

    def __deepcopy__(self, memo):             # gr.State copies its value per session: this
        return self                           # one is made per session already

    def on_change(self, loop, event) -> None:
        """Set the asyncio `event` (on its `loop`) at the run's next change (ui/vdm/live.py)."""
        with self._waiters_guard:
            self._waiters.append((loop, event))

    def notify(self) -> None:
        """The run changed (a step, a start, an end): wake whoever waits for it."""
        with self._waiters_guard:
            waiters, self._waiters = self._waiters, []
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)

    def timesteps(self) -> tuple[int, ...]:
        return self.run.timesteps(STORE.model(self.dataset, "vdm").schedule)

    def t_before(self, k: int) -> int:
        """t of the run before step k (0 once every step is taken: x_0)."""
        timesteps = self.timesteps()
        return timesteps[k] if k < len(timesteps) else 0


def _busy() -> gr.Error:
    return gr.Error("A run is in progress in this page: press Stop first.", title="Busy",
                    print_exception=False)


class _Holding:
    """The session's lock for one move of its run; busy when another move holds it."""

    def __init__(self, session: Session):
        self.session = session

    def __enter__(self) -> Session:
        # a Run that is ending (no longer active) lets go in a moment: wait for that, not more
        if not self.session.lock.acquire(timeout=0 if self.session.active else 0.5):
            raise _busy()
        self.session.used = next(_TICKS)
        return self.session

    def __exit__(self, *_) -> None:
        self.session.lock.release()
        put_away_beyond(RUNS_BYTES)


_ALL: weakref.WeakSet[Session] = weakref.WeakSet()      # every session's run still referenced
_ALL_GUARD = threading.Lock()


def put_away_beyond(budget: int) -> int:
    """Drop the recorded steps of the least recently moved runs (not one that is moving) until
    every run's steps together take at most `budget` bytes. Returns the bytes held after."""
    with _ALL_GUARD:
        sessions = sorted((s for s in _ALL if not s.put_away), key=lambda s: s.used)
    sizes = {id(s): s.nbytes() for s in sessions}
    total = sum(sizes.values())
    for old in sessions:
        if total <= budget:
            break
        if old.active or not old.lock.acquire(blocking=False):
            continue                                      # moving now: not this one
        try:
            old.put_away = True
            old.run.xs[1:], old.run.x0s[:], old.run.eps[:] = [], [], []
            total -= sizes[id(old)] - old.nbytes()
        finally:
            old.lock.release()
        old.notify()
    return total


def _require(session: Session | None) -> Session:
    if session is None:
        raise ValueError("session: there is no run yet: press Reset")
    if session.put_away:
        raise ValueError("session: this run was put away to make room for newer ones (the "
                         "server keeps the most recently used): press Reset")
    return session


def spacing_words(spacing: str) -> str:
    """How a run's steps are spaced, in words for its caption."""
    return f"spaced by Karras' ρ = {KARRAS_RHO:g}" if spacing == "karras" else "evenly in t"


# ---------------------------------------------------------------- moving the run

def reset(dataset: str, sampler: str = "ddpm", steps: int = 50, eta: float = 0.0,
          seed: int = 0, spacing: str = DEFAULT_TIMESTEP_SPACING,
          session: Session | None = None) -> Session:
    """A new run: x_T ~ p(x_T) (the model's prior) drawn from `seed`, with the chosen sampler,
    step count and timestep spacing."""
    check_dataset(dataset)
    model = STORE.model(dataset, "vdm")
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; valid: {', '.join(SAMPLERS)}")
    if spacing not in TIMESTEP_SPACINGS:
        raise ValueError(f"unknown spacing {spacing!r}; valid: {', '.join(TIMESTEP_SPACINGS)}")
    steps = check_int("steps", steps, 1, min(STEPS_MAX, model.T))
    if network_evaluations(sampler, steps) > STEPS_MAX:
        raise ValueError(f"steps: {steps} is too many for {sampler}, which evaluates the network "
                         f"twice a step; valid: 1..{(STEPS_MAX + 1) // 2}")
    eta = check_float("eta", eta, 0.0, 1.0)
    seed = check_seed(seed)
    if session is not None:
        with _Holding(session):                    # not while the old run is moving
            pass
    return Session(dataset, Trajectory.start(sampler, steps, eta, seed,
                                             prior=model.prior_from_standard,
                                             timestep_spacing=spacing))


def unchanged(dataset: str, sampler: str, steps, eta, seed, spacing,
              session: Session | None) -> bool:
    """Whether the session's run already has these settings. A slider fires its release again
    when its number box loses focus (say, on the way to Run): that must neither wipe the steps
    taken nor race the run."""
    if session is None:
        return False
    run = session.run
    try:
        return (session.dataset, run.sampler, run.steps, run.eta, run.branches[0][1],
                run.timestep_spacing) == (dataset, sampler, int(steps), float(eta), int(seed),
                                          spacing)
    except (TypeError, ValueError):
        return False                                   # reset says what is wrong


def step(session: Session | None, n: int = 1) -> Session:
    """Take the next n steps (1 by default) of the session's run."""
    session = _require(session)
    n = check_int("n", n, 1, STEPS_MAX)
    model = STORE.model(session.dataset, "vdm")
    with _Holding(session):
        for _ in range(n):
            if session.run.advance(model.predict_noise, model.schedule) is None:
                gr.Info("The run is done: x_0 reached. Rewind, branch or reset.")
                break
    session.shown = session.run.taken
    return session


def run(session: Session | None) -> Iterator[Session]:
    """Take every remaining step, yielding the session after each. Stop (`stop`) ends it after
    the step under way; the steps taken stay."""
    session = _require(session)
    model = STORE.model(session.dataset, "vdm")
    try:
        with _Holding(session):
            session.stop.clear()
            session.active = True
            session.notify()
            try:
                for _ in session.run.run(model.predict_noise, model.schedule):
                    session.shown = session.run.taken
                    session.notify()
                    if session.stop.is_set():              # Stop: no step after this one
                        break
                    yield session
            finally:
                session.active = False
    finally:
        session.notify()                     # once the lock is free: a Stop may rewind now


def stop(session: Session | None) -> None:
    """Stop: the session's run takes no step after the one under way (the streaming event is
    cancelled too, but its worker thread would finish the frame it is computing)."""
    if session is not None:
        session.stop.set()


def stopped(session: Session | None, at: int | None = None) -> Session:
    """The session once its stopped run has let go of it (up to 10 s); with `at`, rewound to
    the step the page showed when Stop was pressed (the steps after it replay exactly)."""
    session = _require(session)
    if session.lock.acquire(timeout=10):
        try:
            if at is not None:
                session.run.rewind(check_int("step", at, 0, session.run.taken))
        finally:
            session.lock.release()
    session.shown = session.run.taken
    return session


def rewind(session: Session | None, shown, seed=None) -> Session:
    """Go back to the moment `shown` steps had been taken; with a seed, branch there: every
    later step draws its noise from the new seed (DDIM with eta = 0 draws none)."""
    session = _require(session)
    with _Holding(session):
        session.run.rewind(check_int("shown", shown, 0, session.run.taken))
        if seed is not None:
            session.run.branch(check_seed(seed))
    session.shown = session.run.taken
    return session


def branch(session: Session | None, shown, seed) -> Session:
    """Rewind to `shown` steps and continue with noise from `seed` (one step is taken at once,
    so the branch shows)."""
    return step(rewind(session, shown, check_seed(seed)), 1)


# ---------------------------------------------------------------- pictures of a run

def image(x: torch.Tensor, scale: float = 1.0) -> np.ndarray:
    """A sample (1, 1, 28, 28) as the uint8 picture shown (divided by `scale`, clamped)."""
    return to_uint8((x / scale).clamp(-1, 1))[0]


def panel_cells(session: Session, shown: int) -> tuple[list[np.ndarray], list[str]]:
    """The step panel after `shown` steps: x_t | eps_hat / NOISE_SCALE | x0_hat | x_t_prev (a
    blank for what does not exist yet) and their labels (PANEL_LABELS)."""
    run = session.run
    if shown == 0:
        return ([image(run.xs[0]), BLANK, BLANK, BLANK],
                [s.format(t=session.t_before(0)) for s in PANEL_LABELS["start"]])
    k = shown - 1
    labels = [s.format(t=session.t_before(k), t_next=session.t_before(k + 1))
              for s in PANEL_LABELS["step"]]
    return [image(run.xs[k]), image(run.eps[k], NOISE_SCALE), image(run.x0s[k]),
            image(run.xs[k + 1])], labels


def film_picks(shown: int) -> list[int]:
    """The moments of the run the filmstrip shows after `shown` steps (the page picks the same:
    ui/static/lib/runs.js filmPicks)."""
    return sorted(set(np.linspace(0, shown, min(FILM_FRAMES, shown + 1)).round().astype(int)))


def panel_picture(session: Session, shown: int) -> np.ndarray:
    cells, labels = panel_cells(session, shown)
    return compose([cells], PANEL_PIXEL, labels, font_size=20)


def film_picture(session: Session, shown: int) -> np.ndarray:
    run, picks = session.run, film_picks(shown)
    return compose([[image(run.xs[k]) for k in picks],
                    [image(run.x0s[k - 1]) if k else BLANK for k in picks]], FILM_PIXEL,
                   [FILM_LABEL.format(t=session.t_before(k)) for k in picks], FILM_ROWS,
                   font_size=16)


def second_order_part(session: Session, k: int) -> str:
    """What step (network evaluation) k of a second-order run is: the Euler step t -> t', or
    the corrector at t' that it lands on (x_t' = the Euler point's correction)."""
    t, t_next = session.t_before(k), session.t_before(k + 1)
    return (f"the corrector at t = {t}" if t == t_next
            else f"an Euler step t = {t} -> {t_next}")


def caption(session: Session, shown: int) -> str:
    run = session.run
    parts = [f"**{run.sampler.upper()}**{f' (eta = {run.eta:g})' if run.sampler == 'ddim' else ''}"
             f", {run.steps} steps"
             + (f" ({run.evaluations} network evaluations, each a step below)"
                if run.evaluations != run.steps else "")
             + f": **{shown} taken** (t = {session.t_before(shown)})"
             + (f" of {run.taken} in the run" if shown < run.taken else "")
             + (", done: x_0 reached" if run.done and shown == run.taken else "")]
    if run.evaluations != run.steps and shown:
        parts.append(f"step {shown} was {second_order_part(session, shown - 1)}")
    parts.append(f"noise seed {run.seed_of(max(shown - 1, 0))}"
                 + (f", branches at steps {[b[0] for b in run.branches[1:]]}"
                    if len(run.branches) > 1 else ""))
    parts.append(f"steps {spacing_words(run.timestep_spacing)}")
    return "; ".join(parts)


def numbers(session: Session, shown: int) -> dict:
    run = session.run
    return {"dataset": session.dataset, "sampler": run.sampler, "eta": run.eta,
            "steps": run.steps, "evaluations": run.evaluations,
            "timestep_spacing": run.timestep_spacing,
            "timesteps": list(session.timesteps()), "taken": run.taken, "shown": shown,
            "t": session.t_before(shown), "done": run.done,
            "branches": [list(b) for b in run.branches]}


def pictures(session: Session, shown: int | None = None):
    """What the API returns after `shown` steps (default: all taken): (session, step panel
    x_t | eps_hat | x0_hat | x_t_prev, filmstrip of the run so far, caption, numbers, update of
    the step slider)."""
    run = session.run
    shown = run.taken if shown is None else check_int("step", shown, 0, run.taken)
    session.shown = shown
    slider = gr.update(maximum=max(run.taken, 1), value=shown, interactive=run.taken > 0)
    return (session, panel_picture(session, shown), film_picture(session, shown),
            caption(session, shown), numbers(session, shown), slider)


def run_gif(session: Session | None) -> str:
    """A GIF of the run so far, for slides: frames [x_t | x0_hat] as in the filmstrip (x0_hat
    of the step that led to x_t; blank before the first), at min(taken + 1, GIF_FRAMES) evenly
    spaced moments 0..taken, the first and last always among them (the last held). Reads the
    run without changing it. Returns the GIF's path."""
    session = _require(session)
    run = session.run
    xs, x0s = list(run.xs), list(run.x0s)                # a snapshot: Run may be appending
    taken = min(len(x0s), len(xs) - 1)
    picks = np.linspace(0, taken, min(GIF_FRAMES, taken + 1)).round().astype(int).tolist()
    frames = [[image(xs[k]), image(x0s[k - 1]) if k else BLANK] for k in picks]
    labels = [[f"x_t, t = {session.t_before(k)}", f"x0_hat, step {k}"] for k in picks]
    durations = [GIF_MS] * (len(picks) - 1) + [GIF_HOLD_MS]
    return gif_file(frames, labels, PANEL_PIXEL, durations, f"vdm-run-{run.sampler}")


# ---------------------------------------------------------------- the public API

def api_reset(dataset, sampler="ddpm", steps=50, eta=0.0, seed=0,
              spacing=DEFAULT_TIMESTEP_SPACING, session=None):
    return pictures(reset(dataset, sampler, steps, eta, seed, spacing, session))


def api_step(session, n: int = 1):
    return pictures(step(session, n))


def api_run(session):
    """Every remaining step, streamed: the pictures at most every STREAM_EVERY_S (and last)."""
    last = 0.0
    session = _require(session)
    for session in run(session):
        if time.monotonic() - last >= STREAM_EVERY_S:
            last = time.monotonic()
            yield pictures(session)
    yield pictures(session)


def api_stopped(session):
    return pictures(stopped(session))


def api_show(session, shown=None):
    """The pictures after `shown` steps, without changing the run."""
    return pictures(_require(session), shown)


def api_rewind(session, shown, seed=None):
    return pictures(rewind(session, shown, seed))


def api_branch(session, shown, seed):
    return pictures(branch(session, shown, seed))
