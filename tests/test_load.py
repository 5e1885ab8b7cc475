"""The load test's pieces, checked without an app and without timing anything: the seeded
interaction mix, the bound on calls and time (a fake `call` injected into the user loop), how an
answer is judged (a bad call refused clearly is not an error), the isolation checker, the
markdown section and how it replaces an earlier one in BENCHMARKS.md."""

from __future__ import annotations

import json
import threading

from bench import checks, cli, load
from bench.client import CallError
from bench.load import (ERROR, OK, REFUSED, Budget, Call, LoadReport, Mix, Record, StopResult,
                        User, check_isolation, judge, plan)
from bench.report import find_section, replace_section
from bench.stats import MET, MISSED
from bench.users import VIEW, variants

MIX = Mix("fashion-mnist", "mnist", "mnist", {"fashion-mnist": 2000, "mnist": 2000})
MACHINE = {"cores": 2, "date": "2026-01-01", "commit": "abc1234", "busy": False}


class FakeApp:
    """A `call` that answers at once and records what it was sent; bad calls are refused. The
    run view's functions answer as ui/vdm/live.py does: a Run's steps come 8 to a `follow`."""

    def __init__(self, stops: bool = True) -> None:
        self.sent: list[tuple[Call, str]] = []
        self.lock = threading.Lock()
        self.runs: dict[str, dict] = {}
        self.stops = stops                        # False: a Run that goes on after a Stop

    def __call__(self, call: Call, session: str) -> tuple[float, object]:
        with self.lock:
            self.sent.append((call, session))
        v = call.values
        if (call.api == "vdm_curves" and v["vdm-t"] > MIX.T) \
                or v.get("vdm-schedule") == "quadratic" \
                or (call.api == "vae_encode" and v["a-index"] >= 2000) \
                or (call.via == VIEW and str(v.get("key")).startswith("forged")):
            raise CallError(f"/{call.api}: that value is out of range")
        if call.api in ("vdm_reset_view", "vdm_reset"):
            key = f"{session}-{len(self.sent)}"
            self.runs[session] = {"key": key, "run": len(self.sent), "taken": 0,
                                  "steps": v["vdm-steps"]}
            head = {"key": key, "steps": v["vdm-steps"]}
            return 0.001, [None, {"seq": 1, "run": len(self.sent), "start": 0, "taken": 0,
                                  "done": False, "steps": [], "head": head}, None]
        if call.via == VIEW:
            run = self.runs[session]
            assert v["key"] == run["key"] and v["run"] == run["run"]
            if call.api == "step":
                run["taken"] += 1
            if call.api == "start":
                run["active"] = True
            if call.api == "stop" and self.stops:
                run["taken"], run["active"] = v["shown"], False
            if call.api == "follow" and run.get("active"):
                run["taken"] = min(run["steps"], run["taken"] + 8)
            run["active"] = run.get("active", False) and run["taken"] < run["steps"]
            have = min(v["have"], run["taken"])
            return 0.001, {"seq": 2, "run": run["run"], "start": have, "taken": run["taken"],
                           "done": run["taken"] >= run["steps"],
                           "steps": [{}] * (run["taken"] - have), "active": run["active"]}
        return 0.001, [None, {"taken": 1, "t": 950}]


def user(fake, budget, index=0, seed=0) -> User:
    return User(index, seed, MIX, budget, fake, sleep=lambda s: None)


# ---------------------------------------------------------------- the mix

def test_the_mix_is_seeded_and_deterministic():
    assert plan(0, 3, MIX, 60) == plan(0, 3, MIX, 60)
    assert plan(0, 3, MIX, 60) != plan(0, 4, MIX, 60) != plan(1, 3, MIX, 60)
    kinds = {(c.via, c.api) for calls in plan(0, 0, MIX, 400) for c in calls}
    assert {("api", a) for a in ("vdm_scrub_view", "vdm_forward", "vdm_reset_view", "vdm_reset",
                                 "vdm_step", "vdm_run", "vae_encode", "vae_interpolate",
                                 "vae_project", "hvae_resample", "vdm_curves", "vdm_dissolve")} \
        | {(VIEW, "step"), (VIEW, "start")} <= kinds
    assert not {a for _, a in kinds} & {"vdm_scrub", "vdm_steps_plot"}      # gone from the app
    assert any(c.refuse for calls in plan(0, 0, MIX, 400) for c in calls)


