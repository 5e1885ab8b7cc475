"""The load test's simulated users and the checks that ride along (explorer/bench/load.py runs
them and writes the report): the seeded interaction mix, the request budget, how an answer is
judged, the user loop, the "sessions apart" check, raw HTTP beyond server.call, and the Stop
check."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import random
import threading
import time
from dataclasses import dataclass
from typing import Callable

from explorer.bench.server import HOST, CallError, cpu_seconds, vdm_reset_data

THINK_S = (0.05, 0.3)                 # a user's pause between two calls
CALL_TIMEOUT_S = 60.0                 # one call; longer is an error
STOP_AFTER_S = 2.0                    # the long run is cancelled this long after it starts
LONG_RUN = ("ddpm", 1000)
TWIN_SEED, TWIN_RUN_STEPS, TWIN_STEPS = 1234, 20, 10
OK, REFUSED, ERROR = "ok", "refused", "error"

CallFn = Callable[[str, list, str], tuple[float, list]]     # (api, data, session) -> (s, data)


@dataclass(frozen=True)
class Call:
    """One planned HTTP call; `refuse`: a deliberately bad one the app must refuse."""
    kind: str                         # the report's row
    api: str
    data: list
    refuse: bool = False


@dataclass(frozen=True)
class Mix:
    """What the users need to know of the app: the dataset of each model family (a fallback
    when the chosen one has no such model), gallery sizes and the VDM's T."""
    vdm: str
    vae: str
    hvae: str
    sizes: dict
    T: int = 1000


# ---------------------------------------------------------------- the interaction mix

WEIGHTS = {"scrub": 30, "reverse": 18, "run": 4, "vae_encode": 8, "vae_interpolate": 6,
           "vae_project": 4, "hvae_resample": 8, "vdm_curves": 8, "vdm_dissolve": 6, "bad": 4}


def scenario(name: str, rng: random.Random, mix: Mix) -> list[Call]:
    """One interaction of a user: the calls a browser would send for it, in order."""
    ix = lambda ds: rng.randrange(mix.sizes[ds])
    seed, t = rng.randrange(10**6), rng.randint(0, mix.T)
    if name == "scrub":                       # a new image or seed, then the t slider dragged
        return [Call("vdm_forward", "vdm_forward",
                     [mix.vdm, ix(mix.vdm), None, rng.choice(["cosine", "linear", "learned"]),
                      seed, t])] + [Call("vdm_scrub", "vdm_scrub", [rng.randint(0, mix.T)])
                                    for _ in range(rng.randint(3, 8))]
    if name in ("reverse", "run"):            # the page redraws the steps' plot after each
        sampler = rng.choice(["ddim", "ddpm"])
        eta = rng.choice([0.0, 0.5]) if sampler == "ddim" else 0.0
        reset = lambda steps: Call("vdm_reset", "vdm_reset",
                                   vdm_reset_data(mix.vdm, sampler, steps, eta, seed))
        plot = Call("vdm_steps_plot", "vdm_steps_plot", [])
        if name == "run":
            return [reset(20), plot, Call("vdm_run (20 steps, streamed)", "vdm_run", []), plot]
        step = Call("vdm_step", "vdm_step", [])
        return [reset(rng.choice([50, 100, 250])), plot] + [step, plot] * rng.randint(2, 5)
    if name == "vae_encode":
        return [Call(name, name, [mix.vae, ix(mix.vae), None, rng.randint(4, 16), seed])]
    if name == "vae_interpolate":
        return [Call(name, name, [mix.vae, ix(mix.vae), None, ix(mix.vae), None,
                                  rng.randint(6, 12)])]
    if name == "vae_project":
        return [Call("vae_project (PCA)", name, [mix.vae, "pca", 30, ix(mix.vae), None,
                                                  ix(mix.vae), None, rng.randint(6, 12)])]
    if name == "hvae_resample":
        return [Call(name, name, [mix.hvae, ix(mix.hvae), None, rng.choice([1, 2]),
                                  rng.choice([0.5, 1.0, 1.5]), rng.randint(4, 12), seed,
                                  rng.choice(["prior mean", "sampled"])])]
    if name == "vdm_curves":
        return [Call(name, name, [mix.vdm, t])]
    if name == "vdm_dissolve":
        return [Call(name, name, [mix.vdm, t, rng.choice(["cosine", "linear", "learned"])])]
    if name == "bad":
        return [rng.choice([
            Call("bad: t beyond T", "vdm_curves", [mix.vdm, mix.T + rng.randint(1, 5000)], True),
            Call("bad: unknown schedule", "vdm_forward",
                 [mix.vdm, 0, None, "quadratic", seed, t], True),
            Call("bad: gallery index out of range", "vae_encode",
                 [mix.vae, mix.sizes[mix.vae] + rng.randint(0, 10**5), None, 8, seed], True)])]
    raise ValueError(f"unknown scenario {name!r}; valid: {', '.join(WEIGHTS)}")


