"""The VDM's eps-network run by the page: ui/static/lib/eps.js imported in Chromium, its worker
running the app's vdm_eps.onnx with the vendored onnxruntime-web, gives what torch's
`predict_noise` gives on the same x_t and t (a tiny VDM with random weights: an untrained one
predicts exactly 0 through its zeroed output layers). A graph whose SHA-256 is not the one the
server recorded is refused; the main thread fetches neither runtime nor graph; no console error.
The app's pages are cross-origin isolated, so the worker computes on threads, and what it
computes on them is what it computes on one.
"""

from __future__ import annotations

import hashlib
import re
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from app_env import REPO, build_pretrained, close_app, export_quietly, launch_app, pretrained_env
from test_browser import joined_events
from explorer.checkpoint import load_checkpoint, save_checkpoint

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT = 90_000                                         # ms; the machine may be busy
TOLERANCE = 1e-4                                      # float32 graph vs torch
VENDOR = REPO / "ui" / "static" / "vendor" / "onnxruntime-web"

# [module URL, config, x (B * 784 numbers), [t for each call]] -> {eps: [per call, B * 784],
# resources: what the main thread fetched}
RUN_JS = """
async ([module, config, x, steps]) => {
  const {openEps} = await import(new URL(module, document.baseURI).href);
  const net = await openEps(config);
  const eps = [];
  for (const t of steps) eps.push(Array.from(await net.eps(new Float32Array(x), t)));
  net.terminate();
  return {eps, resources: performance.getEntriesByType('resource').map((r) => r.name),
          ort: typeof globalThis.ort};
}
"""
# [module URL, config, x (784 numbers)] -> {isolated, cores, threads: [each session's], eps:
# [on the threads the page gives, on two, on one]}
THREADS_JS = """
async ([module, config, x]) => {
  const {openEps} = await import(new URL(module, document.baseURI).href);
  const nets = [await openEps(config), await openEps({...config, threads: 2}),
                await openEps({...config, threads: 1})];
  const eps = [];
  for (const net of nets) eps.push(Array.from(await net.eps(new Float32Array(x), 500)));
  const threads = nets.map((net) => net.threads);
  for (const net of nets) net.terminate();
  return {isolated: self.crossOriginIsolated, cores: navigator.hardwareConcurrency, threads, eps};
}
"""
# [module URL, config] -> the message openEps was rejected with ("" when it was not)
REFUSED_JS = """
async ([module, config]) => {
  const {openEps} = await import(new URL(module, document.baseURI).href);
  try {
    (await openEps(config)).terminate();
    return "";
  } catch (error) {
    return error.message;
  }
}
"""


def test_the_vendored_runtime_is_what_its_readme_names():
    readme = (VENDOR / "README.md").read_text()
    assert "onnxruntime-web@1.31.1" in readme
    for name in ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm",
                 "LICENSE"):
        digest = hashlib.sha256((VENDOR / name).read_bytes()).hexdigest()
        assert re.search(rf"`{re.escape(name)}`.*`{digest}`", readme), name


def randomize_vdm(root: Path) -> None:
    """Give mnist's tiny VDM random weights everywhere (seeded) and export its graphs again."""
    with pretrained_env(root):
        stem = root / "mnist" / "vdm"
        vdm = load_checkpoint(stem)[0]
        g = torch.Generator().manual_seed(3)
        with torch.no_grad():
            for p in vdm.parameters():
                p.add_(0.3 * torch.randn(p.shape, generator=g))
        save_checkpoint(vdm, stem)
        export_quietly("mnist", root / "mnist")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed (/usr/bin/chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    root = build_pretrained(tmp_path_factory.mktemp("pretrained"))
    randomize_vdm(root)
    app, url = launch_app(root)
    try:
        from ui.compute import page_compute
        from ui.page import static_url
        from ui.store import STORE
        config = page_compute("mnist")
        assert config is not None
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            page = browser.new_page()
            page.errors = []
            page.on("pageerror", lambda e: page.errors.append(str(e)))
            # a worker's console messages arrive here too
            page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
            page.set_default_timeout(WAIT)
            page.goto(url)
            sync_api.expect(page.locator("#dataset")).to_be_visible(timeout=WAIT)
            yield {"page": page, "url": url, "config": config, "module": static_url("lib/eps.js"),
                   "vdm": STORE.model("mnist", "vdm")}
            browser.close()
    finally:
        close_app(app)


def test_the_page_predicts_the_noise_torch_predicts(served):
    page, vdm = served["page"], served["vdm"]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 1, 28, 28, generator=g)
    steps = [1, 500, vdm.T, [2, 250, 999]]
    got = page.evaluate(RUN_JS, [served["module"], served["config"], x.flatten().tolist(), steps])
    for t, eps in zip(steps, got["eps"]):
        t = torch.tensor(t if isinstance(t, list) else [t] * 3)
        with torch.no_grad():
            expected = vdm.predict_noise(x, t).numpy()
        assert expected.std() > 0.1                               # not the untrained 0
        eps = np.asarray(eps, np.float32).reshape(expected.shape)
        assert np.abs(eps - expected).max() <= TOLERANCE, t
    # the worker fetched runtime and graph; the page itself only this module and the worker
    assert not [r for r in got["resources"] if r.endswith((".wasm", ".onnx", ".mjs"))]
    assert got["ort"] == "undefined"
    assert page.errors == []