def test_every_variant_is_covered_once():
    found = [c.kind for calls in variants(MIX) for c in calls]
    assert {"step (page)", "vdm_step (API)", "start (page Run)",
            "vdm_run (API, 20 steps, streamed)", "vdm_scrub_view", "vdm_forward (API)",
            "bad: a run key the server never gave", "bad: t beyond T"} <= set(found)


def test_a_user_sends_its_plan_in_order():
    fake = FakeApp()
    user(fake, Budget(60, 1e9), index=3).run()
    sent = [c for c, _ in fake.sent if c.api != "follow"]
    planned = [c for calls in plan(0, 3, MIX, 60) for c in calls][:len(sent)]
    assert [(c.via, c.api) for c in sent] == [(c.via, c.api) for c in planned]
    assert all(p.values.items() <= c.values.items() for c, p in zip(sent, planned))
    assert len({session for _, session in fake.sent}) == 1


def test_scrubs_and_steps_are_what_the_page_sends():
    for calls in plan(5, 1, MIX, 300):
        apis = [c.api for c in calls]
        if any(c.refuse for c in calls):              # a bad call comes alone
            assert len(calls) == 1
            continue
        if "vdm_scrub_view" in apis:                  # a new image: one request, t costs none
            assert apis == ["vdm_scrub_view"]
        if {"step", "start"} & set(apis):             # the page's run: its Reset first
            assert apis[0] == "vdm_reset_view" and all(c.via == VIEW for c in calls[1:])
        if {"vdm_step", "vdm_run"} & set(apis):       # an API client's run: the API's reset
            assert apis[0] == "vdm_reset" and all(c.via == "api" for c in calls[1:])


def test_the_page_steps_and_follows_its_own_run():
    fake = FakeApp()
    u = user(fake, Budget(10**6, 1e9))
    u.interact([load.Call("vdm_reset_view", "vdm_reset_view", {"vdm-steps": 20}),
                Call("step (page)", "step", via=VIEW),
                Call("start (page Run)", "start", via=VIEW, follow=True)])
    views = [c for c, _ in fake.sent if c.via == VIEW]
    assert [c.api for c in views] == ["step", "start", "follow", "follow", "follow"]
    assert [c.values["have"] for c in views] == [0, 1, 1, 9, 17]
    assert all(c.values["wait"] for c in views[2:]) and u.page.finished
    assert u.records[-1].kind.startswith("Run through the page") and \
        u.records[-1].outcome == OK


# ---------------------------------------------------------------- the bound

def test_the_request_cap_holds_across_users():
    fake = FakeApp()
    budget = Budget(37, 1e9)
    threads = [threading.Thread(target=user(fake, budget, i).run) for i in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads)
    assert len(fake.sent) == 37 and budget.taken == 37


def test_no_call_starts_after_the_deadline():
    now = [0.0]
    budget = Budget(10**6, 10.0, clock=lambda: now[0])

    def slow(call, session):                           # every call takes 1 s of the fake clock
        now[0] += 1.0
        return 1.0, [None, {"taken": 1, "t": 950}]

    records = User(0, 0, MIX, budget, slow, sleep=lambda s: None).run()
    assert len(records) == 10 and now[0] == 10.0


def test_a_user_stops_by_itself_in_real_time():
    budget = Budget(10**6, 0.2)
    thread = threading.Thread(target=User(0, 0, MIX, budget, FakeApp(), think=(0.0, 0.01)).run)
    thread.start()
    thread.join(10)
    assert not thread.is_alive()


# ---------------------------------------------------------------- judging answers

