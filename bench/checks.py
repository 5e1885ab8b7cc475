"""The checks that ride along with the load test (bench/load.py): sessions apart, Stop (the
page's and the public API's) and what a completed run costs the server either way. Each runs as
a simulated user (bench/users.py), so its calls are budgeted and judged like the rest.
"""

from __future__ import annotations

import hashlib
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Callable

from bench.client import CallError, request, stream
from bench.inputs import AppInputs
from bench.users import (CALL_TIMEOUT_S, ERROR, FRAME_S, FOLLOW, OK, Call, Exhausted, Record,
                         User, page_call, reset)

STOP_AFTER_S = 2.0                    # the long run is stopped this long after it starts
STREAM_END_S = 10.0                   # the API's cancelled run must end its stream within this
LONG_RUN = ("ddpm", 1000)
TWIN_SEED, TWIN_RUN_STEPS, TWIN_STEPS = 1234, 20, 10
COST_STEPS, COST_RUNS, QUICK_COST_RUNS = 20, 5, 2


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
    """The seeded DDPM run both twins (and the solo replay) take through the public API, one
    step per call."""
    if user.do(reset(user.mix, "ddpm", TWIN_RUN_STEPS, 0.0, TWIN_SEED, page=False)) is None:
        return
    for _ in range(TWIN_STEPS):
        user.pause()
        data = user.do(Call("vdm_step (API)", "vdm_step"))
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


# ---------------------------------------------------------------- Stop

@dataclass
class StopResult:
    """A long run stopped: where it stopped and what the app did after."""
    via: str = "api"                      # "page": the run view's `stop`; "api": a cancel
    steps_at_cancel: int | None = None    # steps in the session's run when it stopped
    cancel_ms: float | None = None        # the Stop sent to the run let go (api: stream ended)
    frames: int = 0                       # api: streamed frames; page: steps held at the Stop
    ahead: int | None = None              # page: steps the server had taken beyond those held
    step_after: str = "not run"           # "served" (the run let go of the session) or why not
    cpu_during: float | None = None       # % of one core over 1 s before the Stop
    cpu_after: float | None = None        # ... over 1 s starting 0.5 s after it

    @property
    def stopped(self) -> bool:
        return self.step_after == "served" and (self.steps_at_cancel or 0) < LONG_RUN[1]


def _cpu_over(pid: int, seconds: float, cpu: Callable[[int], float]) -> float:
    before = cpu(pid)
    time.sleep(seconds)
    return 100 * (cpu(pid) - before) / seconds


def cancel(port: int, session: str, fn_index: int, event_id: str) -> None:
    """POST /gradio_api/cancel: what gradio_client's Job.cancel() and an event's
    `cancels=[...]` send."""
    request(port, "POST", "/gradio_api/cancel", {"session_hash": session, "fn_index": fn_index,
                                                 "event_id": event_id})


def stop_check(user: User, port: int, inputs: AppInputs, pid: int | None = None,
               cpu: Callable[[int], float] | None = None) -> StopResult:
    """The public API: reset a DDPM-1000 run, stream /vdm_run, cancel it after STOP_AFTER_S
    (POST /gradio_api/cancel, as gradio_client's Job.cancel() does), then take one step
    (served only once the run has let go of the session). With `pid`, the app's CPU is read
    over 1 s before and after the cancel. (Not /vdm_stop over /call/: on Gradio 6.31 the
    cancelled run's /call/ stream often never completes.)"""
    out = StopResult("api")
    try:
        if user.do(reset(user.mix, *LONG_RUN, 0.0, 7, page=False)) is None:
            out.step_after = "the reset failed"
            return out
        found: dict = {}
        reader = threading.Thread(target=stream, args=(port, "vdm_run", inputs.data("vdm_run"),
                                                       user.session, found, CALL_TIMEOUT_S),
                                  daemon=True)
        started = time.perf_counter()
        reader.start()
        if pid is not None:
            time.sleep(STOP_AFTER_S - 1)
            out.cpu_during = _cpu_over(pid, 1.0, cpu)
        else:
            time.sleep(STOP_AFTER_S)
        cancelled = time.perf_counter()
        try:
            cancel(port, user.session, inputs.fn_index("vdm_run"), found["event_id"])
        except (KeyError, CallError, OSError) as err:  # KeyError: the run got no event id
            found.setdefault("last", f"the cancel failed: {type(err).__name__}: {err}")
        reader.join(STREAM_END_S)
        if reader.is_alive():                         # still open: stop reading it
            found.get("abort", lambda: None)()
            reader.join(5.0)
            found["last"] = (f"its stream had not ended {STREAM_END_S:g} s after the cancel "
                             f"(last event: {found.get('last')})")
            found.pop("ended", None)
        out.frames = found.get("frames", 0)
        if "ended" in found:
            out.cancel_ms = 1e3 * max(0.0, found["ended"] - cancelled)
        ok = found.get("last") == "complete"
        user.records.append(Record("vdm_run (API, DDPM-1000, stopped)",
                                   found.get("ended", time.perf_counter()) - started,
                                   OK if ok else ERROR,
                                   "" if ok else f"/vdm_run after the Stop: {found.get('last')}"))
        if pid is not None:
            time.sleep(0.5)
            out.cpu_after = _cpu_over(pid, 1.0, cpu)
        data = user.do(Call("vdm_step (API)", "vdm_step"))
    except Exhausted:
        out.step_after = "not finished: the request budget was spent"
        return out
    if data is None:
        out.step_after = user.records[-1].message or "failed"
    else:
        out.step_after = "served"
        out.steps_at_cancel = next(d for d in data if isinstance(d, dict) and "taken" in d)[
            "taken"] - 1
    return out


