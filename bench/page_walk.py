"""`python -m bench.page_walk`: the latent walk of the VAE and HVAE tabs decoded by the page
(ui/static/views/walk.js: the path latents by lib/walk.js, the decoder graph in a module
worker, one thread) on the shipped models, in headless Debian Chromium, printed as a
"## Page compute: the VAE and HVAE decoders" markdown section (`--write`: also put into
BENCHMARKS.md, only that section).

`python app.py` with the shipped models; one page (`?dataset=D`, the default A and B); for each
walk, once its decoder is loaded and the app idle:
- one decoded frame (both paths' pictures at one w), the page posting the two latents to the
  worker to the page holding the pictures: p50 / p95 over `--calls` calls at random stops
  (`run` on the view's own worker, timed in the page);
- a slider move to the frame painted: w set as a drag sets it (an input event) to the view's
  paint of that stop's decoded frame, frames forgotten before each move so each is decoded;
- the requests to the app during a 100-move mouse drag across the slider (every request,
  Gradio's included), target 0: the server sent the walk's ends once, before;
- parity: the page's float decoder output against torch's decoder on the same path latents
  (explorer.latent's lerp and slerp at w_k), and its pixels against torch's to_uint8, at
  several stops.
The same drag with `?compute=server` shows what the page saves the app.
Screenshots of both walks go to artifacts/browser/page_walk_*.png.

The bench never imports gradio or the UI: the torch side is explorer's models.
"""

from __future__ import annotations

import argparse
import datetime
import time

import numpy as np
import torch

from bench.browser import ARGS, CHROMIUM, WAIT_MS
from bench.report import REPO, git_commit, loadavg, other_load, write_sections
from bench.server import App
from bench.stats import percentile
from explorer.checkpoint import load_checkpoint
from explorer.data import to_uint8
from explorer.latent import lerp, slerp
from explorer.paths import checkpoint_stem

HEADING = "## Page compute: the VAE and HVAE decoders"
WALKS = {"vae": ("VAE", "VAE"), "hvae": ("Hierarchical VAE", "HVAE")}   # kind -> (tab, name)
FRAME_TARGET_MS, MOVE_TARGET_MS, PARITY_TARGET = 16.0, 50.0, 1e-4
CALLS, MOVES, DRAG = 100, 40, 100
PARITY_STOPS = (0, 17, 50, 83, 100)
ARTIFACTS = REPO / "artifacts" / "browser"
WALK = "window.latentExplorer.walk"

# [kind, calls] -> ms of each `run` of the view's worker on both paths' latents at a random stop
FRAME_JS = """
async ([kind, calls]) => {
  const view = window.latentExplorer.walk[kind];
  const {decoderFeeds, pathLatents, walkW} = await import(new URL(MODULE, document.baseURI).href);
  const d = view.state.data, net = view.state.net.client, {inputs} = d.compute.graph;
  const times = [];
  for (let i = 0; i < calls; i++) {
    const p = pathLatents(d.za, d.zb, walkW(Math.floor(Math.random() * d.steps), d.steps));
    const feeds = decoderFeeds(inputs, d.shapes, [p.lerp, p.slerp], d.layer);
    const t0 = performance.now();
    await net.run(feeds);
    times.push(performance.now() - t0);
  }
  return times;
}
"""
# [kind, moves] -> ms from each move of w (an input event, frames forgotten) to its frame painted
MOVE_JS = """
async ([kind, moves]) => {
  const view = window.latentExplorer.walk[kind];
  const range = document.querySelector(`#${kind}-walk input.le-w`);
  const times = [];
  for (let i = 0; i < moves; i++) {
    let k;
    do { k = Math.floor(Math.random() * view.state.data.steps); } while (k === view.state.k);
    view.state.frames.clear();
    const t0 = performance.now();
    range.value = String(k);
    range.dispatchEvent(new Event("input", {bubbles: true}));
    for (;;) {
      const hit = view.state.painted.find((p) => p[0] >= t0 && p[2] === k);
      if (hit) { times.push(hit[0] - t0); break; }
      await new Promise((r) => setTimeout(r, 2));
    }
  }
  return times;
}
"""


def open_walk(browser, app: App, dataset: str, kind: str, server: bool = False):
    """A page on the walk of `kind`, its stop decoded, the app idle."""
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.errors = []
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.set_default_timeout(WAIT_MS)
    page.goto(app.url + f"?dataset={dataset}" + ("&compute=server" if server else ""))
    page.get_by_role("tab", name=WALKS[kind][0], exact=True).click()
    page.wait_for_function(f"""() => {{ const w = window.latentExplorer?.walk?.{kind};
        return w && w.state.data && w.state.data.dataset === '{dataset}'
            && w.inPage() === {str(not server).lower()} && w.state.frames.has(w.state.k); }}""",
                           timeout=120_000)
    app.wait_idle(timeout=120)
    return page


