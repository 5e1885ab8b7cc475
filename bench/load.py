"""Many users at once: `python -m bench --load [--users 20] [--seconds 60]
[--max-requests N] [--quick] [--dataset D] [--seed S] [--json FILE]`.

`python app.py` is started (server.App), then N simulated users, each a thread with its own
session hash, run a seeded random mix of interactions over raw HTTP with 50-300 ms think times,
as the page sends them (bench/users.py): a new image or seed for the scrub (/vdm_scrub_view;
moving t costs no request), the reverse process (the page's /vdm_reset_view, then Step and Run
through the run view's server functions `step`, `start` and `follow`; some users the public API's
/vdm_reset, /vdm_step and streamed /vdm_run), the VAE (/vae_encode, /vae_interpolate,
/vae_project on PCA), the HVAE (/hvae_resample), /vdm_curves, /vdm_dissolve, and a few
deliberately bad calls (t beyond T, an unknown schedule, a gallery index out of range, a run key
the server never gave) that must come back refused with a clear message: "refused as expected",
counted apart from the errors. Every event's inputs come from the app's /config
(bench/inputs.py). Bounded: no call starts after --seconds or after --max-requests calls, and
the main thread stops waiting --seconds + CALL_TIMEOUT_S + 60 s after the start.

The checks that ride along (bench/checks.py):
- Stop, the page's way: user 0 starts a DDPM-1000 Run through the page's channel, follows it for
  2 s and presses Stop (the `stop` server function, with the step it holds as the one shown);
  the run must stay there and the next step be served. The API's way: user 3 streams a
  DDPM-1000 /vdm_run and cancels it after 2 s (POST /gradio_api/cancel, as gradio_client's
  Job.cancel() does), then takes a step. After the load both are done again on the quiet app,
  with its CPU over 1 s before and after the Stop.
- Sessions apart: users 1 and 2 run the same seeded DDPM run step by step at the same time;
  every step (taken, t and the step panel PNG's bytes) must equal a solo replay made before.
- Memory: the same users first run for WARM_S seconds unmeasured (what grows once: their
  sessions, the first concurrent use of Gradio's threads); then the app's RSS before and after
  the measured load, each read once the app is quiet and has trimmed its heap
  (explorer/allocator.py), gives the growth per 1,000 interactions.
- What a run costs: on the quiet app, the app's CPU seconds per completed 20-step run through
  the page's channel against the API's streamed /vdm_run.

The section "## Reliability: N users for S s" replaces an earlier one in BENCHMARKS.md (the rest
of the file is kept); --json FILE writes the figures.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

from bench.checks import (COST_RUNS, LONG_RUN, QUICK_COST_RUNS, STOP_AFTER_S, TWIN_STEPS,
                          StopResult, check_isolation, page_stop_check, run_cost, stop_check,
                          twin_run)
from bench.client import CallError, call, fetch, view_call
from bench.inputs import AppInputs
from bench.page import RUN_VIEW
from bench.report import format_value, loadavg, machine_info
from bench.server import App, cpu_seconds, proc_status
from bench.stats import MET, MISSED, NOT_RUN, percentile, verdict
from bench.users import (CALL_TIMEOUT_S, ERROR, OK, REFUSED, THINK_S, VIEW, Budget, Call, CallFn,
                         Mix, Record, User, judge, plan, variants)
from explorer.allocator import trim_period

# what cli.py and tests/test_load.py import from here, the users' side re-exported
__all__ = ["USERS", "SECONDS", "QUICK_USERS", "QUICK_SECONDS", "WARM_S", "QUICK_WARM_S",
           "TARGET_ERRORS", "TARGET_MB_PER_1000", "TARGET_STOP_CPU", "MB_PER_MIB", "HEADING",
           "LoadReport", "resolve_mix", "run_load", "section", "sender", "warm_up",
           "CALL_TIMEOUT_S", "THINK_S", "STOP_AFTER_S", "LONG_RUN", "TWIN_STEPS", "OK", "REFUSED",
           "ERROR", "Budget", "Call", "Mix", "Record", "StopResult", "User", "check_isolation",
           "judge", "plan", "twin_run"]

USERS, SECONDS, QUICK_USERS, QUICK_SECONDS = 20, 60.0, 5, 10.0
WARM_S, QUICK_WARM_S = 15.0, 3.0       # the same users first, unmeasured: one-time growth
TARGET_ERRORS, TARGET_MB_PER_1000, TARGET_STOP_CPU = 0, 20.0, 10.0   # count, MB, % of a core
MB_PER_MIB = 1.048576
HEADING = "## Reliability"


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
    stop_load: StopResult | None = None      # the page's Stop under load (user 0)
    stop_quiet: StopResult | None = None     # ... on the quiet app after the load
    api_stop_load: StopResult | None = None  # the API's cancel under load (user 3)
    api_stop_quiet: StopResult | None = None
    run_cost: dict = field(default_factory=dict)        # checks.run_cost on the quiet app
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
            *[(f"Stop stops the work ({how}): app CPU 0.5-1.5 s after the Stop (quiet app)",
               "—" if stop is None or stop.cpu_after is None else
               f"{stop.cpu_after:.0f}% of a core", f"≤ {TARGET_STOP_CPU:g}%",
               NOT_RUN if stop is None else verdict(stop.cpu_after, None, TARGET_STOP_CPU)
               if stop.stopped else MISSED)
              for how, stop in (("the page's Stop", self.stop_quiet),
                                ("the API's cancel", self.api_stop_quiet))],
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
                "api_stop_under_load": self.api_stop_load and asdict(self.api_stop_load),
                "api_stop_quiet": self.api_stop_quiet and asdict(self.api_stop_quiet),
                "run_cost": self.run_cost,
                "sessions_apart": self.isolation, "isolation_notes": self.isolation_notes,
                "targets": [dict(zip(("measurement", "value", "target", "verdict"), t))
                            for t in self.targets()], "notes": self.notes}


def resolve_mix(port: int, inputs: AppInputs, dataset: str,
                log: Callable[[str], None]) -> tuple[Mix, list[str]]:
    """The dataset of each model family: `dataset`, or the first other one whose model the app
    has (asked over HTTP: an endpoint that says "not available" falls back)."""
    from explorer.data import DATASETS, load_gallery
    probes = {"vdm": ("vdm_curves", {"vdm-t": 10}),
              "vae": ("vae_encode", {"a-index": 0, "a": None, "vae-k": 1}),
              "hvae": ("hvae_resample", {"a-index": 0, "a": None, "hvae-res-n": 1})}
    chosen, notes = {}, []
    for family, (api, values) in probes.items():
        for d in [dataset, *(d for d in DATASETS if d != dataset)]:
            try:
                call(port, api, inputs.data(api, values, dataset=d))
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


def sender(port: int, inputs: AppInputs, timeout: float = CALL_TIMEOUT_S) -> CallFn:
    """The users' `call`: an event with the inputs the app's /config lists for it, or a server
    function of the run view."""
    view = inputs.view(RUN_VIEW).component_id

    def send(c: Call, session: str) -> tuple[float, object]:
        if c.via == VIEW:
            return view_call(port, view, c.api, c.values, session, c.timeout or timeout)
        return call(port, c.api, inputs.data(c.api, c.values), session, c.timeout or timeout)
    return send


def warm_up(user: User) -> list[Record]:
    """Every variant of every interaction once (users.variants), in `user`'s session."""
    for calls in variants(user.mix):
        user.interact(calls)
    return user.records


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
        inputs = AppInputs.fetch(port)
        mix, notes = resolve_mix(port, inputs, dataset, log)
        report = LoadReport(options, machine, {"vdm": mix.vdm, "vae": mix.vae,
                                               "hvae": mix.hvae}, notes=notes)
        report.rss["start"] = proc_status(pid, "VmRSS")
        send = sender(port, inputs)
        get = lambda url: fetch(port, url)
        log("warm-up: every kind of interaction once, and the solo replay of the twins' run")
        warm = User(-1, seed, mix, Budget(10**6, 10**6), send, think=(0.0, 0.0))
        warm_up(warm)
        solo: list = []
        twin_run(User(-2, seed, mix, Budget(10**6, 10**6), send), get, solo)
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
        stops: dict = {}
        prologues: dict[int, Callable[[User], None]] = {}
        if users >= 3:
            prologues[0] = lambda u: stops.setdefault("page", page_stop_check(u))
            for i in (1, 2):
                twins[f"user {i}"] = []
                prologues[i] = lambda u, out=twins[f"user {i}"]: twin_run(u, get, out)
        else:
            report.notes.append("fewer than 3 users: no Stop or isolation check under load")
        if users >= 4:
            prologues[3] = lambda u: stops.setdefault("api", stop_check(u, port, inputs))
        else:
            report.notes.append("fewer than 4 users: no check of the API's Stop under load")
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
        report.stop_load, report.api_stop_load = stops.get("page"), stops.get("api")
        report.isolation, report.isolation_notes = check_isolation(solo, twins)

        log("after: waiting for the app to go quiet and trim its heap, then its RSS, the Stop "
            "checks and what a run costs")
        app.wait_idle(60, 1.0)
        time.sleep(trim_period() + 1.0)                  # the app's next malloc_trim has run
        report.rss["after"] = proc_status(pid, "VmRSS")
        quiet = User(-3, seed, mix, Budget(10**6, 10**6), send)
        report.stop_quiet = page_stop_check(quiet, pid, cpu_seconds)
        app.wait_idle(30, 0.5)
        report.api_stop_quiet = stop_check(quiet, port, inputs, pid, cpu_seconds)
        app.wait_idle(30, 0.5)
        runs = QUICK_COST_RUNS if seconds < SECONDS else COST_RUNS
        log(f"what a run costs: {runs} runs through the page and {runs} through the API")
        report.run_cost = run_cost(quiet, pid, cpu_seconds, runs, lambda: app.wait_idle(10, 0.3))
        report.records += [r for r in quiet.records if r.outcome == ERROR]
        return report
    finally:
        app.stop()


