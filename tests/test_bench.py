"""The benchmark's pieces that can be checked without timing anything: percentiles against numpy,
the verdict against a target, the markdown table and the JSON round trip, the SSE client against
a fake server, and a smoke run of the in-process scrub row. No assertion is about speed: the
benchmark reports, it never fails CI."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from bench import client, compute, profiling
from bench.cli import main
from bench.inputs import AppInputs
from bench.page import PageRun, message_in
from bench.report import (REPORT_SECTIONS, Report, find_section, merge_sections, read_json,
                          results_table, to_markdown, write_json, write_sections)
from bench.stats import (MET, MET_P50, MISSED, NO_TARGET, NOT_RUN, Result, percentile,
                                  time_calls, verdict)
from explorer.paths import checkpoint_stem

REPO = Path(__file__).resolve().parent.parent
MACHINE = {"cores": 2, "cpu_model": "test CPU", "torch": "2.x", "torch_threads": 2,
           "app_torch_threads": "torch default", "python": "3.11", "date": "2026-01-01",
           "commit": "abc1234", "loadavg_start": [0.1, 0.2, 0.3], "other_cores_busy": 0.0,
           "busiest_others": [], "busy": False}


def rows() -> list[Result]:
    return [
        Result("compute.scrub", "compute", "scrub | one t", "ms", 0.5, 0.7, 200, 20.0, "a note"),
        Result("compute.tsne", "compute", "t-SNE cold", "s", 6.2, 7.0, 3, 5.0),
        Result("overhead.ddim50", "overhead", "sample()", "x", 1.01, None, 15, 1.05),
        Result.skipped("browser.step", "browser", "Step", "ms", "no chromium"),
        Result("startup.peak", "startup", "peak memory", "MiB", 812.0, None, 1, None),
    ]


# ---------------------------------------------------------------- statistics

@pytest.mark.parametrize("n", [1, 2, 5, 50, 101])
@pytest.mark.parametrize("q", [0, 5, 50, 95, 99, 100])
def test_percentile_matches_numpy(n, q):
    values = np.random.default_rng(n).exponential(size=n).tolist()
    assert percentile(values, q) == pytest.approx(np.percentile(values, q), rel=1e-12, abs=1e-15)


def test_percentile_rejects_nothing_and_bad_q():
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_verdict_against_an_upper_bound():
    assert verdict(10.0, 12.0, 20.0) == MET
    assert verdict(20.0, None, 20.0) == MET                     # at the target is met
    assert verdict(10.0, 25.0, 20.0) == MET_P50                 # a slow tail is flagged
    assert verdict(21.0, 22.0, 20.0) == MISSED
    assert verdict(21.0, 22.0, None) == NO_TARGET
    assert verdict(None, None, 20.0) == NOT_RUN


def test_result_from_seconds_converts_units():
    r = Result.from_seconds("k", "compute", "x", [0.001, 0.002, 0.003, 0.004, 0.005], "ms", 2.5)
    assert (r.p50, r.p95, r.n) == (pytest.approx(3.0), pytest.approx(4.8), 5)
    assert r.verdict == MISSED
    few = Result.from_seconds("k", "compute", "x", [1.5, 2.5], "s", 5.0)
    assert few.p50 == pytest.approx(2.0) and few.p95 is None and few.verdict == MET


def test_time_calls_counts_calls():
    seen = []
    out = time_calls(seen.append, 3, warmup=2)
    assert len(out) == 3 and seen == [0, 1, 0, 1, 2] and all(t >= 0 for t in out)


# ---------------------------------------------------------------- table and JSON

def test_markdown_table_has_the_columns_and_the_verdicts():
    table = results_table(rows())
    lines = table.splitlines()
    assert lines[0] == "| measurement | p50 | p95 | n | target | met? |"
    assert len(lines) == 2 + len(rows())
    assert all(len(re.findall(r"(?<!\\)\|", line)) == 7 for line in lines)   # 6 cells each
    assert "scrub \\| one t" in lines[2] and "≤ 20.0 ms" in lines[2] and "| met |" in lines[2]
    assert "**missed**" in lines[3] and "6.20 s" in lines[3]
    assert "1.010x" in lines[4]
    assert "not run: no chromium" in lines[5]


def test_report_markdown_has_sections_machine_and_summary():
    text = to_markdown(Report(MACHINE, {"argv": ["--quick"]}, rows(), ["a note"], {"p": "tree"}))
    for heading in ("## In-process compute", "## Sampler overhead", "## In a real browser",
                    "## Cold start and memory", "## Summary", "## Notes", "## Profile: p"):
        assert heading in text
    assert "2 cores, test CPU" in text and "abc1234" in text and "no (idle machine)" in text
    assert "Missed: t-SNE cold (6.20 s against ≤ 5.00 s)" in text
    assert "## Server round trip" not in text                   # no rows, no section


def test_json_round_trip(tmp_path):
    report = Report(MACHINE, {"argv": [], "quick": True}, rows(), ["n"], {"x": "y"})
    path = write_json(report, tmp_path / "sub" / "bench.json")
    back = read_json(path)
    assert back.to_dict() == report.to_dict()
    data = json.loads(path.read_text())
    assert [r["verdict"] for r in data["results"]] == [MET, MISSED, MET, NO_TARGET, NO_TARGET]


# the sections other modules write into BENCHMARKS.md (bench.load, hardening, page_run, page_eps,
# train_ddp): a full run must keep each, line for line
OTHERS = ("## Reliability", "## Hardening", "## Page run", "## Page compute", "## Training")


def test_a_full_run_rewrites_only_its_own_sections_of_benchmarks_md():
    """Merged into the repository's BENCHMARKS.md (read, not written), a full run's report
    replaces the title, its tables, summary, notes and profiles, and keeps every section another
    module wrote, unchanged and in its order, before the summary. No benchmark runs here."""
    old = (REPO / "BENCHMARKS.md").read_text()
    kept = [find_section(old, h) for h in OTHERS]
    assert all(kept), "BENCHMARKS.md lacks a section another module writes"
    new = to_markdown(Report(MACHINE, {"argv": ["--quick"]}, rows(), ["a new note"],
                             {"p": "new tree"}), "Benchmarks (quick run)")
    text = merge_sections(old, new, REPORT_SECTIONS)
    assert text.startswith(new[:new.index("\n## ")])               # the new title and machine
    assert [find_section(text, h) for h in OTHERS] == kept
    order = [text.index(h) for h in ("## In-process compute", *OTHERS, "## Summary", "## Notes",
                                     "## Profile: p")]
    assert order == sorted(order)
    assert "a new note" in text and "new tree" in text
    assert "## Profile: http:vdm_step" not in text                   # an old profile goes
    assert find_section(text, "## Summary") == find_section(new, "## Summary")
    assert merge_sections(text, new, REPORT_SECTIONS) == text        # idempotent
    # and a one-section writer (train_ddp) then keeps the full run's sections
    training = "## Training: VDM images per second\n\nnew figures\n"
    again = merge_sections(text, training, ["## Training"])
    assert again.replace(training + "\n", "") == text.replace(kept[-1] + "\n", "")
    assert find_section(again, "## Training") == training


def test_a_writer_writes_only_what_it_owns(tmp_path):
    path = tmp_path / "B.md"
    assert write_sections(path, "## Training\n\nx\n", ["## Training"]) == path   # begun
    assert path.read_text() == "## Training\n\nx\n"
    write_sections(path, "# Benchmarks\n\nmachine\n\n## Summary\n\nmet\n", REPORT_SECTIONS)
    assert path.read_text() == "# Benchmarks\n\nmachine\n\n## Training\n\nx\n\n## Summary\n\nmet\n"
    with pytest.raises(ValueError, match="starts with none of"):
        merge_sections("", "## Hardening\n", ["## Training"])


def test_profile_summary_of_collapsed_stacks():
    text = profiling.summarize_collapsed(["main (a.py:1);work (b.py:2) 3",
                                          "main (a.py:1);other (c.py:9) 1",
                                          "loop (d.py:1);EpollSelector.select (e.py:3) 5",
                                          "garbage"])
    assert text.startswith("4 busy samples (5 more were threads waiting, left out)")
    assert "100.0  main (a.py)" in text and "75.0  work (b.py)" in text
    assert "select" not in text


# ---------------------------------------------------------------- the HTTP client

class FakeGradio(BaseHTTPRequestHandler):
    """POST /gradio_api/call/<api> -> an event id; GET .../<id> -> an SSE result or error."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.bodies.append(body)
        if self.path == "/gradio_api/component_server/":         # a view's server function
            reply = ({"error": "press Reset"} if body["fn_name"] == "refuse" else
                     {"seq": 2, "run": 1, "start": 0, "taken": 1, "done": False, "steps": [{}]})
            self._send(200, json.dumps(reply).encode(), "application/json")
            return
        self._send(200, json.dumps({"event_id": "e1"}).encode(), "application/json")

    def do_GET(self):
        if "/fails/" in self.path:
            sse = b'event: error\ndata: {"error": "choose an image first"}\n\n'
        else:
            sse = b'event: generating\ndata: [0]\n\nevent: complete\ndata: [1, "two"]\n\n'
        self._send(200, sse, "text/event-stream")

    def _send(self, status, data, kind):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def fake_gradio():
    httpd = ThreadingHTTPServer((client.HOST, 0), FakeGradio)
    httpd.bodies = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_http_call_reads_the_result_and_sends_the_session(fake_gradio):
    port = fake_gradio.server_address[1]
    seconds, data = client.call(port, "works", [1, None], session="s1")
    assert data == [1, "two"] and seconds > 0
    assert fake_gradio.bodies[-1] == {"data": [1, None], "session_hash": "s1"}
    client.call(port, "works", [])
    assert "session_hash" not in fake_gradio.bodies[-1]
    with pytest.raises(client.CallError, match="choose an image first"):
        client.call(port, "fails", [])