def test_a_graph_with_another_sha256_is_refused(served):
    page, config = served["page"], served["config"]
    wrong = {**config, "graph": {**config["graph"], "sha256": "0" * 64}}
    message = page.evaluate(REFUSED_JS, [served["module"], wrong])
    assert message.startswith("eps network: the graph's SHA-256 is " + config["graph"]["sha256"])
    assert f"not {'0' * 64}" in message
    assert page.errors == []


def test_the_runtime_is_served_with_its_types(served):
    """The wasm as application/wasm (WebAssembly.instantiateStreaming needs it; otherwise
    Emscripten logs an error and falls back to a slower compile), the modules as JavaScript."""
    def content_type(path: str) -> str:
        with urllib.request.urlopen(served["url"] + path) as response:
            return response.headers.get("Content-Type", "")
    config = served["config"]
    assert content_type(config["wasm"]["wasm"]) == "application/wasm"
    for module in (config["ort"], config["wasm"]["mjs"]):
        assert content_type(module).split(";")[0] in ("text/javascript", "application/javascript")
    assert content_type(config["graph"]["url"]) == "application/octet-stream"


def test_the_page_takes_the_run_the_server_would(served):
    """Whole runs taken by the page on the VDM with random weights (DDIM eta 0, DDPM with its
    noise, then Heun, whose corrector reads the x0_hat of the Euler step before): one request to the app each (the plan; the network was loaded before), x_T is
    the server's, and every step the page took is the server's step from the same x_t (the
    sampler's step, the app's model, the generator of that step). Step by step, since this
    random network is chaotic: a change of 1e-6 in x_T moves its x_0 by more than 1; the
    shipped models' whole runs are compared in `python -m bench.page_run`."""
    from explorer.sampling import step_generator
    from explorer.trajectory import SHAPE, Trajectory

    page, vdm = served["page"], served["vdm"]
    view = "window.latentExplorer.run"
    counting, asked = [False], []
    page.on("request", lambda r: asked.append(r) if counting[0] else None)
    page.get_by_role("tab", name="Diffusion (VDM)").click()
    page.locator("#dataset label").filter(has_text=re.compile(r"^\s*mnist\s*$")).click()
    for sampler, steps, evaluations in (("ddim", 20, 20), ("ddpm", 20, 20), ("heun", 6, 11)):
        page.locator("#vdm-sampler label", has_text=sampler).click()
        box = page.locator("#vdm-steps input[type=number]")
        box.fill(str(steps))
        box.press("Enter")
        page.wait_for_function(
            f"() => {{ const h = {view} && {view}.state.history; return h && h.dataset === "
            f"'mnist' && h.sampler === '{sampler}' && h.n === {evaluations} && h.taken === 0; }}")
        # the settings' events may still bring a run or two: Run once the run is settled
        run_id = None
        for _ in range(120):
            now = page.evaluate(f"{view}.state.history.run")
            if now == run_id:
                break
            run_id = now
            page.wait_for_timeout(1500)
        assert page.evaluate(f"{view}.inPage()")
        page.evaluate(f"{view}.engine.warm({view}.state.history)")
        page.wait_for_timeout(500)
        asked.clear()
        counting[0] = True
        page.locator("#vdm-run-view [data-act=run]").click()
        page.wait_for_function(f"() => {{ const s = {view}.state; "
                               "return s.history.done && !s.running; }")
        page.wait_for_timeout(300)
        counting[0] = False
        # what the run asked of the server: its plan (a server function) and no event of the
        # run view; a settings event still finishing on a busy machine is not the run's
        joined = joined_events(page, [r.post_data for r in asked if "/queue/join" in r.url])
        planned = [r.url for r in asked if r.url.endswith("/component_server/")]
        assert len(planned) == 1, [r.url for r in asked]
        assert not {"vdm_reset_view", "vdm_reconfigure_view", "vdm_run_png"} & set(joined), joined
        seed = page.evaluate(f"{view}.state.history.seed")
        xs = [torch.tensor(page.evaluate(f"{view}.sample({k})")).reshape(SHAPE)
              for k in range(evaluations + 1)]
        run = Trajectory.start(sampler, steps, 0.0, seed, prior=vdm.prior_from_standard)
        assert (xs[0] - run.xs[0]).abs().max() <= 1e-6                  # x_T
        smp = run.make_sampler(vdm.schedule)
        with torch.no_grad():
            for k, t in enumerate(smp.timesteps.tolist()):
                eps = vdm.predict_noise(xs[k], torch.tensor([t]))
                ours = smp.step(eps, t, xs[k], generator=step_generator(seed, k)).prev_sample
                # the runtimes' eps_hat differ by ~1e-5; a step scales that error in x0_hat by
                # its x0 coefficients (Heun's late correctors: |c| up to ~5, both x0_hats)
                rule = smp.rule_at(k)
                gain = max(1.0, abs(rule.x0) + abs(rule.x0_prev))
                assert (xs[k + 1] - ours).abs().max() <= 1e-4 * gain * max(1.0, ours.abs().max()), k
    assert page.errors == []


