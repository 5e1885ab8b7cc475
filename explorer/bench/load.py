"""Many users at once: `python -m explorer.bench --load [--users 20] [--seconds 60]
[--max-requests N] [--quick] [--dataset D] [--seed S] [--json FILE]`.

`python app.py` is started (server.App), then N simulated users, each a thread with its own
session hash, run a seeded random mix of interactions over raw HTTP (server.call) with 50-300 ms
think times: the t-slider scrub (/vdm_forward, then /vdm_scrub a few times), the reverse process
(/vdm_reset, a few /vdm_step, sometimes a streamed 20-step /vdm_run), the VAE (/vae_encode,
/vae_interpolate, /vae_project on PCA), the HVAE (/hvae_resample), /vdm_curves, /vdm_dissolve,
and a few deliberately bad calls (t beyond T, an unknown schedule, a gallery index out of range)
that must come back as error events with a clear message: "refused as expected", counted apart
from the errors. Bounded: no call starts after --seconds or after --max-requests calls, and the
main thread stops waiting --seconds + CALL_TIMEOUT_S + 60 s after the start.

Three checks ride along:
- Stop: user 0 first starts a DDPM-1000 /vdm_run, cancels it after 2 s (POST
  /gradio_api/cancel {session_hash, fn_index, event_id}: what the Stop button's cancels=[...]
  sends) and takes one step, which is only served once the run has let go of the session. After
  the load the same is done on the quiet app, with its CPU over 1 s before and after the cancel.
- Sessions apart: users 1 and 2 run the same seeded DDPM run step by step at the same time;
  every step (taken, t and the step panel PNG's bytes) must equal a solo replay made before.
- Memory: the same users first run for WARM_S seconds unmeasured (what grows once: their
  sessions, the first concurrent use of Gradio's threads); then the app's RSS before and after
  the measured load, each read once the app is quiet and has trimmed its heap
  (explorer/allocator.py), gives the growth per 1,000 interactions.

The section "## Reliability: N users for S s" replaces an earlier one in BENCHMARKS.md (the rest
of the file is kept); --json FILE writes the figures.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import random
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from explorer.allocator import trim_period
from explorer.bench.report import format_value, loadavg, machine_info
from explorer.bench.server import HOST, App, CallError, call, cpu_seconds, proc_status
from explorer.bench.stats import MET, MISSED, NOT_RUN, percentile, verdict

USERS, SECONDS, QUICK_USERS, QUICK_SECONDS = 20, 60.0, 5, 10.0
WARM_S, QUICK_WARM_S = 15.0, 3.0       # the same users first, unmeasured: one-time growth
THINK_S = (0.05, 0.3)                 # a user's pause between two calls
CALL_TIMEOUT_S = 60.0                 # one call; longer is an error
STOP_AFTER_S = 2.0                    # the long run is cancelled this long after it starts
LONG_RUN = ("ddpm", 1000)
TWIN_SEED, TWIN_RUN_STEPS, TWIN_STEPS = 1234, 20, 10
TARGET_ERRORS, TARGET_MB_PER_1000, TARGET_STOP_CPU = 0, 20.0, 10.0   # count, MB, % of a core
MB_PER_MIB = 1.048576
HEADING = "## Reliability"
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
    if name in ("reverse", "run"):
        sampler = rng.choice(["ddim", "ddpm"])
        eta = rng.choice([0.0, 0.5]) if sampler == "ddim" else 0.0
        if name == "run":
            return [Call("vdm_reset", "vdm_reset", [mix.vdm, sampler, 20, eta, seed]),
                     Call("vdm_run (20 steps, streamed)", "vdm_run", [])]
        return [Call("vdm_reset", "vdm_reset",
                     [mix.vdm, sampler, rng.choice([50, 100, 250]), eta, seed])] + [
                Call("vdm_step", "vdm_step", []) for _ in range(rng.randint(2, 5))]
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
                    [user.mix.vdm, "ddpm", TWIN_RUN_STEPS, 0.0, TWIN_SEED])) is None:
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
    if user.do(Call("vdm_reset", "vdm_reset", [user.mix.vdm, *LONG_RUN, 0.0, 7])) is None:
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


# ---------------------------------------------------------------- the run

@dataclass
class LoadReport:
    """Everything the section and the JSON say."""
    options: dict
    machine: dict
    datasets: dict
    wall_s: float = 0.0
    records: list[Record] = field(default_factory=list)
    rss: dict = field(default_factory=dict)   # MiB: start, before_warm, before, after, peak
    warm: dict = field(default_factory=dict)  # the unmeasured warm load: seconds, calls
    loadavg: list[float] = field(default_factory=list)  # 1-min loadavg every second of the load
    samples: list[tuple] = field(default_factory=list)  # (s, calls started, app RSS MiB) each s
    app_cores: float | None = None                      # the app's CPU during the load, cores
    stop_load: StopResult | None = None
    stop_quiet: StopResult | None = None
    isolation: bool | None = None
    isolation_notes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(r.outcome == outcome for r in self.records)

    def per_kind(self) -> dict[str, dict]:
        """kind -> served, refused, errors, p50 / p95 in ms over the answered calls."""
        out = {}
        for kind in dict.fromkeys(r.kind for r in self.records):
            rows = [r for r in self.records if r.kind == kind]
            ms = [1e3 * r.seconds for r in rows if r.outcome != ERROR]
            out[kind] = {"served": len(ms), "refused": sum(r.outcome == REFUSED for r in rows),
                         "errors": sum(r.outcome == ERROR for r in rows),
                         "p50_ms": percentile(ms, 50) if ms else None,
                         "p95_ms": percentile(ms, 95) if len(ms) >= 5 else None}
        return out

    def growth_mb_per_1000(self) -> float | None:
        before, after = self.rss.get("before"), self.rss.get("after")
        if before is None or after is None or not self.records:
            return None
        return (after - before) * MB_PER_MIB * 1000 / len(self.records)

    def steady_mb_per_1000(self) -> float | None:
        """RSS growth per 1,000 calls over the second half of the load (one-time growth, such
        as first uses and new sessions, is mostly over by then; a leak is not)."""
        late = [s for s in self.samples if s[0] >= self.wall_s / 2]
        if len(late) < 2 or late[-1][1] <= late[0][1]:
            return None
        return (late[-1][2] - late[0][2]) * MB_PER_MIB * 1000 / (late[-1][1] - late[0][1])

    def targets(self) -> list[tuple[str, str, str, str]]:
        """(measurement, value, target, verdict) rows."""
        errors, growth, steady = self.count(ERROR), self.growth_mb_per_1000(), \
            self.steady_mb_per_1000()
        stop = self.stop_quiet
        iso = {True: "yes", False: "no", None: "not checked"}[self.isolation]
        return [
            ("errors (anything but a clear refusal of a bad call)", str(errors),
             f"{TARGET_ERRORS}", verdict(errors, None, TARGET_ERRORS)),
            ("app RSS growth per 1,000 interactions",
             "—" if growth is None else f"{growth:+.1f} MB", f"< {TARGET_MB_PER_1000:g} MB",
             verdict(growth, None, TARGET_MB_PER_1000)),
            ("... the same over the second half of the load only (one-time growth mostly done)",
             "—" if steady is None else f"{steady:+.1f} MB", f"< {TARGET_MB_PER_1000:g} MB",
             verdict(steady, None, TARGET_MB_PER_1000)),
            ("sessions apart: 2 users' same seeded DDPM run = a solo replay, step by step", iso,
             "yes", NOT_RUN if self.isolation is None else MET if self.isolation else MISSED),
            ("Stop stops the work: app CPU 0.5-1.5 s after the cancel (quiet app)",
             "—" if stop is None or stop.cpu_after is None else
             f"{stop.cpu_after:.0f}% of a core", f"≤ {TARGET_STOP_CPU:g}%",
             NOT_RUN if stop is None else verdict(stop.cpu_after, None, TARGET_STOP_CPU)
             if stop.stopped else MISSED),
        ]

    def to_dict(self) -> dict:
        return {"options": self.options, "machine": self.machine, "datasets": self.datasets,
                "wall_s": self.wall_s, "requests": len(self.records),
                "ok": self.count(OK), "refused_as_expected": self.count(REFUSED),
                "errors": self.count(ERROR),
                "first_errors": [r.message for r in self.records if r.outcome == ERROR][:5],
                "per_kind": self.per_kind(), "rss_mib": self.rss, "warm_load": self.warm,
                "rss_growth_mb_per_1000": self.growth_mb_per_1000(),
                "rss_growth_mb_per_1000_second_half": self.steady_mb_per_1000(),
                "samples_s_calls_rss_mib": self.samples,
                "loadavg_during": self.loadavg, "app_cores_during": self.app_cores,
                "stop_under_load": self.stop_load and asdict(self.stop_load),
                "stop_quiet": self.stop_quiet and asdict(self.stop_quiet),
                "sessions_apart": self.isolation, "isolation_notes": self.isolation_notes,
                "targets": [dict(zip(("measurement", "value", "target", "verdict"), t))
                            for t in self.targets()], "notes": self.notes}


def resolve_mix(port: int, dataset: str, log: Callable[[str], None]) -> tuple[Mix, list[str]]:
    """The dataset of each model family: `dataset`, or the first other one whose model the app
    has (asked over HTTP: an endpoint that says "not available" falls back)."""
    from explorer.data import DATASETS, load_gallery
    probes = {"vdm": ("vdm_curves", lambda d: [d, 10]),
              "vae": ("vae_encode", lambda d: [d, 0, None, 1, 0]),
              "hvae": ("hvae_resample", lambda d: [d, 0, None, 1, 1.0, 1, 0, "prior mean"])}
    chosen, notes = {}, []
    for family, (api, data) in probes.items():
        for d in [dataset, *(d for d in DATASETS if d != dataset)]:
            try:
                call(port, api, data(d))
                chosen[family] = d
                break
            except CallError as err:
                if "not available" not in str(err):
                    raise
        else:
            raise RuntimeError(f"no dataset has a {family} model the app can use")
        if chosen[family] != dataset:
            notes.append(f"/{family}_* calls use {chosen[family]}: the app says the {family} of "
                         f"{dataset} is not available")
            log(notes[-1])
    sizes = {d: len(load_gallery(d).labels) for d in set(chosen.values())}
    return Mix(chosen["vdm"], chosen["vae"], chosen["hvae"], sizes), notes


def _monitor(pid: int, budget: Budget, stop: threading.Event, out: LoadReport) -> None:
    """Every second: the 1-min loadavg, and the app's RSS against the calls started so far."""
    start = time.perf_counter()
    while not stop.wait(1.0):
        load = loadavg()
        if load:
            out.loadavg.append(load[0])
        rss = proc_status(pid, "VmRSS")
        if rss is not None:
            out.rss["peak"] = max(out.rss.get("peak", 0.0), rss)
            out.samples.append((round(time.perf_counter() - start, 2), budget.taken, rss))


