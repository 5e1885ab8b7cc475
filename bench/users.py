"""The load test's simulated users (bench/load.py runs them and writes the report): the seeded
interaction mix, the request budget, how an answer is judged and the user loop. The checks that
ride along (sessions apart, Stop, what a run costs) are in bench/checks.py.

A planned call names an event by api_name with its input values keyed by the input's elem_id
(bench/inputs.py turns them into the `data` the app's /config asks for), or a server function
of the page's run view (`via=VIEW`: bench/page.py), which the user sends about the run its
page holds, as the page does.
"""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from bench.client import CallError
from bench.page import PageRun, message_in

THINK_S = (0.05, 0.3)                 # a user's pause between two calls
FRAME_S = 1 / 60                      # a page asks for a Run's next steps once a frame
CALL_TIMEOUT_S = 60.0                 # one call; longer is an error
OK, REFUSED, ERROR = "ok", "refused", "error"
API, VIEW = "api", "view"             # an event by api_name / a server function of the run view
PAGE_SHARE = 0.7                      # reverse runs moved by the page (the rest: the public API)
SCHEDULES = ("cosine", "linear", "learned")


@dataclass(frozen=True)
class Call:
    """One planned call; `refuse`: a deliberately bad one the app must refuse; `follow`: after
    it (a page's `start`), ask for the run's steps until it is done, as the page does."""
    kind: str                         # the report's row
    api: str                          # api_name, or the server function's name (via VIEW)
    values: dict = field(default_factory=dict)    # inputs by elem_id / the function's data
    refuse: bool = False
    via: str = API
    follow: bool = False
    timeout: float | None = None      # seconds; None: CALL_TIMEOUT_S


# (the call, with a VIEW call's data filled in; the session) -> (seconds, the reply)
CallFn = Callable[[Call, str], tuple[float, Any]]


@dataclass(frozen=True)
class Mix:
    """What the users need to know of the app: the dataset of each model family (a fallback
    when the chosen one has no such model), gallery sizes and the VDM's T."""
    vdm: str
    vae: str
    hvae: str
    sizes: dict
    T: int = 1000


def reset(mix: Mix, sampler: str, steps: int, eta: float, seed: int, spacing: str | None = None,
          page: bool = True) -> Call:
    """A new reverse run: the page's Reset (`vdm_reset_view`) or the public API's."""
    values = {"dataset": mix.vdm, "vdm-sampler": sampler, "vdm-steps": steps, "vdm-eta": eta,
              "vdm-seed": seed, **({"vdm-spacing": spacing} if spacing else {})}
    api = "vdm_reset_view" if page else "vdm_reset"
    return Call(api, api, values)


def page_call(kind: str, name: str, follow: bool = False, refuse: bool = False, **data) -> Call:
    """A server function of the run view about the page's run."""
    return Call(kind, name, data, refuse=refuse, via=VIEW, follow=follow)


# ---------------------------------------------------------------- the interaction mix

WEIGHTS = {"scrub": 30, "reverse": 18, "run": 4, "vae_encode": 8, "vae_interpolate": 6,
           "vae_project": 4, "hvae_resample": 8, "vdm_curves": 8, "vdm_dissolve": 6, "bad": 4}


