"""`python -m bench.page_run`: the reverse run taken by the page itself (ui/static/lib/pagerun.js:
the eps-network in a worker, the server's rules and noise sent once) against the same run taken
by the server (`?compute=server`), on the shipped models in headless Debian Chromium, printed as
a "## Page run" markdown section (`--write`: also put into BENCHMARKS.md).

For each compute mode, on a fresh page of `python app.py`:
- a 1000-step DDPM run from the Run click to x_0 drawn: its seconds (target in the page 15 s),
  the main thread's long tasks (PerformanceObserver 'longtask'; target none over 50 ms), the
  requests the page and its worker made to the app meanwhile (target in the page at most 2),
  and the app's CPU seconds (/proc/<pid>/stat) over it: what each visitor's run costs the server;
- a 50-step DDIM run (eta = 0) to x_0: the page's float32 x_0 against the server's own run of
  the same settings (explorer.trajectory in this process, the shipped model): max |diff|
  (target 1e-3), and the same for the DDPM-1000 run.
The network is opened (runtime and graph loaded) before the runs: its load is in `page_eps`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import tempfile
from pathlib import Path

import numpy as np
import torch

from bench.browser import ARGS, CHROMIUM, READY_JS, WAIT_MS, set_run
from bench.page_eps import start_app
from bench.report import REPO, git_commit, loadavg, other_load, write_sections
from bench.server import cpu_seconds
from explorer.checkpoint import load_checkpoint
from explorer.paths import checkpoint_stem
from explorer.trajectory import Trajectory

HEADING = "## Page run"
RUN_TARGET_S, REQUESTS_TARGET, PARITY_TARGET = 15.0, 2, 1e-3

RUN_JS = """
() => new Promise((done) => {
  const view = window.latentExplorer.run, tasks = [];
  const observer = new PerformanceObserver(
    (l) => tasks.push(...l.getEntries().map((e) => e.duration)));
  observer.observe({type: 'longtask'});
  const t0 = performance.now();
  document.querySelector('#vdm-run-view [data-act=run]').click();
  const poll = () => {
    const h = view.state.history;
    if (h.done && !view.state.running && view.state.drawnShown === h.n) {
      tasks.push(...observer.takeRecords().map((e) => e.duration));
      observer.disconnect();
      done({seconds: (performance.now() - t0) / 1e3, tasks, inPage: view.inPage(),
            x0: view.sample(h.n), seed: h.seed, n: h.n, sampler: h.sampler});
    } else setTimeout(poll, 20);
  };
  poll();
})
"""


def server_x0(dataset: str, sampler: str, steps: int, seed: int) -> np.ndarray:
    """x_0 of the run the server makes with these settings (eta 0, the app's spacing)."""
    vdm = load_checkpoint(checkpoint_stem(dataset, "vdm"))[0].eval()
    run = Trajectory.start(sampler, steps, 0.0, seed, prior=vdm.prior_from_standard)
    with torch.no_grad():
        for _ in run.run(vdm.predict_noise, vdm.schedule):
            pass
    return run.x.numpy().ravel()


def one_run(browser, url: str, pid: int, mode: str, sampler: str, steps: int) -> dict:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors, requests, counting = [], [], [False]
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append(f"{r.method} {r.url[-60:]}")
            if counting[0] else None)
    page.goto(url + ("?compute=server" if mode == "server" else ""))
    page.get_by_role("tab", name="Diffusion (VDM)").click()
    page.wait_for_function(READY_JS, timeout=WAIT_MS)
    dataset = page.locator("#dataset input:checked").input_value()
    set_run(page, sampler, steps)
    if mode == "page":                                  # the network loaded before the run
        page.evaluate("window.latentExplorer.run.engine.warm(window.latentExplorer.run.state.history)")
    page.wait_for_timeout(1500)
    counting[0] = True
    cpu = cpu_seconds(pid)
    got = page.evaluate(RUN_JS)
    got["cpu"] = cpu_seconds(pid) - cpu
    page.wait_for_timeout(300)
    counting[0] = False
    got.update(requests=list(requests), errors=errors, dataset=dataset, mode=mode)
    context.close()
    if got["x0"] is not None:
        ours = server_x0(dataset, sampler, steps, got["seed"])
        got["parity"] = float(np.abs(np.asarray(got["x0"], np.float32) - ours).max())
    got.pop("x0")
    return got