def test_the_page_is_isolated_and_its_network_computes_on_threads(served):
    """COOP / COEP on every response (ui/compute.py CrossOriginIsolation) make the page
    cross-origin isolated; the worker then takes min(cores - 1, 4) threads (lib/threads.js),
    and sessions asked for two threads and for one give the same eps (float32 reduction
    order aside)."""
    for path in ("", served["config"]["graph"]["url"], served["config"]["wasm"]["mjs"]):
        with urllib.request.urlopen(served["url"] + path) as response:
            assert response.headers.get("Cross-Origin-Opener-Policy") == "same-origin", path
            assert response.headers.get("Cross-Origin-Embedder-Policy") == "credentialless", path
    g = torch.Generator().manual_seed(1)
    x = torch.randn(784, generator=g).tolist()
    got = served["page"].evaluate(THREADS_JS, [served["module"], served["config"], x])
    assert got["isolated"] is True
    assert got["threads"] == [max(1, min(got["cores"] - 1, 4)), 2, 1]
    given, two, one = (np.asarray(e, np.float32) for e in got["eps"])
    assert one.std() > 0.1
    assert np.abs(two - one).max() <= TOLERANCE and np.abs(given - one).max() <= TOLERANCE
    assert served["page"].errors == []


def test_isolation_headers_replace_the_apps_own_and_leave_other_traffic_alone():
    """The middleware on a bare ASGI app: its headers are set once (an app's own value of the
    same header is replaced), the others kept; a non-HTTP scope passes through untouched."""
    import asyncio
    import concurrent.futures

    from ui.compute import CrossOriginIsolation

    def run(coroutine):                       # a thread of its own: Playwright's loop may be set
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, coroutine).result()

    async def inner(scope, receive, send):
        if scope["type"] != "http":
            scope["seen"] = True
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"),
                                (b"Cross-Origin-Embedder-Policy", b"require-corp")]})
        await send({"type": "http.response.body", "body": b"ok"})

    sent = []

    async def send(message):
        sent.append(message)

    app = CrossOriginIsolation(inner)
    run(app({"type": "http"}, None, send))
    headers = sent[0]["headers"]
    assert (b"content-type", b"text/plain") in headers
    policies = [(k.lower(), v) for k, v in headers if k.lower().startswith(b"cross-origin")]
    assert sorted(policies) == [(b"cross-origin-embedder-policy", b"credentialless"),
                                (b"cross-origin-opener-policy", b"same-origin")]
    assert sent[1] == {"type": "http.response.body", "body": b"ok"}
    other = {"type": "lifespan"}
    run(app(other, None, send))
    assert other["seen"] and len(sent) == 2