def scenario(name: str, rng: random.Random, mix: Mix) -> list[Call]:
    """One interaction of a user: the calls a browser (or an API client) sends for it, in
    order."""
    ix = lambda ds: rng.randrange(mix.sizes[ds])
    seed, t = rng.randrange(10**6), rng.randint(0, mix.T)
    a = lambda ds: {"dataset": ds, "a-index": ix(ds), "a": None}
    if name == "scrub":       # a new image or seed: one request; dragging t then costs none
        values = {**a(mix.vdm), "vdm-schedule": rng.choice(SCHEDULES), "vdm-noise-seed": seed}
        if rng.random() < 0.8:
            return [Call("vdm_scrub_view", "vdm_scrub_view", values)]
        return [Call("vdm_forward (API)", "vdm_forward", {**values, "vdm-t": t})]
    if name in ("reverse", "run"):
        sampler = rng.choice(["ddim", "ddpm"])
        eta = rng.choice([0.0, 0.5]) if sampler == "ddim" else 0.0
        spacing = rng.choice(["karras", "linspace"])
        page = rng.random() < PAGE_SHARE
        if name == "run":
            run = (page_call("start (page Run)", "start", follow=True) if page else
                   Call("vdm_run (API, 20 steps, streamed)", "vdm_run"))
            return [reset(mix, sampler, 20, eta, seed, spacing, page), run]
        step = page_call("step (page)", "step") if page else Call("vdm_step (API)", "vdm_step")
        return [reset(mix, sampler, rng.choice([50, 100, 250]), eta, seed, spacing, page)] + \
            [step] * rng.randint(2, 6)
    if name == "vae_encode":
        return [Call(name, name, {**a(mix.vae), "vae-k": rng.randint(4, 16), "vae-seed": seed})]
    if name == "vae_interpolate":
        return [Call(name, name, {**a(mix.vae), "b-index": ix(mix.vae), "b": None,
                                  "vae-frames": rng.randint(6, 12)})]
    if name == "vae_project":
        return [Call("vae_project (PCA)", name, {
            **a(mix.vae), "b-index": ix(mix.vae), "b": None, "vae-method": "pca",
            "vae-perplexity": 30, "vae-frames": rng.randint(6, 12)})]
    if name == "hvae_resample":
        return [Call(name, name, {**a(mix.hvae), "hvae-res-layer": rng.choice([1, 2]),
                                  "hvae-res-t": rng.choice([0.5, 1.0, 1.5]),
                                  "hvae-res-n": rng.randint(4, 12), "hvae-res-seed": seed,
                                  "hvae-below": rng.choice(["prior mean", "sampled"])})]
    if name == "vdm_curves":
        return [Call(name, name, {"dataset": mix.vdm, "vdm-t": t})]
    if name == "vdm_dissolve":
        return [Call(name, name, {"dataset": mix.vdm, "vdm-dissolve-t": t,
                                  "vdm-schedule": rng.choice(SCHEDULES)})]
    if name == "bad":
        return [rng.choice([
            Call("bad: t beyond T", "vdm_curves",
                 {"dataset": mix.vdm, "vdm-t": mix.T + rng.randint(1, 5000)}, True),
            Call("bad: unknown schedule", "vdm_scrub_view",
                 {**a(mix.vdm), "vdm-schedule": "quadratic", "vdm-noise-seed": seed}, True),
            Call("bad: gallery index out of range", "vae_encode",
                 {"dataset": mix.vae, "a-index": mix.sizes[mix.vae] + rng.randint(0, 10**5),
                  "a": None, "vae-k": 8, "vae-seed": seed}, True),
            page_call("bad: a run key the server never gave", "step", refuse=True,
                      key=f"forged-{seed}")])]
    raise ValueError(f"unknown scenario {name!r}; valid: {', '.join(WEIGHTS)}")


def interaction(rng: random.Random, mix: Mix) -> list[Call]:
    return scenario(rng.choices(list(WEIGHTS), list(WEIGHTS.values()))[0], rng, mix)


def user_rngs(seed: int, user: int) -> tuple[random.Random, random.Random]:
    """(the mix's, the think times') generators of one user: the same seed, the same user."""
    return random.Random(seed * 1_000_003 + user), random.Random(-(seed * 1_000_003 + user) - 1)


def plan(seed: int, user: int, mix: Mix, n: int) -> list[list[Call]]:
    """The first n interactions a user will do (what User.run sends, in order, but the
    `follow` calls of a page's Run, which depend on the replies)."""
    rng = user_rngs(seed, user)[0]
    return [interaction(rng, mix) for _ in range(n)]


# ---------------------------------------------------------------- one user

class Budget:
    """No call starts after `seconds` or after `max_requests` calls in all (thread-safe)."""

    def __init__(self, max_requests: int, seconds: float, clock=time.monotonic) -> None:
        self.max_requests, self.clock = max_requests, clock
        self.deadline = clock() + seconds
        self.taken = 0
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.taken >= self.max_requests or self.clock() >= self.deadline:
                return False
            self.taken += 1
            return True

    def left(self) -> float:
        return max(0.0, self.deadline - self.clock())


class Exhausted(Exception):
    """The budget is spent: the user stops."""


@dataclass
class Record:
    kind: str
    seconds: float
    outcome: str                      # OK, REFUSED (a bad call refused clearly) or ERROR
    message: str = ""


def clear_message(message: str) -> bool:
    """A refusal a person can act on: a message, not None or 'Something went wrong'."""
    text = message.split(": ", 1)[-1].strip()
    return text not in ("", "None", "null") and not text.startswith("Something went wrong")


