"""The page in a real browser: headless Debian Chromium driven by Playwright against the running
app (Playwright is imported only here, and only when this part runs).

The VDM tab's views are canvases the page paints itself (ui/static/views/scrub.js, run.js); the
page exposes what it does for tests and benchmarks: `window.latentExplorer.scrub` ({at, set, t})
and `window.latentExplorer.run` ({state, drawn: [performance.now(), steps shown] for every frame
drawn, actions}). Timings are taken inside the page with performance.now():
- the scrub: a move of its t slider (`#vdm-scrub input.le-t`, input events as a drag sends
  them) to the frame after it (the page mixes and paints x_t in the input handler);
- a Step: the click on `#vdm-run-view [data-act=step]` to the frame that drew the new step;
  the requests it made (queue/join and server-function POSTs) and the bytes it received
  (CDP Network.dataReceived) until then;
- a 1000-step DDPM run: Run clicked, the run drawn for RUN_S seconds, then Stop: main-thread
  long tasks (PerformanceObserver 'longtask') while it ran, the interval between frames that
  drew a new step, the bytes received per frame, and the Stop click to the last frame that drew
  a step after it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Collection

from bench.profiling import summarize_cpuprofile
from bench.stats import Result, percentile

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 60_000
SECTION = "browser"
RUN_STEPS, RUN_S, QUICK_RUN_S = 1000, 8.0, 5.0      # the long run, drawn this long then stopped
AFTER_STOP_S = 2.0                                  # frames drawn this long after Stop count
SETTLE_S = 0.3                                      # a Step's late requests still count
KB = 1024

LABELS = {
    "browser.scrub": ("t slider dragged: each move to x_t painted (scrub view)", "ms", 100.0),
    "browser.scrub_click": ("t slider clicked on its track: x_t painted", "ms", 100.0),
    "browser.step": ("Step clicked to the new step drawn (canvas, DDIM-1000 run)", "ms", None),
    "browser.step_requests": ("requests per Step (queue/join and server-function POSTs)",
                              "requests", 1.0),
    "browser.step_bytes": ("bytes received per Step", "KB", None),
    "browser.run_longtasks": ("main-thread long tasks (> 50 ms) during a 1000-step DDPM run",
                              "tasks", 0.0),
    "browser.run_longest": ("longest main-thread task during the run", "ms", 50.0),
    "browser.run_interval": ("interval between frames that drew a new step, during the run",
                             "ms", 50.0),
    # a streamed frame of the run is one step's eps_hat, x0_hat and sample (what the server sends
    # per step); the page draws when it can, so a frame drawn may bring more than one step
    "browser.run_step_bytes": ("bytes received per streamed frame (a step) during the run", "KB",
                               4.0),
    "browser.frame_bytes": ("bytes received per frame drawn during the run", "KB", None),
    "browser.stop": ("Stop clicked to the last frame drawn", "ms", 100.0),
}

_AFTER_FRAME = """
const afterFrame = () => new Promise((resolve) => requestAnimationFrame(() => {
  const ch = new MessageChannel();                   // just after the frame that paints it
  ch.port1.onmessage = () => resolve(performance.now());
  ch.port2.postMessage(null);
}));
"""

# [t, action] -> [ms from the input to just after the next frame, ms of long tasks in between]
# or null when the scrub did not move to t. "drag": an input event (a move, the pointer down);
# "track": pointerdown, input, change, pointerup (a click on the track).
SCRUB_JS = """
async ([t, action]) => {""" + _AFTER_FRAME + """
  const element = document.querySelector('#vdm-scrub input.le-t');
  const tasks = [];
  const observer = new PerformanceObserver((list) => tasks.push(...list.getEntries()));
  observer.observe({type: 'longtask'});
  const pointer = (type) => element.dispatchEvent(new PointerEvent(type, {bubbles: true}));
  const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
  const t0 = performance.now();
  if (action === 'track') pointer('pointerdown');
  setter.call(element, String(t));
  element.dispatchEvent(new Event('input', {bubbles: true}));
  if (action === 'track') {
    element.dispatchEvent(new Event('change', {bubbles: true}));
    pointer('pointerup');
  }
  const t1 = await afterFrame();
  tasks.push(...observer.takeRecords());
  observer.disconnect();
  if (window.latentExplorer.scrub.t !== t) return null;
  return [t1 - t0, tasks.filter(e => e.startTime >= t0).reduce((s, e) => s + e.duration, 0)];
}
"""

# [timeout ms] -> [ms from the Step click to the frame that drew the new step, ms of long tasks
# in between] or null on timeout
STEP_JS = """
async ([timeout]) => {
  const run = window.latentExplorer.run;
  const want = run.state.history.steps.length + 1;
  const from = run.drawn.length;
  const tasks = [];
  const observer = new PerformanceObserver((list) => tasks.push(...list.getEntries()));
  observer.observe({type: 'longtask'});
  const t0 = performance.now();
  document.querySelector('#vdm-run-view [data-act=step]').click();
  const drawn = await new Promise((resolve) => {
    const look = () => {
      const hit = run.drawn.slice(Math.min(from, run.drawn.length)).find((d) => d[1] === want);
      if (hit) resolve(hit[0]);
      else if (performance.now() - t0 > timeout) resolve(null);
      else requestAnimationFrame(look);
    };
    look();
  });
  tasks.push(...observer.takeRecords());
  observer.disconnect();
  if (drawn === null) return null;
  return [drawn - t0, tasks.filter(e => e.startTime >= t0).reduce((s, e) => s + e.duration, 0)];
}
"""

# the long run: start observing long tasks, click Run; returns performance.now() at the click
RUN_JS = """
() => {
  const m = window.__benchRun = {tasks: []};
  m.observer = new PerformanceObserver((list) => m.tasks.push(
    ...list.getEntries().map((e) => [e.startTime, e.duration])));
  m.observer.observe({type: 'longtask'});
  m.from = window.latentExplorer.run.drawn.length;
  const t = performance.now();
  document.querySelector('#vdm-run-view [data-act=run]').click();
  return t;
}
"""
STOP_JS = """
() => {
  const t = performance.now();
  window.__benchRun.shown = window.latentExplorer.run.state.shown;
  document.querySelector('#vdm-run-view [data-act=stop]').click();
  return t;
}
"""
# what the run left: drawn frames from the Run click on, long tasks, the run as the page holds it
RUN_RESULT_JS = """
() => {
  const m = window.__benchRun, run = window.latentExplorer.run;
  m.tasks.push(...m.observer.takeRecords().map((e) => [e.startTime, e.duration]));
  m.observer.disconnect();
  const h = run.state.history;
  return {drawn: run.drawn.slice(Math.min(m.from, run.drawn.length)), tasks: m.tasks,
          shownAtStop: m.shown, taken: h.taken, held: h.steps.length, shown: run.state.shown,
          running: run.state.running};
}
"""
READY_JS = """
() => {
  const le = window.latentExplorer;
  return !!(le && le.scrub && le.scrub.at(0) && le.run && le.run.state.history);
}
"""


def new_steps(drawn: list, before: int | None = None) -> list[tuple[float, int]]:
    """The frames (time, steps shown) that drew another step than the frame before them."""
    out, last = [], before
    for at, shown in drawn:
        if shown != last:
            out.append((at, shown))
        last = shown
    return out


def run_figures(found: dict, t_run: float, t_stop: float, shown_before: int) -> dict:
    """A long run's figures from what the page recorded (RUN_RESULT_JS): frames that drew a new
    step while it ran, their intervals (ms), long tasks while it ran, the Stop click to the last
    frame that drew a step after it (0 when none did)."""
    frames = new_steps(found["drawn"], shown_before)
    during = [at for at, _ in frames if t_run <= at <= t_stop]
    after = [at for at, _ in frames if at > t_stop]
    tasks = [d for start, d in found["tasks"] if t_run <= start <= t_stop]
    return {"frames": len(during), "intervals": [b - a for a, b in zip(during, during[1:])],
            "tasks": tasks, "stop_ms": (after[-1] - t_stop) if after else 0.0,
            "frames_after_stop": len(after), "steps_at_stop": found["shownAtStop"],
            "taken_after": found["taken"], "seconds": (t_stop - t_run) / 1e3}


class Network:
    """Bytes received (CDP Network.dataReceived) and requests sent by a page."""

    def __init__(self, page) -> None:
        self.bytes, self.requests = 0, []
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("Network.enable")
        self.cdp.on("Network.dataReceived", self._received)
        page.on("request", lambda r: self.requests.append((r.method, r.url)))

    def _received(self, event: dict) -> None:
        self.bytes += event.get("dataLength", 0)

    def mark(self) -> tuple[int, int]:
        return self.bytes, len(self.requests)

    def since(self, mark: tuple[int, int]) -> tuple[int, int]:
        """(bytes received, queue/join and server-function POSTs) since `mark`."""
        posts = [u for m, u in self.requests[mark[1]:] if m == "POST" and
                 ("/queue/join" in u or "/component_server" in u)]
        return self.bytes - mark[0], len(posts)


def _note(dataset: str, what: str, busy: list[float], timeouts: int, verb: str) -> str:
    parts = [f"dataset {dataset}; {what}"]
    if busy:
        parts.append(f"main-thread long tasks (> 50 ms) took {percentile(busy, 50):.0f} ms "
                     f"of it at p50")
    if timeouts:
        parts.append(f"{timeouts} {verb} painted nothing within {WAIT_MS // 1000} s")
    return "; ".join(parts)


def _js_profile(page, run: Callable[[], object], actions: int) -> str:
    """run() under Chrome's sampling CPU profiler (CDP), summarised per action."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Profiler.enable")
    cdp.send("Profiler.setSamplingInterval", {"interval": 500})            # microseconds
    cdp.send("Profiler.start")
    try:
        run()
    finally:
        profile = cdp.send("Profiler.stop")["profile"]
        cdp.detach()
    return summarize_cpuprofile(profile, actions)


