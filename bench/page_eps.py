"""`python -m bench.page_eps`: the VDM's eps-network run by the page (ui/static/lib/eps.js: the
vendored onnxruntime-web in a module worker, on the threads lib/threads.js gives) on the shipped
models, in headless Debian Chromium, printed as its "## Page compute: the VDM's eps-network"
markdown section (`--write`: also put into BENCHMARKS.md, the rest of the file kept).

For each dataset, in a fresh browser context (empty HTTP cache), on the app's page once the app
has served that page's own first requests (~10 s of its CPU here; measured during them, a first
load took ~7 s instead of ~2):
- first load: `openEps(config)` resolved, timed in the page: the worker's start, the runtime's
  import, the graph's fetch, its SHA-256, the session's creation with the wasm's fetch and
  compile (the worker's own split);
- load again in the same context (what a page that switches dataset pays; caches warm);
- one eps call for one 28x28 image, the page posting x and t to the worker to the page holding
  eps: p50 / p95 over `--calls` calls at varied t after `--warmup` untimed ones (target 10 ms),
  on the threads the page gives (the app's pages are cross-origin isolated: ui/compute.py; the
  page leaves a core to itself: lib/threads.js) and, in the same page, on every core (up to 4,
  `config.threads`), the two sessions' calls taken in alternating blocks of 20;
- parity: max |eps_page - eps_torch| against `VDM.predict_noise` on seeded x_t (a batch of 4
  at per-image t, and one image), target 1e-4.

The app is `python app.py` with the shipped models, started by a launcher that first asks
ui/compute.py's `page_compute` for each dataset's config: making it lets Gradio serve that
graph, and the bench itself never imports gradio or the UI.
"""

from __future__ import annotations

import argparse
import datetime
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench.browser import ARGS, CHROMIUM, WAIT_MS
from bench.client import free_port
from bench.report import REPO, git_commit, loadavg, other_load, write_sections
from bench.server import App
from bench.stats import percentile
from explorer.checkpoint import load_checkpoint
from explorer.data import DATASETS
from explorer.paths import checkpoint_stem

HEADING = "## Page compute: the VDM's eps-network"   # owns this section only (page_walk owns its own)
MODULE = "gradio_api/file=" + (REPO / "ui" / "static" / "lib" / "eps.js").as_posix()
EPS_TARGET_MS, PARITY_TARGET = 10.0, 1e-4
CALLS, WARMUP = 200, 20

# argv: config file, port. The configs are made in the app's process, before it serves.
LAUNCH = """
import json, sys
from pathlib import Path
from explorer.data import DATASETS
from ui.compute import page_compute
import app
Path(sys.argv[1]).write_text(json.dumps({d: page_compute(d) for d in DATASETS}))
sys.argv = ["app.py", "--port", sys.argv[2]]
app.main()
"""

# [module, config] -> {load ms, timings (the worker's split), again ms}: the first open and a
# second one in the same page, each terminated after
LOAD_JS = """
async ([module, config]) => {
  const {openEps} = await import(new URL(module, document.baseURI).href);
  const open = async () => {
    const t0 = performance.now();
    const net = await openEps(config);
    const ms = performance.now() - t0;
    net.terminate();
    return [ms, net.timings, net.threads];
  };
  const [load, timings, threads] = await open();
  const [again] = await open();
  return {load, timings, threads, again, isolated: self.crossOriginIsolated};
}
"""
# [module, config, one image (784), steps of the timed calls, warm-up calls, parity x (B * 784),
# parity steps] -> {times ms, everyCore: the same on every core (lib/threads.js caps it),
# threads, eps: [eps of x at each parity step], single: eps of the first image}; the two
# sessions' calls alternate in blocks of BLOCK
BLOCK = 20
CALLS_JS = """
async ([module, config, image, steps, warmup, x, parity]) => {
  const {openEps} = await import(new URL(module, document.baseURI).href);
  const net = await openEps(config);
  const every = await openEps({...config, threads: navigator.hardwareConcurrency});
  const one = new Float32Array(image);
  for (const session of [net, every]) {
    for (let i = 0; i < warmup; i++) await session.eps(one, steps[i % steps.length]);
  }
  const times = [], everyCore = [];
  for (let start = 0; start < steps.length; start += BLOCK) {
    for (const [session, out] of [[net, times], [every, everyCore]]) {
      for (const t of steps.slice(start, start + BLOCK)) {
        const t0 = performance.now();
        await session.eps(one, t);
        out.push(performance.now() - t0);
      }
    }
  }
  const eps = [];
  for (const t of parity) eps.push(Array.from(await net.eps(new Float32Array(x), t)));
  const first = Array.from(await net.eps(one, parity[0][0]));
  const threads = net.threads;
  net.terminate();
  every.terminate();
  return {times, everyCore, threads, eps, single: first};
}
""".replace("BLOCK", str(BLOCK))