def drag_requests(page, kind: str, moves: int) -> tuple[int, int]:
    """Requests to the app during a mouse drag of `moves` moves across w, and the stops painted."""
    slider = page.locator(f"#{kind}-walk input.le-w")
    slider.scroll_into_view_if_needed()
    box = slider.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 2, y)
    asked = []
    listener = lambda r: asked.append(r.url)                          # noqa: E731
    page.on("request", listener)
    before = page.evaluate(f"{WALK}.{kind}.state.painted.length")
    page.mouse.down()
    for i in range(1, moves + 1):
        page.mouse.move(box["x"] + 2 + (box["width"] - 4) * i / moves, y)
    page.mouse.up()
    page.wait_for_function(f"() => {WALK}.{kind}.state.frames.has({WALK}.{kind}.state.k)")
    page.wait_for_timeout(300)
    page.remove_listener("request", listener)
    stops = page.evaluate(f"new Set({WALK}.{kind}.state.painted.slice({before})"
                          ".map((p) => p[1])).size")
    return len(asked), stops


def torch_decoder(dataset: str, kind: str, layer: int | None):
    """mean p(x|z) of the shipped decoder (the HVAE's with z_layer given, the layers below at
    their prior means: HVAE.decode at temperature 0)."""
    model = load_checkpoint(checkpoint_stem(dataset, kind))[0].eval()
    if kind == "vae":
        return model.decode_mean
    shape = tuple(model.config.latent_shapes[layer - 1])

    def decode(z):
        fixed = [None] * model.num_layers
        fixed[layer - 1] = z.reshape(-1, *shape)
        return model.decode(fixed, 0.0).x_mean
    return decode


def parity(page, dataset: str, kind: str) -> tuple[float, int]:
    """Max |x_page - x_torch| of the float output and max pixel-level gap, over PARITY_STOPS."""
    view = f"{WALK}.{kind}"
    ends = page.evaluate(f"{view}.ends()")
    data = page.evaluate(f"({{steps: {view}.state.data.steps, layer: {view}.state.data.layer}})")
    za, zb = (torch.tensor(ends[n]) for n in ("za", "zb"))
    decode = torch_decoder(dataset, kind, data["layer"])
    worst, levels = 0.0, 0
    for k in PARITY_STOPS:
        page.evaluate(f"{view}.set({k})")
        page.wait_for_function(f"{view}.state.frames.has({k})")
        frame = page.evaluate(f"{view}.frame({k})")
        w = torch.tensor(k / (data["steps"] - 1), dtype=torch.float32)
        with torch.no_grad():
            x = decode(torch.stack([lerp(za, zb, w), slerp(za, zb, w)]))
        worst = max(worst, float(np.abs(np.float32(frame["x"]) - x.numpy().ravel()).max()))
        pixels = np.concatenate([frame["lerp"], frame["slerp"]]).astype(int)
        levels = max(levels, int(np.abs(pixels - to_uint8(x).ravel().astype(int)).max()))
    return worst, levels


