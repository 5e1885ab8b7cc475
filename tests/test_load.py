"""The load test's pieces, checked without an app and without timing anything: the seeded
interaction mix, the bound on calls and time (a fake `call` injected into the user loop), how an
answer is judged (a bad call refused clearly is not an error), the isolation checker, the
markdown section and how it replaces an earlier one in BENCHMARKS.md."""

from __future__ import annotations

import json
import threading

from explorer.bench import cli, load
from explorer.bench.load import (ERROR, OK, REFUSED, Budget, Call, LoadReport, Mix, Record,
                                 StopResult, User, check_isolation, judge, plan)
from explorer.bench.report import find_section, replace_section
from explorer.bench.server import CallError
from explorer.bench.stats import MET, MISSED

MIX = Mix("fashion-mnist", "mnist", "mnist", {"fashion-mnist": 2000, "mnist": 2000})
MACHINE = {"cores": 2, "date": "2026-01-01", "commit": "abc1234", "busy": False}


class FakeApp:
    """A `call` that answers at once and records what it was sent; bad calls are refused."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list, str]] = []
        self.lock = threading.Lock()

    def __call__(self, api: str, data: list, session: str) -> tuple[float, list]:
        with self.lock:
            self.sent.append((api, data, session))
        if (api == "vdm_curves" and data[1] > MIX.T) or "quadratic" in data \
                or (api == "vae_encode" and data[1] >= 2000):
            raise CallError(f"/{api}: that value is out of range")
        return 0.001, [None, {"taken": 1, "t": 950}]


def user(fake, budget, index=0, seed=0) -> User:
    return User(index, seed, MIX, budget, fake, sleep=lambda s: None)


# ---------------------------------------------------------------- the mix

def test_the_mix_is_seeded_and_deterministic():
    assert plan(0, 3, MIX, 60) == plan(0, 3, MIX, 60)
    assert plan(0, 3, MIX, 60) != plan(0, 4, MIX, 60) != plan(1, 3, MIX, 60)
    kinds = {c.api for calls in plan(0, 0, MIX, 400) for c in calls}
    assert {"vdm_forward", "vdm_scrub", "vdm_reset", "vdm_step", "vdm_run", "vae_encode",
            "vae_interpolate", "vae_project", "hvae_resample", "vdm_curves",
            "vdm_dissolve", "vdm_steps_plot"} <= kinds
    assert any(c.refuse for calls in plan(0, 0, MIX, 400) for c in calls)


def test_a_user_sends_its_plan_in_order():
    fake = FakeApp()
    user(fake, Budget(40, 1e9), index=3).run()
    planned = [(c.api, c.data) for calls in plan(0, 3, MIX, 40) for c in calls][:40]
    assert [(api, data) for api, data, _ in fake.sent] == planned
    assert len({session for *_, session in fake.sent}) == 1


def test_scrubs_follow_a_forward_and_steps_follow_a_reset():
    for calls in plan(5, 1, MIX, 200):
        apis = [c.api for c in calls]
        if "vdm_scrub" in apis:
            assert apis[0] == "vdm_forward" and set(apis[1:]) == {"vdm_scrub"}
        if "vdm_step" in apis or "vdm_run" in apis:            # each redraws the steps' plot
            assert apis[0] == "vdm_reset" and apis[1::2] == ["vdm_steps_plot"] * (len(apis) // 2)


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

    def slow(api, data, session):                      # every call takes 1 s of the fake clock
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
    bad, good = Call("bad", "vdm_curves", ["mnist", 5000], refuse=True), Call("c", "vdm_curves", [])
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

    def fake(api, data, session):
        k = next(steps) if api == "vdm_step" else 0
        return 0.001, [None, {"url": f"http://h/file={k}.png"}, {"taken": k, "t": 1000 - k}]

    out = []
    load.twin_run(user(fake, Budget(100, 1e9)), lambda url: url.encode(), out)
    assert len(out) == load.TWIN_STEPS
    assert [o[:2] for o in out[:2]] == [(1, 999), (2, 998)] and out[0][2] != out[1][2]


# ---------------------------------------------------------------- the section

def report() -> LoadReport:
    r = LoadReport({"argv": ["--load"], "users": 20, "seconds": 60.0, "seed": 0}, MACHINE,
                   {"vdm": "fashion-mnist", "vae": "mnist", "hvae": "mnist"}, wall_s=61.0)
    r.records = [Record("vdm_scrub", 0.01 + i / 1e4, OK) for i in range(1000)] + [
        Record("bad: t beyond T", 0.01, REFUSED, "/vdm_curves: Value 5000 > 1000")]
    r.rss = {"before": 600.0, "after": 605.0, "peak": 610.0}
    r.samples = [(10.0, 200, 601.0), (31.0, 500, 602.0), (60.0, 1000, 603.0)]
    r.loadavg = [5.0, 6.0]
    r.stop_quiet = StopResult(60, 12.0, 30, "served", 75.0, 3.0)
    r.isolation = True
    return r


def test_the_section_reports_targets():
    r = report()
    text = load.section(r)
    assert text.startswith("## Reliability: 20 users for 60 s")
    verdicts = lambda: [v for *_, v in r.targets()]           # errors, RSS, RSS late, apart, Stop
    assert verdicts() == [MET] * 5
    assert "| vdm_scrub | 1000 | — | 0 |" in text and "| bad: t beyond T | 1 | 1 | 0 |" in text
    json.dumps(r.to_dict())                                             # JSON-serialisable
    r.records.append(Record("vdm_step", 0.2, ERROR, "/vdm_step: boom"))
    r.isolation, r.stop_quiet = False, StopResult(step_after="/vdm_step: Busy")
    assert verdicts() == [MISSED, MET, MET, MISSED, MISSED] and "boom" in load.section(r)


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