def _skipped(reason: str) -> list[Result]:
    return [Result.skipped(k, SECTION, label, unit, reason, target)
            for k, (label, unit, target) in LABELS.items()]


def _row(key: str, values: list[float], note: str, seconds: bool = False,
         target_on: str = "p50") -> Result:
    label, unit, target = LABELS[key]
    if seconds:
        return Result.from_seconds(key, SECTION, label, values, unit, target, note, target_on)
    return Result.from_values(key, SECTION, label, values, unit, target, note, target_on)


def _total(key: str, value: float, runs: int, note: str) -> Result:
    """A row of one figure over `runs` runs together (a count, a maximum)."""
    label, unit, target = LABELS[key]
    return Result(key, SECTION, label, unit, float(value), None, runs, target, note)


def open_vdm_tab(page, url: str, settle: Callable[[], object] = lambda: None) -> str:
    """Load the page with the reverse run computed on the server (`?compute=server`: these rows
    measure the server's path; the page's own run is `python -m bench.page_run`), open the VDM
    tab, wait for both views to hold their data; the dataset."""
    page.goto(url + "?compute=server")
    page.get_by_role("tab", name="Diffusion (VDM)").click()
    page.wait_for_function(READY_JS, timeout=WAIT_MS)
    settle()                                    # let the page's load events finish
    return page.locator("#dataset input:checked").input_value()