def page_stop_check(user: User, pid: int | None = None,
                    cpu: Callable[[int], float] | None = None) -> StopResult:
    """The page: reset a DDPM-1000 run (`vdm_reset_view`), Run it (`start`) and follow its
    steps one request a frame for STOP_AFTER_S, then Stop with the step held as the one shown
    (`stop` answers once the run has let go, taken back to that step); then the run must stay
    there (`follow`: the same steps, not active) and a `step` must be served."""
    out = StopResult("page")
    try:
        if user.do(reset(user.mix, *LONG_RUN, 0.0, 7)) is None:
            out.step_after = "the reset failed"
            return out
        started = time.perf_counter()
        if user.do(page_call("start (page Run, DDPM-1000)", "start")) is None:
            out.step_after = "the Run did not start"
            return out
        measured = None
        while (now := time.perf_counter()) - started < STOP_AFTER_S:
            if pid is not None and measured is None and now - started >= STOP_AFTER_S - 1:
                measured = (now, cpu(pid))
            user.do(FOLLOW)
            time.sleep(FRAME_S)
        if measured is not None:
            out.cpu_during = 100 * (cpu(pid) - measured[1]) / (time.perf_counter() - measured[0])
        shown = user.page.have
        out.frames, out.ahead = shown, user.page.taken - shown
        sent = time.perf_counter()
        reply = user.do(page_call("stop (page)", "stop", shown=shown))
        out.cancel_ms = 1e3 * (time.perf_counter() - sent)
        if reply is None:
            out.step_after = f"the Stop failed: {user.records[-1].message}"
            return out
        out.steps_at_cancel = reply["taken"]
        if pid is not None:
            time.sleep(0.5)
            out.cpu_after = _cpu_over(pid, 1.0, cpu)
        else:
            time.sleep(0.5)
        after = user.do(page_call("follow (after Stop)", "follow"))
        data = user.do(page_call("step (page, after Stop)", "step"))
    except Exhausted:
        out.step_after = "not finished: the request budget was spent"
        return out
    if after is not None and (after["taken"] != out.steps_at_cancel or after.get("active")):
        out.step_after = (f"the run went on after the Stop: {after['taken']} steps, "
                          f"active {after.get('active')}")
    elif data is None:
        out.step_after = user.records[-1].message or "failed"
    else:
        out.step_after = "served"
    return out


# ---------------------------------------------------------------- what a run costs

def run_cost(user: User, pid: int, cpu: Callable[[int], float], runs: int = COST_RUNS,
             settle: Callable[[], object] = lambda: time.sleep(0.5)) -> dict:
    """The app's CPU seconds per completed COST_STEPS-step DDPM run, taken `runs` times each
    way, alternating, on a quiet app: through the page's channel (`start`, then `follow` one
    request a frame until every step is held) and through the API's streamed /vdm_run (read to
    its end). Each run starts from a reset (not counted) with the same settings and seed.
    Medians, with the app's idle CPU over 1 s for scale."""
    idle = _cpu_over(pid, 1.0, cpu) / 100
    found = {"page": [], "api": []}
    wall = {"page": [], "api": []}
    requests = []
    for i in range(runs):
        for via in ("page", "api"):
            settle()
            if user.do(reset(user.mix, "ddpm", COST_STEPS, 0.0, 100 + i, page=via == "page")) \
                    is None:
                continue
            settle()
            before, started, calls = cpu(pid), time.perf_counter(), len(user.records)
            if via == "page":
                ok = user.do(page_call("start (page Run, cost)", "start")) is not None and \
                    user.follow(started, f"Run through the page ({COST_STEPS} steps, cost)")
                requests.append(len(user.records) - calls - 1)    # the follow's own row
            else:
                ok = user.do(Call(f"vdm_run (API, {COST_STEPS} steps, cost)", "vdm_run")) \
                    is not None
            if ok:
                found[via].append(cpu(pid) - before)
                wall[via].append(time.perf_counter() - started)
    med = lambda xs: statistics.median(xs) if xs else None
    return {"steps": COST_STEPS, "runs": runs, "idle_cores": idle,
            "page_cpu_s": med(found["page"]), "api_cpu_s": med(found["api"]),
            "page_wall_s": med(wall["page"]), "api_wall_s": med(wall["api"]),
            "page_requests": med(requests), "page_n": len(found["page"]),
            "api_n": len(found["api"])}