def _run_crowd(crowd: list[User], prologues: dict, seconds: float) -> set[int]:
    """Run every user in a thread of its own until its budget is spent (a hard stop a call's
    timeout and a minute after `seconds`); the indices of users still running then."""
    threads = [threading.Thread(target=u.run, args=(prologues.get(u.index),), daemon=True,
                                name=f"load-user-{u.index}") for u in crowd]
    hard_stop = time.perf_counter() + seconds + CALL_TIMEOUT_S + 60
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, hard_stop - time.perf_counter()))
    return {u.index for u, thread in zip(crowd, threads) if thread.is_alive()}


def run_load(users: int, seconds: float, max_requests: int, dataset: str, seed: int,
             options: dict, log: Callable[[str], None]) -> LoadReport:
    """Start the app, warm every interaction up, run the users, measure, stop the app."""
    import torch
    log("machine: reading the load (1 s)")
    machine = machine_info(torch.get_num_threads(), None)
    log("app: starting `python app.py`")
    app = App.start()
    try:
        log(f"app: first 200 after {app.first_200:.1f} s; waiting for its warm-up")
        app.wait_idle(120)
        port, pid = app.port, app.process.pid
        mix, notes = resolve_mix(port, dataset, log)
        report = LoadReport(options, machine, {"vdm": mix.vdm, "vae": mix.vae,
                                               "hvae": mix.hvae}, notes=notes)
        report.rss["start"] = proc_status(pid, "VmRSS")
        send = lambda api, data, session: call(port, api, data, session, CALL_TIMEOUT_S)
        get = lambda url: fetch(port, url)
        log("warm-up: every kind of interaction once, and the solo replay of the twins' run")
        warm = User(-1, seed, mix, Budget(10**6, 10**6), send, think=(0.0, 0.0))
        for name in WEIGHTS:
            for c in scenario(name, random.Random(seed), mix):
                warm.do(c)
        solo: list = []
        twin_run(User(-2, seed, mix, Budget(10**6, 10**6), send), get, solo)
        fn = fn_index(port, "vdm_run")
        report.notes += [f"warm-up: {r.message}" for r in warm.records if r.outcome == ERROR]
        app.wait_idle(30, 0.5)
        time.sleep(trim_period() + 1.0)
        report.rss["before_warm"] = proc_status(pid, "VmRSS")

        # the same users for a while first: what grows once (their sessions, the first
        # concurrent use of Gradio's threads) is measured apart from what grows per call
        warm_s = QUICK_WARM_S if seconds < SECONDS else WARM_S
        log(f"warm load: the same {users} users for {warm_s:g} s, not measured")
        crowd = [User(i, seed, mix, Budget(max_requests, warm_s), send) for i in range(users)]
        _run_crowd(crowd, {}, warm_s)
        report.warm = {"seconds": warm_s, "calls": sum(len(u.records) for u in crowd)}
        for u in crowd:
            report.records += [r for r in u.records if r.outcome == ERROR]
            u.records = []
        app.wait_idle(60, 1.0)
        time.sleep(trim_period() + 1.0)
        report.rss["before"] = proc_status(pid, "VmRSS")

        log(f"load: {users} users for {seconds:g} s (at most {max_requests} calls)")
        budget = Budget(max_requests, seconds)
        twins: dict[str, list] = {}
        stop_found: dict = {}
        prologues: dict[int, Callable[[User], None]] = {}
        if users >= 3:
            prologues[0] = lambda u: stop_found.setdefault("r", stop_check(u, port, fn))
            for i in (1, 2):
                twins[f"user {i}"] = []
                prologues[i] = lambda u, out=twins[f"user {i}"]: twin_run(u, get, out)
        else:
            report.notes.append("fewer than 3 users: no Stop or isolation check under load")
        for u in crowd:
            u.budget = budget
        stop_monitor = threading.Event()
        monitor = threading.Thread(target=_monitor, args=(pid, budget, stop_monitor, report), daemon=True)
        cpu0, start = cpu_seconds(pid), time.perf_counter()
        monitor.start()
        alive = _run_crowd(crowd, prologues, seconds)
        report.wall_s = time.perf_counter() - start
        report.app_cores = (cpu_seconds(pid) - cpu0) / report.wall_s
        stop_monitor.set()
        for u in crowd:
            report.records += list(u.records)
            if u.index in alive:
                report.records.append(Record("hard stop", 0.0, ERROR, f"user {u.index} was "
                                             "still waiting on a call at the hard stop"))
        report.stop_load = stop_found.get("r")
        report.isolation, report.isolation_notes = check_isolation(solo, twins)

        log("after: waiting for the app to go quiet and trim its heap, then its RSS and the "
            "Stop check")
        app.wait_idle(60, 1.0)
        time.sleep(trim_period() + 1.0)                  # the app's next malloc_trim has run
        report.rss["after"] = proc_status(pid, "VmRSS")
        quiet = User(-3, seed, mix, Budget(10**6, 10**6), send)
        report.stop_quiet = stop_check(quiet, port, fn, pid)
        report.records += [r for r in quiet.records if r.outcome == ERROR]
        return report
    finally:
        app.stop()