# ---------------------------------------------------------------- smoke runs, no timing asserted

needs_vdm = pytest.mark.skipif(not checkpoint_stem("fashion-mnist", "vdm").with_suffix(".json")
                               .is_file() and not checkpoint_stem("mnist", "vdm")
                               .with_suffix(".json").is_file(), reason="no pretrained VDM")


@needs_vdm
def test_scrub_measurement_smoke():
    ctx = compute.Context.load("fashion-mnist", names=("vdm",))
    result = compute.MEASUREMENTS["scrub"].run(ctx, n=2)
    assert result.key == "compute.scrub" and result.n == 2 and result.unit == "ms"
    assert result.p50 > 0 and result.p95 is None and result.target == 20.0
    assert result.verdict in (MET, MISSED)


def test_a_missing_model_skips_its_rows():
    ctx = compute.Context.load("fashion-mnist", names=())
    result = compute.MEASUREMENTS["ddim50"].run(ctx, n=2)
    assert result.p50 is None and result.verdict == NOT_RUN and "no vdm" in result.note


@needs_vdm
def test_quick_cli_without_the_app_writes_json_not_markdown(tmp_path, capsys):
    out_md, out_json = tmp_path / "B.md", tmp_path / "b.json"
    assert main(["--quick", "--no-app", "--only", "scrub", "--json", str(out_json),
                 "--output", str(out_md)]) == 0
    assert not out_md.exists()                                   # quick: only with --write
    report = read_json(out_json)
    assert [r.key for r in report.results] == ["compute.scrub"]
    assert "| q(x_t\\|x_0) scrub" in capsys.readouterr().out