def measure_walk(browser, app: App, dataset: str, kind: str, calls: int, moves: int) -> dict:
    page = open_walk(browser, app, dataset, kind)
    module = "gradio_api/file=" + (REPO / "ui" / "static" / "lib" / "walk.js").as_posix()
    timings = page.evaluate(f"{WALK}.{kind}.state.net.client.timings")
    frame = page.evaluate(FRAME_JS.replace("MODULE", repr(module)), [kind, calls])
    move = page.evaluate(MOVE_JS, [kind, moves])
    page.evaluate(f"{WALK}.{kind}.set(50)")
    app.wait_idle(timeout=60)
    requests, stops = drag_requests(page, kind, DRAG)
    worst, levels = parity(page, dataset, kind)
    page.evaluate(f"{WALK}.{kind}.set(50)")
    page.wait_for_function(f"{WALK}.{kind}.state.frames.has(50)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator(f"#{kind}-walk").screenshot(path=ARTIFACTS / f"page_walk_{kind}.png")
    errors = list(page.errors)
    page.close()

    server = open_walk(browser, app, dataset, kind, server=True)
    server_requests, server_stops = drag_requests(server, kind, DRAG)
    server_move = server.evaluate(MOVE_JS, [kind, max(5, moves // 4)])
    errors += server.errors
    server.close()
    return {"frame": stats(frame), "move": stats(move), "load": timings,
            "requests": requests, "stops": stops, "parity": worst, "levels": levels,
            "server": {"requests": server_requests, "stops": server_stops,
                       "move": stats(server_move)}, "errors": errors}


def stats(times: list[float]) -> dict:
    return {"p50": percentile(times, 50), "p95": percentile(times, 95), "n": len(times)}


def measure(dataset: str, calls: int = CALLS, moves: int = MOVES) -> dict:
    from playwright.sync_api import sync_playwright       # only when this part runs

    machine = {"loadavg": loadavg(), "others": other_load()}
    app = App.start()
    try:
        app.wait_idle(timeout=120)                           # app.py's warm-up done
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            results = {kind: measure_walk(browser, app, dataset, kind, calls, moves)
                       for kind in WALKS}
            browser.close()
    finally:
        app.stop()
    return {"dataset": dataset, "results": results, "machine": machine, "commit": git_commit(),
            "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def section(m: dict) -> str:
    results = m["results"]
    names = [WALKS[kind][1] for kind in results]

    def cells(fn) -> str:
        return " | ".join(fn(r) for r in results.values())

    def met(fn) -> str:
        return "met" if all(fn(r) for r in results.values()) else "**missed**"

    def ms(s: dict) -> str:
        return f"{s['p50']:.1f} / {s['p95']:.1f} ms (n = {s['n']})"

    load = m["machine"]["loadavg"]
    lines = [
        HEADING, "",
        f"Written by `python -m bench.page_walk` on {m['when']} (commit {m['commit']}); do not "
        f"edit by hand. `python app.py` with the shipped models, dataset {m['dataset']}, the "
        "default A and B (HVAE: layer 1); headless Debian Chromium; ui/static/views/walk.js, "
        "its module worker running vae_decoder.onnx / hvae_decoder.onnx on one thread. Load at "
        f"start: loadavg {' '.join(f'{v:.2f}' for v in load) if load else 'unknown'}, other "
        f"processes {m['machine']['others']['cores_busy']} cores.", "",
        f"| measurement | {' | '.join(names)} | target | met? |",
        "|---|" + "---|" * len(names) + "---|---|",
        "| one decoded frame (lerp and slerp at one w), page → worker → page (p50 / p95) | "
        + cells(lambda r: ms(r["frame"])) + f" | p50 ≤ {FRAME_TARGET_MS:.0f} ms | "
        + met(lambda r: r["frame"]["p50"] <= FRAME_TARGET_MS) + " |",
        "| slider move to that stop's frame painted, decoded in the page (p50 / p95) | "
        + cells(lambda r: ms(r["move"])) + f" | p50 ≤ {MOVE_TARGET_MS:.0f} ms | "
        + met(lambda r: r["move"]["p50"] <= MOVE_TARGET_MS) + " |",
        "| the same, `?compute=server` (the view's server function decodes) | "
        + cells(lambda r: ms(r["server"]["move"])) + " | — | — |",
        f"| requests to the app during a {DRAG}-move drag of w (stops painted) | "
        + cells(lambda r: f"{r['requests']} ({r['stops']} stops)") + " | 0 | "
        + met(lambda r: r["requests"] == 0) + " |",
        "| the same drag, `?compute=server` | "
        + cells(lambda r: f"{r['server']['requests']} ({r['server']['stops']} stops)")
        + " | — | — |",
        "| decoder loaded in the worker: runtime import + graph fetch + SHA-256 + session | "
        + cells(lambda r: " + ".join(f"{v:.0f}" for v in r["load"].values()) + " ms")
        + " | — | — |",
        f"| parity: max \\|x_page − x_torch\\| of the decoder's output at {len(PARITY_STOPS)} "
        "stops (both paths); pixel levels apart | "
        + cells(lambda r: f"{r['parity']:.1e}; {r['levels']}") + f" | ≤ {PARITY_TARGET:.0e}; "
        "≤ 1 | " + met(lambda r: r["parity"] <= PARITY_TARGET and r["levels"] <= 1) + " |",
        "| console errors in the page | " + cells(lambda r: str(len(r["errors"])))
        + " | 0 | " + met(lambda r: not r["errors"]) + " |",
    ]
    for kind, r in results.items():
        for error in r["errors"][:5]:
            lines.append(f"- {kind}: {error}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="fashion-mnist", help="the dataset of the page")
    p.add_argument("--calls", type=int, default=CALLS, help="timed decoder calls per walk")
    p.add_argument("--moves", type=int, default=MOVES, help="timed slider moves per walk")
    p.add_argument("--write", action="store_true", help="also write the section into --output")
    p.add_argument("--output", default=str(REPO / "BENCHMARKS.md"))
    args = p.parse_args(argv)
    started = time.perf_counter()
    text = section(measure(args.dataset, args.calls, args.moves))
    print(text)
    print(f"({time.perf_counter() - started:.0f} s)")
    if args.write:
        write_sections(args.output, text, [HEADING])


if __name__ == "__main__":
    main()