def test_bad_calls_refused_clearly_are_not_errors():
    bad = Call("bad", "vdm_curves", {"dataset": "mnist", "vdm-t": 5000}, refuse=True)
    good = Call("c", "vdm_curves")
    assert judge(bad, CallError("/vdm_curves: Value 5000 is greater than 1000."), 0.1).outcome \
        == REFUSED
    assert judge(bad, CallError("/vdm_curves: None"), 0.1).outcome == ERROR
    assert judge(bad, CallError("/x: Something went wrong (KeyError)"), 0.1).outcome == ERROR
    assert judge(bad, (0.1, []), 0.1).outcome == ERROR                   # accepted: an error
    assert judge(good, (0.1, []), 0.1).outcome == OK
    assert judge(good, CallError("/vdm_curves: boom"), 0.1).outcome == ERROR
    assert judge(good, TimeoutError("timed out"), 0.1).outcome == ERROR


def test_the_fake_app_refuses_every_bad_call_of_the_mix():
    records = user(FakeApp(), Budget(2000, 1e9)).run()
    assert {r.outcome for r in records} == {OK, REFUSED}
    assert all(r.kind.startswith("bad") for r in records if r.outcome == REFUSED)


# ---------------------------------------------------------------- sessions apart

def test_the_isolation_checker():
    solo = [(1, 950, "aa"), (2, 900, "bb"), (3, 850, "cc")]
    assert check_isolation(solo, {"u1": list(solo), "u2": list(solo)}) == (True, [])
    ok, notes = check_isolation(solo, {"u1": list(solo), "u2": [(1, 950, "aa"), (3, 850, "cc")]})
    assert ok is False and any("u2 step 2" in n for n in notes)
    ok, notes = check_isolation(solo, {"u1": solo[:2]})               # cut short: no mismatch
    assert ok is True and "2 of 3" in notes[0]
    assert check_isolation([], {"u1": solo})[0] is None
    assert check_isolation(solo, {"u1": []})[0] is None


def test_twin_run_fingerprints_each_step():
    steps = iter(range(1, 100))

    def fake(call, session):
        k = next(steps) if call.api == "vdm_step" else 0
        return 0.001, [None, {"url": f"http://h/file={k}.png"}, {"taken": k, "t": 1000 - k}]

    out = []
    checks.twin_run(user(fake, Budget(100, 1e9)), lambda url: url.encode(), out)
    assert len(out) == load.TWIN_STEPS
    assert [o[:2] for o in out[:2]] == [(1, 999), (2, 998)] and out[0][2] != out[1][2]


def test_the_page_stop_check_stops_on_the_step_held(monkeypatch):
    monkeypatch.setattr(checks, "STOP_AFTER_S", 0.05)
    fake = FakeApp()
    result = checks.page_stop_check(user(fake, Budget(10**6, 1e9)))
    views = [c for c, _ in fake.sent if c.via == VIEW]
    stop = next(c for c in views if c.api == "stop")
    assert views[0].api == "start" and stop.values["shown"] == stop.values["have"]
    assert [c.api for c in views[-2:]] == ["follow", "step"]          # stayed, then served
    assert result.via == "page" and result.step_after == "served" and result.stopped
    assert result.steps_at_cancel == stop.values["shown"] > 0
    going_on = checks.page_stop_check(user(FakeApp(stops=False), Budget(10**6, 1e9)))
    assert "went on after the Stop" in going_on.step_after and not going_on.stopped


# ---------------------------------------------------------------- the section