def measure() -> dict:
    from playwright.sync_api import sync_playwright       # only when this part runs

    machine = {"loadavg": loadavg(), "others": other_load()}
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        app = start_app(Path(tmp) / "configs.json")
        try:
            app.wait_idle(timeout=120)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
                for mode in ("page", "server"):
                    runs.append(one_run(browser, app.url, app.process.pid, mode, "ddpm", 1000))
                runs.append(one_run(browser, app.url, app.process.pid, "page", "ddim", 50))
                browser.close()
        finally:
            app.stop()
    return {"runs": runs, "machine": machine, "commit": git_commit(),
            "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def section(m: dict) -> str:
    page, server, ddim = m["runs"]
    longest = max(page["tasks"], default=0.0)
    lines = [
        f"{HEADING}: the reverse run computed in the browser against on the server", "",
        f"Written by `python -m bench.page_run` on {m['when']} (commit {m['commit']}); do not "
        "edit by hand. `python app.py` with the shipped models, dataset "
        f"{page['dataset']}; headless Debian Chromium, one page each; load average before "
        f"{m['machine']['loadavg']}.", "",
        "| what | in the page | on the server (`?compute=server`) | target | verdict |",
        "|---|---|---|---|---|",
        f"| DDPM-1000 run, Run clicked to x_0 drawn | {page['seconds']:.1f} s | "
        f"{server['seconds']:.1f} s | page ≤ {RUN_TARGET_S:g} s | "
        f"{_verdict(page['seconds'] <= RUN_TARGET_S)} |",
        f"| main-thread long tasks (> 50 ms) during it | {len(page['tasks'])} (longest "
        f"{longest:.0f} ms) | {len(server['tasks'])} (longest "
        f"{max(server['tasks'], default=0.0):.0f} ms) | page 0 | "
        f"{_verdict(not page['tasks'])} |",
        f"| requests to the app during the run | {len(page['requests'])} | "
        f"{len(server['requests'])} | page ≤ {REQUESTS_TARGET} | "
        f"{_verdict(len(page['requests']) <= REQUESTS_TARGET)} |",
        f"| app CPU seconds per completed run | {page['cpu']:.2f} s | {server['cpu']:.2f} s | "
        f"— | ratio {server['cpu'] / max(page['cpu'], 1e-3):.0f}x |",
        f"| final x_0, page vs the server's own run: max abs diff | DDPM-1000 "
        f"{page['parity']:.2e}; DDIM-50 (eta 0) {ddim['parity']:.2e} | — | DDIM-50 ≤ "
        f"{PARITY_TARGET:g} | {_verdict(ddim['parity'] <= PARITY_TARGET)} |",
        "",
        f"Requests in the page's run: {page['requests'] or 'none'}. DDIM-50 in the page took "
        f"{ddim['seconds']:.2f} s with {len(ddim['requests'])} request(s). Computed in the page: "
        f"{page['inPage']} / {server['inPage']} / {ddim['inPage']}. Console errors: "
        f"{sum(len(r['errors']) for r in m['runs'])}.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.page_run", description=__doc__)
    parser.add_argument("--write", action="store_true", help="put the section into BENCHMARKS.md")
    parser.add_argument("--json", type=Path, help="also save the figures as JSON")
    args = parser.parse_args(argv)
    m = measure()
    text = section(m)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(m, indent=1))
    if args.write:
        write_sections(REPO / "BENCHMARKS.md", text, [HEADING])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