def interaction(rng: random.Random, mix: Mix) -> list[Call]:
    return scenario(rng.choices(list(WEIGHTS), list(WEIGHTS.values()))[0], rng, mix)


def user_rngs(seed: int, user: int) -> tuple[random.Random, random.Random]:
    """(the mix's, the think times') generators of one user: the same seed, the same user."""
    return random.Random(seed * 1_000_003 + user), random.Random(-(seed * 1_000_003 + user) - 1)


def plan(seed: int, user: int, mix: Mix, n: int) -> list[list[Call]]:
    """The first n interactions a user will do (what User.run sends, in order)."""
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


def judge(call: Call, outcome: tuple[float, list] | Exception, seconds: float) -> Record:
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
        return Record(call.kind, seconds, ERROR, f"/{call.api} accepted a bad call {call.data}")
    return Record(call.kind, seconds, OK)


class User:
    """A simulated visitor: one session hash, calls in sequence, think times between them."""

    def __init__(self, index: int, seed: int, mix: Mix, budget: Budget, call: CallFn,
                 sleep: Callable[[float], None] = time.sleep, think=THINK_S) -> None:
        self.index, self.mix, self.budget, self.call, self.sleep = index, mix, budget, call, sleep
        self.think = think
        self.session = f"load{seed}u{index}x{os.urandom(3).hex()}"
        self.rng, self.think_rng = user_rngs(seed, index)
        self.records: list[Record] = []

    def do(self, call: Call) -> list | None:
        """Send one call (Exhausted when the budget is spent); its data, None when it failed."""
        if not self.budget.take():
            raise Exhausted
        start = time.perf_counter()
        try:
            outcome = self.call(call.api, call.data, self.session)
        except (CallError, OSError, ValueError) as err:       # OSError: refused, timed out
            outcome = err
        seconds = outcome[0] if isinstance(outcome, tuple) else time.perf_counter() - start
        self.records.append(judge(call, outcome, seconds))
        return outcome[1] if isinstance(outcome, tuple) and not call.refuse else None

    def pause(self) -> None:
        self.sleep(min(self.think_rng.uniform(*self.think), self.budget.left()))

    def run(self, prologue: Callable[["User"], None] | None = None) -> list[Record]:
        """The prologue (a scripted check), then the seeded mix until the budget is spent."""
        try:
            if prologue:
                prologue(self)
            while True:
                for call in interaction(self.rng, self.mix):
                    self.do(call)
                    self.pause()
        except Exhausted:
            pass
        return self.records


# ---------------------------------------------------------------- sessions apart

def fingerprint(data: list, fetch: Callable[[str], bytes]) -> tuple:
    """(taken, t, sha1 of the step panel PNG) of a /vdm_step answer."""
    numbers = next(d for d in data if isinstance(d, dict) and "taken" in d)
    panel = next(d for d in data if isinstance(d, dict) and d.get("url"))
    try:
        digest = hashlib.sha1(fetch(panel["url"])).hexdigest()[:12]
    except (OSError, ValueError) as err:
        digest = f"fetch failed: {err}"
    return numbers["taken"], numbers["t"], digest


def twin_run(user: User, fetch: Callable[[str], bytes], out: list) -> None:
    """The seeded DDPM run both twins (and the solo replay) take, one step per call."""
    if user.do(Call("vdm_reset", "vdm_reset",
                    vdm_reset_data(user.mix.vdm, "ddpm", TWIN_RUN_STEPS, 0.0, TWIN_SEED))) is None:
        return
    for _ in range(TWIN_STEPS):
        user.pause()
        data = user.do(Call("vdm_step", "vdm_step", []))
        if data is None:
            return
        out.append(fingerprint(data, fetch))


def check_isolation(solo: list, runs: dict[str, list]) -> tuple[bool | None, list[str]]:
    """(True when every step of every run equals the solo replay's, None when nothing could be
    compared, else False; what differed)."""
    if not solo:
        return None, ["no solo replay to compare with"]
    problems, compared = [], 0
    for name, steps in runs.items():
        if len(steps) < len(solo):
            problems.append(f"{name} took {len(steps)} of {len(solo)} steps (compared those)")
        for i, (want, got) in enumerate(zip(solo, steps)):
            compared += 1
            if tuple(want) != tuple(got):
                problems.append(f"{name} step {i + 1}: {tuple(got)} but solo {tuple(want)}")
    if compared == 0:
        return None, problems
    return not any(" but solo " in p for p in problems), problems


# ---------------------------------------------------------------- raw HTTP beyond server.call