def report() -> LoadReport:
    r = LoadReport({"argv": ["--load"], "users": 20, "seconds": 60.0, "seed": 0}, MACHINE,
                   {"vdm": "fashion-mnist", "vae": "mnist", "hvae": "mnist"}, wall_s=61.0)
    r.records = [Record("vdm_scrub_view", 0.01 + i / 1e4, OK) for i in range(1000)] + [
        Record("bad: t beyond T", 0.01, REFUSED, "/vdm_curves: Value 5000 > 1000")]
    r.rss = {"before": 600.0, "after": 605.0, "peak": 610.0}
    r.samples = [(10.0, 200, 601.0), (31.0, 500, 602.0), (60.0, 1000, 603.0)]
    r.loadavg = [5.0, 6.0]
    r.stop_quiet = StopResult("page", 60, 12.0, 60, 0, "served", 75.0, 3.0)
    r.api_stop_quiet = StopResult("api", 62, 30.0, 12, None, "served", 60.0, 2.0)
    r.run_cost = {"steps": 20, "runs": 2, "idle_cores": 0.02, "page_cpu_s": 0.3,
                  "api_cpu_s": 0.28, "page_wall_s": 0.4, "api_wall_s": 0.3,
                  "page_requests": 15, "page_n": 2, "api_n": 2}
    r.isolation = True
    return r


def test_the_section_reports_targets():
    r = report()
    text = load.section(r)
    assert text.startswith("## Reliability: 20 users for 60 s")
    verdicts = lambda: [v for *_, v in r.targets()]    # errors, RSS, RSS late, apart, 2 Stops
    assert verdicts() == [MET] * 6
    assert "| vdm_scrub_view | 1000 | — | 0 |" in text and "| bad: t beyond T | 1 | 1 | 0 |" in text
    assert "the page's Stop quiet app" in text and "/gradio_api/cancel" in text
    assert "page 0.30 s (0.40 s wall, 15 requests) vs API 0.28 s" in text
    json.dumps(r.to_dict())                                             # JSON-serialisable
    r.records.append(Record("vdm_step", 0.2, ERROR, "/vdm_step: boom"))
    r.isolation, r.stop_quiet = False, StopResult("page", step_after="step: Busy")
    assert verdicts() == [MISSED, MET, MET, MISSED, MISSED, MET] and "boom" in load.section(r)


SAMPLE = """# Benchmarks

- machine: 2 cores

## In-process compute

| a | b |
|---|---|

## Reliability: 5 users for 10 s

old figures

## Summary

Every measured target was met.

## Profile: x

```
## not a heading: inside a code block
```
"""


def test_the_section_replaces_an_earlier_one_and_keeps_the_rest():
    new = "## Reliability: 20 users for 60 s\n\nnew figures\n"
    text = replace_section(SAMPLE, new, "## Reliability")
    assert "old figures" not in text and "new figures" in text
    assert text.replace(new + "\n", "") == SAMPLE.replace(
        "## Reliability: 5 users for 10 s\n\nold figures\n\n", "")
    assert text.index("new figures") < text.index("## Summary")
    assert replace_section(text, new, "## Reliability") == text          # idempotent
    assert find_section(text, "## Reliability") == new
    no_section = SAMPLE.replace("## Reliability: 5 users for 10 s\n\nold figures\n\n", "")
    assert replace_section(no_section, new, "## Reliability") == text   # before the summary
    assert replace_section("", new, "## Reliability") == new
    assert find_section(SAMPLE, "## not a heading") is None


def test_the_cli_writes_only_its_section(tmp_path, monkeypatch):
    out = tmp_path / "BENCHMARKS.md"
    out.write_text(SAMPLE)
    seen = {}

    def fake_run(users, seconds, cap, dataset, seed, options, log):
        seen.update(users=users, seconds=seconds, cap=cap)
        return report()

    monkeypatch.setattr(load, "run_load", fake_run)
    assert cli.main(["--load", "--quick", "--write", "--output", str(out),
                     "--json", str(tmp_path / "load.json")]) == 0
    assert seen == {"users": load.QUICK_USERS, "seconds": load.QUICK_SECONDS,
                    "cap": int(10 * load.QUICK_USERS * load.QUICK_SECONDS)}
    text = out.read_text()
    assert "## Reliability: 20 users for 60 s" in text and "old figures" not in text
    assert "## In-process compute" in text and "## not a heading" in text
    assert json.loads((tmp_path / "load.json").read_text())["errors"] == 0
    args = cli.parse_args(["--load", "--users", "3", "--seconds", "5", "--max-requests", "9"])
    assert (args.users, args.seconds, args.max_requests) == (3, 5.0, 9)
