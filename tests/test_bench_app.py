"""The benchmark and the load test against the launched app (tiny untrained models): every call
the load test's users plan, every check's call and every HTTP benchmark row sends exactly the
inputs its endpoint takes, as the app's own /config lists them (bench/inputs.py), and the app
serves them. No timing is asserted."""

from __future__ import annotations

import os
from urllib.parse import urlparse

import pytest

from app_env import build_pretrained, close_app, launch_app
from bench import checks, load, server
from bench.client import fetch
from bench.inputs import AppInputs
from bench.page import RUN_VIEW
from bench.server import cpu_seconds
from bench.users import ERROR, OK, REFUSED, VIEW, Budget, Call, User, plan, variants

DS = "mnist"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = build_pretrained(tmp_path_factory.mktemp("pretrained"))
    app, url = launch_app(root)
    port = urlparse(url).port
    yield port, AppInputs.fetch(port)
    close_app(app)


@pytest.fixture(scope="module")
def mix(served):
    port, inputs = served
    return load.resolve_mix(port, inputs, DS, lambda s: None)[0]


class Recorder:
    """The load test's own `call` (load.sender), keeping every call it sends."""

    def __init__(self, port: int, inputs: AppInputs) -> None:
        self.send, self.sent = load.sender(port, inputs), []

    def __call__(self, call: Call, session: str):
        self.sent.append(call)
        return self.send(call, session)


def sends_what_it_takes(inputs: AppInputs, call: Call) -> list[str]:
    """What is wrong with a call's inputs ([] when nothing): a value for an input the event
    does not take, or a server function the run view does not have."""
    if call.via == VIEW:
        functions = inputs.view(RUN_VIEW).functions
        return [] if call.api in functions else [f"the run view has no function {call.api!r}"]
    try:
        data = inputs.data(call.api, call.values)
    except KeyError as err:
        return [str(err)]
    takes = inputs.event(call.api).sent
    return [] if len(data) == len(takes) else [f"/{call.api}: {len(data)} of {len(takes)}"]


def test_every_planned_call_sends_the_inputs_its_endpoint_takes(served, mix):
    _, inputs = served
    calls = [c for u in range(4) for interaction in plan(0, u, mix, 100) for c in interaction]
    calls += [c for interaction in variants(mix) for c in interaction]
    assert {c.api for c in calls if c.via == "api"} >= {
        "vdm_scrub_view", "vdm_reset_view", "vdm_reset", "vdm_step", "vdm_run", "vdm_forward"}
    assert {c.api for c in calls if c.via == VIEW} >= {"step", "start"}
    assert not [p for c in calls for p in sends_what_it_takes(inputs, c)]


def test_every_http_row_sends_the_inputs_its_endpoint_takes(served):
    _, inputs = served
    rows = server.endpoints(DS, DS, {DS: (0, 1)})
    calls = []
    for row in rows:
        calls.append(Call(row.key, row.api, row.data(0), via=row.via))
        if row.setup:
            calls.append(Call(row.key, *row.setup))
    assert {"vdm_scrub_view", "vdm_reset_view", "vdm_step"} <= {c.api for c in calls}
    assert not [p for c in calls for p in sends_what_it_takes(inputs, c)]


def test_the_app_serves_every_variant_of_the_mix(served, mix):
    """One interaction of each kind, a page's and an API client's, and every bad call: served,
    or (the bad ones) refused with a clear message."""
    port, inputs = served
    record = Recorder(port, inputs)
    user = User(-1, 0, mix, Budget(10**6, 10**6), record, think=(0.0, 0.0))
    records = load.warm_up(user)
    assert not [r.message for r in records if r.outcome == ERROR]
    assert {r.kind for r in records if r.outcome == REFUSED} == {
        c.kind for interaction in variants(mix) for c in interaction if c.refuse}
    assert any(r.kind.startswith("Run through the page") and r.outcome == OK for r in records)
    assert not [p for c in record.sent for p in sends_what_it_takes(inputs, c)]


def test_the_checks_send_what_the_app_takes(served, mix, monkeypatch):
    """Sessions apart, both Stops and what a run costs, shortened; the app serves their
    calls."""
    port, inputs = served
    monkeypatch.setattr(checks, "STOP_AFTER_S", 0.3)
    monkeypatch.setattr(checks, "STREAM_END_S", 3.0)
    monkeypatch.setattr(checks, "TWIN_STEPS", 3)
    record = Recorder(port, inputs)
    user = User(-1, 0, mix, Budget(10**6, 10**6), record, think=(0.0, 0.0))
    out: list = []
    checks.twin_run(user, lambda url: fetch(port, url), out)
    assert len(out) == 3 and [o[0] for o in out] == [1, 2, 3]
    page = checks.page_stop_check(user)
    assert page.step_after == "served" and page.steps_at_cancel is not None
    api = checks.stop_check(user, port, inputs)
    assert api.step_after == "served"
    cost = checks.run_cost(user, os.getpid(), cpu_seconds, runs=1, settle=lambda: None)
    assert cost["page_n"] == cost["api_n"] == 1 and cost["page_requests"] >= 1
    assert not [r.message for r in user.records if r.outcome == ERROR]
    assert not [p for c in record.sent for p in sends_what_it_takes(inputs, c)]


def test_every_http_row_is_served(served):
    """One call of each row (the t-SNE ones, which fit a map, left out), as the benchmark makes
    it: its setup in the session first."""
    port, inputs = served
    for row in server.endpoints(DS, DS, {DS: (0, 1)}):
        if "tsne" in row.key:
            continue
        run = server.start_row(port, inputs, row, "bench-app-test")
        server.send_row(port, inputs, row, 0, "bench-app-test", run)