# ---------------------------------------------------------------- the section

def stop_text(stop: StopResult, label: str) -> str:
    """The Stop row's measurement and value cells."""
    cpu = (f"; app CPU {stop.cpu_during:.0f}% of a core before the Stop, "
           f"{stop.cpu_after:.0f}% after" if stop.cpu_after is not None
           and stop.cpu_during is not None else "")
    if stop.via == "page":
        return (f"the page's Stop {label}: a DDPM-1000 Run followed for {STOP_AFTER_S:g} s, then "
                f"`stop` with the step held as the one shown | the run stopped at step "
                f"{stop.steps_at_cancel} of {LONG_RUN[1]} ({stop.frames} steps held, the server "
                f"{stop.ahead} ahead); `stop` answered {format_value(stop.cancel_ms, 'ms')} "
                f"after it was sent, the run let go; the next step: {stop.step_after}{cpu}")
    return (f"the API's Stop {label}: DDPM-1000 /vdm_run cancelled (POST /gradio_api/cancel) "
            f"after {STOP_AFTER_S:g} s | stopped at step {stop.steps_at_cancel} of {LONG_RUN[1]} "
            f"({stop.frames} frames streamed); the stream ended "
            f"{format_value(stop.cancel_ms, 'ms')} after the cancel; the next step: "
            f"{stop.step_after}{cpu}")


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
           f"Written by `python -m bench {' '.join(o.get('argv', []))}` on "
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
                        ("quiet app, after the load", report.stop_quiet),
                        ("under load (user 3)", report.api_stop_load),
                        ("quiet app, after the load", report.api_stop_quiet)):
        if stop is not None:
            out.append(f"| {stop_text(stop, label)} | stops | "
                       f"{MET if stop.stopped else f'**{MISSED}**'} |")
    cost = report.run_cost
    if cost:
        seconds = lambda v: "—" if v is None else f"{v:.2f} s"
        out.append(
            f"| app CPU per completed {cost['steps']}-step DDPM run (quiet app, median of "
            f"{cost['page_n']} / {cost['api_n']}): the page's channel (`start` + `follow`, one "
            f"request a frame) vs the API's streamed /vdm_run | page "
            f"{seconds(cost['page_cpu_s'])} ({seconds(cost['page_wall_s'])} wall, "
            f"{cost['page_requests'] or 0:.0f} requests) vs API {seconds(cost['api_cpu_s'])} "
            f"({seconds(cost['api_wall_s'])} wall); the idle app used "
            f"{100 * cost['idle_cores']:.0f}% of a core | — | — |")
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