def start_app(config_file: Path, timeout: float = 180.0) -> App:
    """`python app.py` on the shipped models, launched after page_compute made every config."""
    port = free_port()
    log = Path(tempfile.mkstemp(prefix="bench-page-eps-", suffix=".log")[1])
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-c", LAUNCH, str(config_file), str(port)],
                                   cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
    app = App(process, port, log, time.perf_counter())
    try:
        app._wait_200(timeout)                   # App.start's wait, for this launcher
    except Exception:
        app.stop()
        raise
    return app


def torch_eps(dataset: str, x: np.ndarray, steps: list[list[int]]) -> list[np.ndarray]:
    """VDM.predict_noise of the shipped model at each row of steps, (B, 1, 28, 28) each."""
    vdm = load_checkpoint(checkpoint_stem(dataset, "vdm"))[0].eval()
    with torch.no_grad():
        return [vdm.predict_noise(torch.from_numpy(x), torch.tensor(t)).numpy() for t in steps]


def measure_dataset(browser, app: App, dataset: str, config: dict, calls: int,
                    warmup: int) -> dict:
    rng = np.random.default_rng(0)
    T = config["graph"]["T"]
    x = rng.standard_normal((4, 1, 28, 28)).astype(np.float32)
    parity = [[1, 10, T // 2, T], [100, 250, 750, T - 1]]
    steps = [int(s) for s in rng.integers(1, T + 1, calls)]
    out = {}
    for what, script, args in (
            ("load", LOAD_JS, [MODULE, config]),
            ("calls", CALLS_JS, [MODULE, config, x[0].ravel().tolist(), steps, warmup,
                                 x.ravel().tolist(), parity])):
        context = browser.new_context()          # an empty HTTP cache for each
        page = context.new_page()
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.set_default_timeout(WAIT_MS)
        page.goto(app.url)
        page.locator("#dataset").wait_for(timeout=WAIT_MS)
        app.wait_idle(timeout=60)                # the page's own first requests served
        out[what] = page.evaluate(script, args)
        out.setdefault("errors", []).extend(errors)
        context.close()
    expected = torch_eps(dataset, x, parity)
    diffs = [np.abs(np.asarray(got, np.float32).reshape(e.shape) - e).max()
             for got, e in zip(out["calls"]["eps"], expected)]
    single = np.asarray(out["calls"]["single"], np.float32)
    diffs.append(np.abs(single - expected[0][0].ravel()).max())
    times, every = out["calls"]["times"], out["calls"]["everyCore"]
    return {"load": out["load"]["load"], "split": out["load"]["timings"],
            "again": out["load"]["again"], "p50": percentile(times, 50),
            "p95": percentile(times, 95), "n": len(times), "threads": out["calls"]["threads"],
            "isolated": out["load"]["isolated"],
            "every_p50": percentile(every, 50), "every_p95": percentile(every, 95),
            "parity": float(max(diffs)),
            "pairs": sum(len(t) for t in parity) + 1, "errors": out["errors"]}


def measure(calls: int = CALLS, warmup: int = WARMUP) -> dict:
    from playwright.sync_api import sync_playwright       # only when this part runs

    machine = {"loadavg": loadavg(), "others": other_load()}
    with tempfile.TemporaryDirectory() as tmp:
        config_file = Path(tmp) / "configs.json"
        app = start_app(config_file)
        try:
            app.wait_idle(timeout=120)                      # app.py's warm-up done
            configs = json.loads(config_file.read_text())
            results = {}
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
                for dataset in DATASETS:
                    if configs.get(dataset) is None:
                        results[dataset] = None         # no graph to offer (page_compute: None)
                        continue
                    results[dataset] = measure_dataset(browser, app, dataset, configs[dataset],
                                                       calls, warmup)
                browser.close()
        finally:
            app.stop()
    return {"results": results, "machine": machine, "commit": git_commit(),
            "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def threads_text(results: dict) -> str:
    """What the eps session computed on, as measured (the worker's count, the page's isolation)."""
    found = {(r["threads"], r["isolated"]) for r in results.values() if r is not None}
    if not found:
        return "no thread (no graph offered)"
    parts = [f"{n} thread{'s' if n != 1 else ''} (the page {'is' if iso else 'is not'} "
             "cross-origin isolated)" for n, iso in sorted(found)]
    return " / ".join(parts)


def section(m: dict) -> str:
    results = m["results"]
    names = list(DATASETS)

    def cells(fn) -> str:
        return " | ".join("not offered" if results[d] is None else fn(results[d]) for d in names)

    def met(fn) -> str:
        found = [fn(r) for r in results.values() if r is not None]
        return "met" if found and all(found) else "**missed**"

    load = m["machine"]["loadavg"]
    lines = [
        f"{HEADING} in the browser (onnxruntime-web, WebAssembly)", "",
        f"Written by `python -m bench.page_eps` on {m['when']} (commit {m['commit']}); do not "
        "edit by hand. `python app.py` with the shipped models; headless Debian Chromium; "
        "ui/static/lib/eps.js in the page, its module worker running vdm_eps.onnx on "
        f"{threads_text(results)}. Load at start: loadavg "
        f"{' '.join(f'{v:.2f}' for v in load) if load else 'unknown'}, other processes "
        f"{m['machine']['others']['cores_busy']} cores.", "",
        f"| measurement | {' | '.join(names)} | target | met? |",
        "|---|" + "---|" * len(names) + "---|---|",
        "| eps for one 28x28 image, page → worker → page (p50 / p95, n calls at random t) | "
        + cells(lambda r: f"{r['p50']:.2f} / {r['p95']:.2f} ms (n = {r['n']})")
        + f" | p50 ≤ {EPS_TARGET_MS:.0f} ms | " + met(lambda r: r["p50"] <= EPS_TARGET_MS) + " |",
        "| the same on every core (up to 4; the page leaves one to itself, see Page run), "
        "calls alternating with the row above in blocks of %d | " % BLOCK
        + cells(lambda r: f"{r['every_p50']:.2f} / {r['every_p95']:.2f} ms (n = {r['n']}; "
                          f"{r['p50'] / r['every_p50']:.2f}x faster than above)") + " | — | — |",
        "| first load, empty cache: `openEps` resolved (in the worker: runtime import + graph "
        "fetch + SHA-256 + session create, which fetches and compiles the 15 MB wasm) | "
        + cells(lambda r: f"{r['load']:.0f} ms ("
                          + " + ".join(f"{v:.0f}" for v in r["split"].values()) + " ms)")
        + " | — | — |",
        "| load again in the same page (caches warm) | "
        + cells(lambda r: f"{r['again']:.0f} ms") + " | — | — |",
        "| parity: max \\|eps_page − eps_torch\\| (`predict_noise`, seeded x_t) | "
        + cells(lambda r: f"{r['parity']:.1e} ({r['pairs']} (x, t) pairs)")
        + f" | ≤ {PARITY_TARGET:.0e} | " + met(lambda r: r["parity"] <= PARITY_TARGET) + " |",
        "| console errors in the page | " + cells(lambda r: str(len(r["errors"])))
        + " | 0 | " + met(lambda r: not r["errors"]) + " |",
    ]
    for dataset in names:
        for error in (results[dataset] or {}).get("errors", [])[:5]:
            lines.append(f"- {dataset}: {error}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=CALLS, help="timed eps calls per dataset")
    p.add_argument("--warmup", type=int, default=WARMUP, help="untimed eps calls before them")
    p.add_argument("--write", action="store_true", help="also write the section into --output")
    p.add_argument("--output", default=str(REPO / "BENCHMARKS.md"))
    args = p.parse_args(argv)
    text = section(measure(args.calls, args.warmup))
    print(text)
    if args.write:
        write_sections(args.output, text, [HEADING])


if __name__ == "__main__":
    main()