def set_run(page, sampler: str, steps: int) -> None:
    """Settings of the reverse run as a user sets them, then a fresh run with them."""
    page.locator("#vdm-run-view").scroll_into_view_if_needed()
    page.locator("#vdm-sampler label", has_text=sampler).click()
    box = page.locator("#vdm-steps input[type=number]")
    box.fill(str(steps))
    box.press("Enter")
    box.blur()
    fresh = (f"() => {{ const h = window.latentExplorer.run.state.history; return h && h.n === "
             f"{steps} && h.sampler === '{sampler}' && h.taken === 0 && "
             "!window.latentExplorer.run.state.running; }")
    try:
        page.wait_for_function(fresh, timeout=15_000)
    except Exception:                            # the settings took: a Reset makes the run
        page.click("#vdm-run-view [data-act=reset]")
        page.wait_for_function(fresh, timeout=WAIT_MS)


def measure_scrub(page, n: int, dataset: str, results: list, profiles: dict,
                  profile: Collection[str]) -> None:
    T = int(page.locator("#vdm-scrub input.le-t").get_attribute("max") or 1000)
    current = page.evaluate("window.latentExplorer.scrub.t")
    ts = [v for v in range(T // 50, T, max(T // (n + 3), 1)) if v != current][: n + 2]
    seconds, busy, timeouts = [], [], 0
    page.dispatch_event("#vdm-scrub input.le-t", "pointerdown")
    for i, t in enumerate(ts):
        got = page.evaluate(SCRUB_JS, [t, "drag"])
        if got is None:
            timeouts += 1
        elif i >= 2:
            seconds.append(got[0] / 1e3)
            busy.append(got[1])
    page.dispatch_event("#vdm-scrub input.le-t", "pointerup")
    results.append(_row("browser.scrub", seconds, _note(
        dataset, f"one drag, t moves by ~{ts[1] - ts[0]}; x_t mixed and painted by the page "
        "(lib/mix.js) with no request; to just after the next animation frame", busy, timeouts,
        "moves"), seconds=True))
    clicks = [v + 7 for v in ts[: max(n // 2, 5) + 2]]
    seconds, timeouts = [], 0
    for i, t in enumerate(clicks):
        page.wait_for_timeout(200)
        got = page.evaluate(SCRUB_JS, [t, "track"])
        if got is None:
            timeouts += 1
        elif i >= 2:
            seconds.append(got[0] / 1e3)
    results.append(_row("browser.scrub_click", seconds, _note(
        dataset, "pointerdown, a new t, input, change, pointerup; no request either", [],
        timeouts, "clicks"), seconds=True))
    missed = any(r.verdict == "missed" for r in results[-2:])
    if "scrub" in profile or ("missed" in profile and missed):
        again = [v + 1 for v in ts[:10]]
        profiles["browser:scrub (Chrome CPU profile of the page)"] = _js_profile(
            page, lambda: [page.evaluate(SCRUB_JS, [t, "track"]) for t in again], len(again))


def measure_steps(page, net: Network, n: int, dataset: str, results: list, profiles: dict,
                  profile: Collection[str]) -> None:
    set_run(page, "ddim", 1000)
    page.wait_for_timeout(500)
    seconds, busy, requests, received, timeouts = [], [], [], [], 0
    for i in range(n + 2):
        mark = net.mark()
        got = page.evaluate(STEP_JS, [WAIT_MS])
        page.wait_for_timeout(SETTLE_S * 1e3)          # (Playwright delivers events then)
        got_bytes, posts = net.since(mark)
        if got is None:
            timeouts += 1
        elif i >= 2:
            seconds.append(got[0] / 1e3)
            busy.append(got[1])
            requests.append(posts)
            received.append(got_bytes / KB)
    note = _note(dataset, "the run view's `step` server function (see HTTP); to the animation "
                 "frame that drew the step", busy, timeouts, "clicks")
    results.append(_row("browser.step", seconds, note, seconds=True))
    results.append(_row("browser.step_requests", requests, (
        f"dataset {dataset}; POSTs to /queue/join (Gradio events) and /component_server (the "
        f"view's own functions) from the click until {SETTLE_S * 1e3:.0f} ms after the step "
        "was drawn")))
    results.append(_row("browser.step_bytes", received, (
        f"dataset {dataset}; CDP Network.dataReceived (decoded bytes) over the same span")))
    if "step" in profile or ("missed" in profile and results[-3].verdict == "missed"):
        profiles["browser:step (Chrome CPU profile of the page)"] = _js_profile(
            page, lambda: [page.evaluate(STEP_JS, [WAIT_MS]) for _ in range(10)], 10)


def measure_runs(page, net: Network, runs: int, run_s: float, dataset: str,
                 results: list, log: Callable[[str], None]) -> None:
    figures, per_frame, per_step = [], [], []
    for i in range(runs):
        log(f"browser: a {RUN_STEPS}-step DDPM run, drawn for {run_s:g} s, then Stop "
            f"({i + 1} of {runs})")
        set_run(page, "ddpm", RUN_STEPS)
        page.wait_for_timeout(1000)
        shown_before = page.evaluate("window.latentExplorer.run.state.shown")
        mark = net.mark()
        t_run = page.evaluate(RUN_JS)
        page.wait_for_timeout(run_s * 1e3)
        received, _ = net.since(mark)
        t_stop = page.evaluate(STOP_JS)
        page.wait_for_timeout(AFTER_STOP_S * 1e3)
        found = run_figures(page.evaluate(RUN_RESULT_JS), t_run, t_stop, shown_before)
        figures.append(found)
        per_frame.append(received / max(found["frames"], 1) / KB)
        per_step.append(received / max(found["steps_at_stop"], 1) / KB)
    intervals = [v for f in figures for v in f["intervals"]]
    tasks = [v for f in figures for v in f["tasks"]]
    frames = sum(f["frames"] for f in figures)
    seconds = sum(f["seconds"] for f in figures)
    steps = sum(f["steps_at_stop"] for f in figures)
    where = (f"dataset {dataset}; Run clicked, {runs} run(s) of {run_s:g} s each before Stop: "
             f"{steps} steps drawn in {frames} frames ({frames / max(seconds, 1e-9):.0f} "
             "frames/s)")
    # over every run together: the target is that no task is long at all
    results.append(_total("browser.run_longtasks", len(tasks), len(figures), (
        f"{where}; every run's PerformanceObserver 'longtask' entries counted together "
        f"({[len(f['tasks']) for f in figures]} a run), {sum(tasks):.0f} ms in all")))
    results.append(_total("browser.run_longest", max(tasks, default=0.0), len(figures), (
        f"{where}; the longest 'longtask' entry of all runs (0: none)")))
    results.append(_row("browser.run_interval", intervals, (
        f"{where}; from window.latentExplorer.run.drawn, frames whose step shown changed"),
        target_on="p95"))
    results.append(_row("browser.frame_bytes", per_frame, (
        f"{where}; CDP Network.dataReceived (decoded bytes) from the Run click to the Stop "
        "click, divided by the frames that drew a new step")))
    results.append(_row("browser.run_step_bytes", per_step, (
        f"{where}; the same bytes divided by the steps drawn")))
    stops = [f["stop_ms"] for f in figures]
    results.append(_row("browser.stop", stops, (
        f"dataset {dataset}; the last frame that drew another step after the click (0: none); "
        f"frames after the click: {[f['frames_after_stop'] for f in figures]}; step shown at "
        f"the click {[f['steps_at_stop'] for f in figures]}, steps the run holds after the "
        f"server's Stop {[f['taken_after'] for f in figures]} (the server takes the run back "
        "to the step shown)")))


def measure_browser(url: str, quick: bool = False, settle: Callable[[], object] = lambda: None,
                    log: Callable[[str], None] = lambda s: None,
                    profile: Collection[str] = ()) -> tuple[list[Result], dict[str, str]]:
    """The scrub, a Step and a long run with its Stop; with `profile` holding "scrub" / "step"
    (or "missed": the rows that missed), a JavaScript CPU profile of 10 more of those inputs
    (taken after the timed ones, so it does not slow them). Returns (rows, profiles)."""
    if not CHROMIUM.exists():
        return _skipped(f"{CHROMIUM} is missing (apt-get install chromium)"), {}
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return _skipped("playwright is not installed (pip install playwright; never "
                        "`playwright install`)"), {}
    n = 10 if quick else 30
    results, profiles = [], {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 900})
            page.set_default_timeout(WAIT_MS)
            net = Network(page)
            log("browser: loading the page")
            dataset = open_vdm_tab(page, url, settle)
            log(f"browser: the scrub's t, a drag of {n} moves, then {n // 2} clicks on the track")
            page.locator("#vdm-scrub").scroll_into_view_if_needed()
            measure_scrub(page, n, dataset, results, profiles, profile)
            log(f"browser: DDIM with 1000 steps, {n} Steps")
            measure_steps(page, net, n, dataset, results, profiles, profile)
            measure_runs(page, net, 1 if quick else 2, QUICK_RUN_S if quick else RUN_S, dataset,
                         results, log)
        finally:
            browser.close()
    return results, profiles