# ---------------------------------------------------------------- the section

def section(report: LoadReport) -> str:
    """The markdown section "## Reliability: N users for S s"."""
    o, kinds = report.options, report.per_kind()
    served, refused = report.count(OK) + report.count(REFUSED), report.count(REFUSED)
    rss = {k: (None if v is None else v * MB_PER_MIB) for k, v in report.rss.items()}
    mb = lambda v: "—" if v is None else f"{v:.0f} MB"
    load = report.loadavg
    load_text = (f"1-min loadavg during the run {sum(load) / len(load):.1f} on average, "
                 f"{max(load):.1f} at most, on {report.machine.get('cores')} cores" if load
                 else "loadavg not read")
    out = [f"{HEADING}: {o['users']} users for {o['seconds']:g} s", "",
           f"Written by `python -m explorer.bench {' '.join(o.get('argv', []))}` on "
           f"{report.machine.get('date')} (commit {report.machine.get('commit')}); do not edit "
           "by hand. Simulated users are threads with one session each, calling the app over raw "
           f"HTTP on 127.0.0.1 with {THINK_S[0] * 1e3:.0f}-{THINK_S[1] * 1e3:.0f} ms think times, "
           f"a seeded mix (seed {o['seed']}). Datasets: VDM {report.datasets['vdm']}, VAE "
           f"{report.datasets['vae']}, HVAE {report.datasets['hvae']}. Load: {load_text}; the "
           f"app used {report.app_cores or 0:.2f} cores.", "",
           "| measurement | value | target | met? |", "|---|---|---|---|",
           f"| requests served (answered: done, or a bad call refused) | {served} in "
           f"{report.wall_s:.1f} s ({served / max(report.wall_s, 1e-9):.1f}/s) | — | — |",
           f"| bad calls refused as expected (clear message) | {refused} | — | — |",
           f"| app RSS over the warm load first (the same users, {report.warm.get('seconds', 0):g}"
           f" s, not measured: their sessions, the first concurrent use of the threads) | "
           f"{mb(rss.get('before_warm'))} → {mb(rss.get('before'))}; "
           f"{report.warm.get('calls', 0)} interactions | — | — |",
           f"| app RSS before → after the load (peak during) | {mb(rss.get('before'))} → "
           f"{mb(rss.get('after'))} ({mb(rss.get('peak'))}); {len(report.records)} "
           "interactions | — | — |"]
    for name, value, target, result in report.targets():
        out.append(f"| {name} | {value} | {target} | "
                   f"{f'**{result}**' if result == MISSED else result} |")
    for label, stop in (("under load (user 0)", report.stop_load),
                        ("quiet app, after the load", report.stop_quiet)):
        if stop is not None:
            cpu = (f"; app CPU {stop.cpu_during:.0f}% of a core before the cancel, "
                   f"{stop.cpu_after:.0f}% after" if stop.cpu_after is not None else "")
            out.append(f"| Stop {label}: DDPM-1000 /vdm_run cancelled after "
                       f"{STOP_AFTER_S:g} s | stopped at step {stop.steps_at_cancel} of "
                       f"{LONG_RUN[1]} ({stop.frames} frames streamed); the stream ended "
                       f"{format_value(stop.cancel_ms, 'ms')} after the cancel; the next step: "
                       f"{stop.step_after}{cpu} | stops | "
                       f"{MET if stop.stopped else f'**{MISSED}**'} |")
    out += ["", "| kind | served | refused as expected | errors | p50 | p95 |",
            "|---|---|---|---|---|---|"]
    for kind, k in sorted(kinds.items()):
        out.append(f"| {kind} | {k['served']} | {k['refused'] or '—'} | {k['errors']} | "
                   f"{format_value(k['p50_ms'], 'ms')} | {format_value(k['p95_ms'], 'ms')} |")
    errors = [r.message for r in report.records if r.outcome == ERROR]
    notes = list(report.notes) + [f"isolation: {n}" for n in report.isolation_notes]
    if errors:
        notes.append("first errors: " + "; ".join(e[:200] for e in errors[:5]))
    if report.machine.get("busy"):
        notes.append("other processes were loading the CPU: latencies are higher than on an "
                     "idle machine")
    out += [""] + [f"- {n}".replace("\n", " ") for n in notes]
    return "\n".join(out).rstrip() + "\n"