def judge(call: Call, outcome: tuple[float, Any] | Exception, seconds: float) -> Record:
    if isinstance(outcome, CallError):
        message = str(outcome)
        if call.refuse and clear_message(message):
            return Record(call.kind, seconds, REFUSED, message)
        return Record(call.kind, seconds, ERROR, message if not call.refuse else
                      f"refused without a clear message: {message}")
    if isinstance(outcome, Exception):
        return Record(call.kind, seconds, ERROR, f"/{call.api}: {type(outcome).__name__}: "
                                                 f"{outcome}")
    if call.refuse:
        return Record(call.kind, seconds, ERROR, f"/{call.api} accepted a bad call {call.values}")
    return Record(call.kind, seconds, OK)


FOLLOW = page_call("follow (page Run, one a frame)", "follow", wait=True)


class User:
    """A simulated visitor: one session hash, calls in sequence, think times between them, and
    the run its page holds (`page`)."""

    def __init__(self, index: int, seed: int, mix: Mix, budget: Budget, call: CallFn,
                 sleep: Callable[[float], None] = time.sleep, think=THINK_S) -> None:
        self.index, self.mix, self.budget, self.call, self.sleep = index, mix, budget, call, sleep
        self.think = think
        self.session = f"load{seed}u{index}x{os.urandom(3).hex()}"
        self.rng, self.think_rng = user_rngs(seed, index)
        self.records: list[Record] = []
        self.page = PageRun()

    def do(self, call: Call) -> Any:
        """Send one call (Exhausted when the budget is spent); its reply, None when it failed.
        A server function is sent about the page's run; a message in the reply is taken in."""
        if not self.budget.take():
            raise Exhausted
        if call.via == VIEW:
            call = replace(call, values={**self.page.asked(), **call.values})
        start = time.perf_counter()
        try:
            outcome = self.call(call, self.session)
        except (CallError, OSError, ValueError, KeyError) as err:   # OSError: refused, timed out
            outcome = err
        seconds = outcome[0] if isinstance(outcome, tuple) else time.perf_counter() - start
        self.records.append(judge(call, outcome, seconds))
        if not isinstance(outcome, tuple) or call.refuse:
            return None
        self.page.fold(message_in(outcome[1]))
        return outcome[1]

    def follow(self, started: float | None = None,
               kind: str = "Run through the page: start to every step held") -> bool:
        """After a page's `start` (sent at perf_counter `started`): ask for the run's steps, one
        request a frame, until every step is held, the Run has ended, or it has not moved three
        times (as run.js does). Records the whole as one more row; True when every step
        arrived."""
        started, quiet = started or time.perf_counter(), 0
        while not self.page.finished and quiet <= 2:
            before = self.page.have
            reply = self.do(FOLLOW)
            if reply is None:
                break
            quiet = 0 if self.page.have != before or self.page.active else quiet + 1
            self.sleep(FRAME_S)
        ok = self.page.finished
        self.records.append(Record(kind, time.perf_counter() - started, OK if ok else ERROR,
                                   "" if ok else f"the page held {self.page.have} of "
                                   f"{self.page.steps} steps when its Run ended"))
        return ok

    def pause(self) -> None:
        self.sleep(min(self.think_rng.uniform(*self.think), self.budget.left()))

    def interact(self, calls: list[Call]) -> None:
        for call in calls:
            started = time.perf_counter()
            reply = self.do(call)
            if call.follow and reply is not None:
                self.follow(started)
            self.pause()

    def run(self, prologue: Callable[["User"], None] | None = None) -> list[Record]:
        """The prologue (a scripted check), then the seeded mix until the budget is spent."""
        try:
            if prologue:
                prologue(self)
            while True:
                self.interact(interaction(self.rng, self.mix))
        except Exhausted:
            pass
        return self.records


def variants(mix: Mix, tries: int = 200) -> list[list[Call]]:
    """One interaction of every kind the mix can plan, each variant once (a page's and an API
    client's run, every bad call): what the warm-up sends, and what the app test checks."""
    seen, out = set(), []
    for name in WEIGHTS:
        for i in range(tries):
            calls = scenario(name, random.Random(i), mix)
            kinds = {c.kind for c in calls} - seen
            if kinds:
                seen |= kinds
                out.append(calls)
    return out
