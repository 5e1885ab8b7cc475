"""`python -m bench.playground_page`: the 2-D playground's training as a visitor sees it, in
Debian's Chromium (Playwright): the app launched here, the playground opened, Train pressed
with the defaults (two moons, 1,000 points, a 3 x 128 MLP, batch 1,024, 2,000 iterations).
While it trains the page's own counters (ui/static/views/toy.js: `updates`, news from the
server; `clouds`, new sample clouds; `paints`, frames drawn) are read every second, and a
PerformanceObserver counts the main thread's long tasks from the Train click on (once the page
has loaded: no long task for 2 s; the load's own are reported apart). Printed as a markdown section ("## The
playground in the page"); `--write` also puts it into BENCHMARKS.md, the rest of the file kept.

Target (issue 24): the streamed view updates at least 5 times a second while training.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import time
from pathlib import Path

from bench.report import REPO, cpu_model, git_commit, loadavg, write_sections

HEADING = "## The playground in the page"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
LONG_TASKS = """() => { window.__long = []; new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__long.push([e.startTime, e.duration]); })
  .observe({type: "longtask", buffered: false}); }"""
# the page has loaded once it has had no long task for QUIET_MS (Gradio mounts the other tabs'
# Plotly plots after the view is up: two tasks of ~250 ms each, page load, not training)
QUIET_MS, SETTLE_MAX_MS = 2000, 30_000
QUIET = """([quiet, most]) => new Promise((done) => {
  const t0 = performance.now();
  const poll = () => {
    const now = performance.now(), last = window.__long.at(-1);
    const since = last ? now - (last[0] + last[1]) : now - t0;
    if (since >= quiet || now - t0 >= most) done(window.__long.splice(0)); else setTimeout(poll, 100);
  };
  poll();
})"""
COUNTERS = """() => { const s = window.latentExplorer.toy.state;
  return {updates: s.updates, clouds: s.clouds, paints: s.paints,
          iteration: s.summary ? s.summary.iteration : 0, status: s.summary ? s.summary.status : null,
          paint_ms: s.paintMs}; }"""


def measure(seconds: float = 8.0) -> dict:
    import app
    from playwright.sync_api import sync_playwright

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _, url, _ = app.launch(server_name="127.0.0.1", server_port=port,
                           prevent_thread_lock=True, quiet=True)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(f"{url}?tab=playground&data=moons")
            page.wait_for_function("() => window.latentExplorer?.toy?.state?.key", timeout=120_000)
            page.evaluate(LONG_TASKS)
            loading = page.evaluate(QUIET, [QUIET_MS, SETTLE_MAX_MS])
            page.locator("#toy-view [data-act=train]").click()
            page.wait_for_function("() => window.latentExplorer.toy.state.summary?.status === "
                                   "'training'", timeout=120_000)
            samples = [page.evaluate(COUNTERS) | {"at": time.monotonic()}]
            while time.monotonic() - samples[0]["at"] < seconds:
                page.wait_for_timeout(1000)
                samples.append(page.evaluate(COUNTERS) | {"at": time.monotonic()})
                if samples[-1]["status"] != "training":
                    break
            long_tasks = page.evaluate("() => window.__long.map((e) => e[1])")
            page.locator("#toy-view [data-act=stop]").click()
            browser.close()
    finally:
        app.demo.close()
    rates = {}
    for name in ("updates", "clouds", "paints", "iteration"):
        rates[name] = [(b[name] - a[name]) / (b["at"] - a["at"]) for a, b in zip(samples, samples[1:])]
    return {"seconds": samples[-1]["at"] - samples[0]["at"], "rates": rates,
            "long_tasks": long_tasks, "paint_ms": samples[-1]["paint_ms"],
            "loading_tasks": [duration for _, duration in loading]}


def section(m: dict) -> str:
    r = m["rates"]
    load = loadavg()
    lines = [HEADING, "",
             f"Chromium on this machine ({cpu_model()}), commit {git_commit()}, load "
             f"{'/'.join(f'{x:.2f}' for x in load) if load else 'n/a'}: the app and the browser "
             f"on the same 2 cores, Train pressed with the defaults (two moons, 1,000 points, "
             f"3 x 128 MLP, batch 1,024), {m['seconds']:.0f} s of training watched, per second:",
             "", "| figure | each second | median | target |", "|---|---|---|---|"]
    rows = [("news from the server (loss points, status)", "updates", "≥ 5 a second"),
            ("new sample clouds drawn", "clouds", "—"), ("frames painted", "paints", "—"),
            ("training iterations (with the page following)", "iteration", "—")]
    for label, key, target in rows:
        values = r[key]
        lines.append(f"| {label} | {', '.join(f'{v:.1f}' for v in values)} | "
                     f"{statistics.median(values):.1f} | {target} |")
    lines.append(f"| the longest draw of the view (every canvas that changed) | {m['paint_ms']:.1f} ms | — | ≤ 16 ms |")
    tasks = m["long_tasks"]
    found = f"{len(tasks)}, the longest {max(tasks):.0f} ms" if tasks else "0"
    lines.append(f"| main-thread tasks over 50 ms (from the Train click to the end) | {found} | — | 0 |")
    loading = m.get("loading_tasks", [])
    lines += ["", f"Before Train is pressed the bench waits until the page has had no task over "
              f"50 ms for {QUIET_MS / 1000:.0f} s: the page's load, after the view is up, had "
              f"{len(loading)} ({', '.join(f'{d:.0f}' for d in loading) or 'none'} ms; Gradio "
              f"mounting the Plotly plots of the other tabs)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.playground_page", description=__doc__)
    parser.add_argument("--seconds", type=float, default=8.0, help="training watched")
    parser.add_argument("--write", action="store_true", help="put the section into BENCHMARKS.md")
    args = parser.parse_args(argv)
    text = section(measure(args.seconds))
    print(text)
    if args.write:
        write_sections(Path(REPO) / "BENCHMARKS.md", text, [HEADING])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