def _request(port: int, method: str, path: str, body: dict | None = None,
             timeout: float = 30.0) -> bytes:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request(method, path, body=None if body is None else json.dumps(body),
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise CallError(f"{method} {path}: HTTP {response.status} {data[:200]!r}")
        return data
    finally:
        conn.close()


def fetch(port: int, url: str) -> bytes:
    """A file the app served (a URL from an answer)."""
    return _request(port, "GET", "/" + url.split("/", 3)[3])


def fn_index(port: int, api: str) -> int:
    """The event's index in the app's /config (what /gradio_api/cancel names)."""
    for dep in json.loads(_request(port, "GET", "/config"))["dependencies"]:
        if dep.get("api_name") == api:
            return dep["id"]
    raise KeyError(f"no event with api_name {api!r} in /config")


def stream(port: int, api: str, data: list, session: str, found: dict) -> None:
    """Start a call and read its event stream to the end: found gets event_id, frames (the
    `generating` events), last (the final event) and ended (perf_counter at the end)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=CALL_TIMEOUT_S)
    try:
        found["event_id"] = json.loads(_request(port, "POST", f"/gradio_api/call/{api}", {
            "data": data, "session_hash": session}))["event_id"]
        conn.request("GET", f"/gradio_api/call/{api}/{found['event_id']}")
        response = conn.getresponse()
        found["frames"] = 0
        while line := response.readline():
            if line.startswith(b"event:"):
                found["last"] = line[6:].strip().decode()
                found["frames"] += found["last"] == "generating"
    except (CallError, OSError, ValueError) as err:
        found["last"] = f"{type(err).__name__}: {err}"
    finally:
        conn.close()
        found["ended"] = time.perf_counter()


# ---------------------------------------------------------------- Stop

@dataclass
class StopResult:
    """A long run cancelled: where it stopped and what the app did after."""
    steps_at_cancel: int | None = None    # steps in the session's run when it stopped
    cancel_ms: float | None = None        # POST /cancel to the stream's end
    frames: int = 0                       # streamed frames before the cancel
    step_after: str = "not run"           # "served" (the run let go of the session) or why not
    cpu_during: float | None = None       # % of one core over 1 s before the cancel
    cpu_after: float | None = None        # ... over 1 s starting 0.5 s after it

    @property
    def stopped(self) -> bool:
        return self.step_after == "served" and (self.steps_at_cancel or 0) < LONG_RUN[1]


def stop_check(user: User, port: int, fn: int, pid: int | None = None) -> StopResult:
    """Reset a DDPM-1000 run, stream /vdm_run, cancel it after STOP_AFTER_S as the Stop button
    does, then take one step (served only when the run's generator has ended: it holds the
    session's lock). With `pid`, the app's CPU is read over 1 s before and after the cancel."""
    out = StopResult()
    reset = vdm_reset_data(user.mix.vdm, *LONG_RUN, 0.0, 7)
    if user.do(Call("vdm_reset", "vdm_reset", reset)) is None:
        out.step_after = "the reset failed"
        return out
    found: dict = {}
    reader = threading.Thread(target=stream, args=(port, "vdm_run", [], user.session, found),
                              daemon=True)
    started = time.perf_counter()
    reader.start()
    if pid is not None:
        time.sleep(STOP_AFTER_S - 1)
        before = cpu_seconds(pid)
        time.sleep(1.0)
        out.cpu_during = 100 * (cpu_seconds(pid) - before)
    else:
        time.sleep(STOP_AFTER_S)
    cancelled = time.perf_counter()
    try:
        _request(port, "POST", "/gradio_api/cancel", {"session_hash": user.session,
                                                      "fn_index": fn,
                                                      "event_id": found["event_id"]})
    except (KeyError, CallError, OSError) as err:   # KeyError: the run never got an event id
        found.setdefault("last", f"the cancel failed: {type(err).__name__}: {err}")
    reader.join(CALL_TIMEOUT_S)
    out.frames = found.get("frames", 0)
    if "ended" in found:
        out.cancel_ms = 1e3 * max(0.0, found["ended"] - cancelled)
    ok = found.get("last") == "complete"
    user.records.append(Record("vdm_run (DDPM-1000, stopped)", found.get("ended", cancelled)
                               - started, OK if ok else ERROR,
                               "" if ok else f"/vdm_run after cancel: {found.get('last')}"))
    if pid is not None:
        time.sleep(0.5)
        before = cpu_seconds(pid)
        time.sleep(1.0)
        out.cpu_after = 100 * (cpu_seconds(pid) - before)
    try:
        data = user.do(Call("vdm_step", "vdm_step", []))
    except Exhausted:
        out.step_after = "not sent: the request budget was spent"
        return out
    if data is None:
        out.step_after = user.records[-1].message or "failed"
    else:
        out.step_after = "served"
        out.steps_at_cancel = next(d for d in data if isinstance(d, dict) and "taken" in d)[
            "taken"] - 1
    return out