def test_the_bench_never_imports_gradio_or_the_ui():
    code = ("import sys, bench.cli, bench.server, bench.browser, bench.profiling, bench.load; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('gradio', 'gradio_client', "
            "'ui', 'app')]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, cwd=REPO)


def test_the_backend_knows_nothing_of_the_bench():
    """explorer/ is the backend: nothing in it imports the bench (which measures the app)."""
    found = [f"{path.relative_to(REPO)}:{i}" for path in (REPO / "explorer").rglob("*.py")
             for i, line in enumerate(path.read_text().splitlines(), 1)
             if re.match(r"\s*(from|import)\s+(bench|explorer\.bench)\b", line)]
    assert not found and not (REPO / "explorer" / "bench").exists()


def test_javascript_profile_summary():
    frame = lambda name, url="": {"functionName": name, "url": url, "lineNumber": 0}
    profile = {"nodes": [{"id": 1, "callFrame": frame("(root)"), "children": [2, 4]},
                         {"id": 2, "callFrame": frame("render", "http://x/plotly.js"),
                          "children": [3]},
                         {"id": 3, "callFrame": frame("draw", "http://x/plotly.js")},
                         {"id": 4, "callFrame": frame("(idle)")}],
               "samples": [3, 3, 2, 4], "timeDeltas": [0, 1000, 1000, 1000]}
    text = profiling.summarize_cpuprofile(profile, actions=1)   # sample i lasts delta i + 1
    assert text.startswith("1 inputs profiled; main thread busy 3 ms per input")
    inclusive, own = text.split("self ms/input")
    assert "3.0  render (plotly.js)" in inclusive and "2.0  draw (plotly.js)" in own
    assert "(idle)" not in text


def test_a_server_function_call_and_its_refusal(fake_gradio):
    port = fake_gradio.server_address[1]
    seconds, reply = client.view_call(port, 174, "step", {"key": "k", "have": 0}, "s2")
    assert reply["taken"] == 1 and seconds > 0
    assert fake_gradio.bodies[-1] == {"data": {"key": "k", "have": 0}, "component_id": 174,
                                      "fn_name": "step", "session_hash": "s2"}
    with pytest.raises(client.CallError, match="press Reset"):
        client.view_call(port, 174, "refuse", {})


# ---------------------------------------------------------------- inputs from /config

def config() -> dict:
    """A /config as Gradio 6 writes it, cut down: a radio, a number, an image, a slider, a
    gr.State and a view with server functions."""
    component = lambda i, kind, elem_id=None, value=None, **props: {
        "id": i, "type": kind, "props": {"elem_id": elem_id, "value": value, **props}}
    return {"components": [
        component(1, "radio", "dataset", "mnist", choices=[["mnist", "mnist"], ["fm", "fm"]]),
        component(2, "number", "a-index", 0), component(3, "image", "a", {"path": "/tmp/a.png"}),
        component(4, "slider", "vdm-t", 250, minimum=0, maximum=1000),
        component(5, "state"), component(6, "textbox"),
        component(7, "html", "vdm-run-view", server_fns=["follow", "step"])],
        "dependencies": [
            {"id": 0, "api_name": "vdm_forward", "inputs": [1, 2, 3, 4], "outputs": [3]},
            {"id": 1, "api_name": "vdm_step", "inputs": [5], "outputs": [5, 3]},
            {"id": 2, "api_name": "vdm_show", "inputs": [5, 4, 6], "outputs": [3]},
            {"id": 3, "api_name": None, "inputs": [1], "outputs": []}]}


def test_inputs_come_from_the_config_by_elem_id_with_defaults():
    inputs = AppInputs(config())
    assert inputs.data("vdm_forward", {"dataset": "fm", "a": None}, vdm_t=7) == [
        "fm", 0, None, 7]                                    # a-index: its default
    assert inputs.data("vdm_forward") == ["mnist", 0, {"path": "/tmp/a.png"}, 250]
    assert inputs.data("vdm_forward", a_index=5)[1] == 5      # `_` stands for `-`
    assert inputs.data("vdm_step") == []                      # gr.State: nothing sent
    assert inputs.data("vdm_show", {"vdm-t": 3}) == [3, None]  # no elem_id: the default
    assert inputs.takes("vdm_forward") == ["dataset", "a-index", "a", "vdm-t"]
    assert inputs.fn_index("vdm_step") == 1 and inputs.choices("dataset") == ["mnist", "fm"]
    view = inputs.view("vdm-run-view")
    assert (view.component_id, view.functions) == (7, ("follow", "step"))


def test_a_value_no_input_takes_is_an_error():
    inputs = AppInputs(config())
    with pytest.raises(KeyError, match="takes no input 'vdm-steps'.*dataset, a-index, a, vdm-t"):
        inputs.data("vdm_forward", {"vdm-steps": 5})
    with pytest.raises(KeyError, match="no event with api_name 'vdm_scrub'"):
        inputs.data("vdm_scrub")


# ---------------------------------------------------------------- the page's run

def message(run, start, n, taken, done=False, head=None, active=False) -> dict:
    msg = {"seq": 1, "run": run, "start": start, "taken": taken, "done": done,
           "steps": [{"t": 900 - k} for k in range(start, start + n)], "active": active}
    return {**msg, "head": head} if head else msg


def test_the_page_run_folds_messages_as_the_page_does():
    page = PageRun()
    page.fold(message(3, 0, 0, 0, head={"key": "k3", "steps": 20}))
    assert page.asked(shown=0) == {"key": "k3", "have": 0, "run": 3, "shown": 0}
    page.fold(message(3, 0, 8, 12, active=True))              # a reply cut to 8 steps
    assert (page.have, page.taken, page.active, page.finished) == (8, 12, True, False)
    page.fold(message(2, 8, 4, 12))                           # another run's: ignored
    assert page.have == 8
    page.fold(message(3, 10, 2, 12))                          # builds on steps not held
    assert page.have == 8
    page.fold(message(3, 8, 12, 20, done=True))
    assert page.finished and page.have == 20
    page.fold(message(4, 0, 0, 0, head={"key": "k4", "steps": 5}))     # Reset: a new run
    assert (page.key, page.run, page.have, page.steps) == ("k4", 4, 0, 5)
    outputs = [None, message(4, 0, 0, 0, head={"key": "k4", "steps": 5}), {"path": "x"}]
    assert message_in(outputs)["run"] == 4 and message_in([None, {"taken": 1}]) is None
