"""Input-to-paint latency in a real browser: headless Debian Chromium driven by Playwright
against the running app (Playwright is imported only here, and only when this part runs).

Each measurement runs inside the page: performance.now() right before the input event is
dispatched, a MutationObserver that notices the target image's src change, the new image
loaded (complete, naturalWidth > 0), then one animation frame for the paint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Collection

from explorer.bench.profiling import summarize_cpuprofile
from explorer.bench.stats import Result, percentile

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 60_000
SECTION = "browser"

# [image selector, action, target, value, timeout ms] -> [ms from the action to the new image
# painted, ms of main-thread long tasks (> 50 ms: script, layout, plotly renders) in between],
# or null on timeout. action "slider": set a range input's value and fire input + change (what
# a drag or an arrow key does); action "click": click the element.
MEASURE_JS = """
async ([imgSel, action, target, value, timeout]) => {
  const watched = document.querySelector(imgSel.split(' ')[0]);
  const old = document.querySelector(imgSel);
  const oldSrc = old ? old.src : null;
  const tasks = [];
  const longtasks = new PerformanceObserver((list) => tasks.push(...list.getEntries()));
  longtasks.observe({type: 'longtask'});
  const painted = new Promise((resolve) => {
    let done = false;
    const finish = (value) => {
      if (!done) { done = true; observer.disconnect(); resolve(value); }
    };
    const check = () => {
      const img = document.querySelector(imgSel);
      if (done || !img || !img.src || img.src === oldSrc) return;
      if (img.complete && img.naturalWidth > 0) {
        requestAnimationFrame(() => {           // the frame that paints it
          const ch = new MessageChannel();       // ... and just after that frame
          ch.port1.onmessage = () => finish(performance.now());
          ch.port2.postMessage(null);
        });
      } else {
        img.addEventListener('load', check, {once: true});
      }
    };
    const observer = new MutationObserver(check);
    observer.observe(watched, {subtree: true, childList: true, attributes: true,
                               attributeFilter: ['src']});
    setTimeout(() => finish(null), timeout);
  });
  const element = document.querySelector(target);
  const t0 = performance.now();
  if (action === 'slider') {
    const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
    setter.call(element, String(value));
    element.dispatchEvent(new Event('input', {bubbles: true}));
    element.dispatchEvent(new Event('change', {bubbles: true}));
  } else {
    element.click();
  }
  const t1 = await painted;
  tasks.push(...longtasks.takeRecords());
  longtasks.disconnect();
  const busy = tasks.filter(e => e.startTime >= t0 && e.startTime < t1)
                    .reduce((sum, e) => sum + e.duration, 0);
  return t1 === null ? null : [t1 - t0, busy];
}
"""


def _timed(page, img: str, action: str, target: str, n: int, warmup: int,
           values: Callable[[int], object] = lambda i: None
           ) -> tuple[list[float], list[float], int]:
    """n timed actions after `warmup` untimed ones: (seconds to paint, seconds of long tasks
    in between, timeouts)."""
    out, busy, timeouts = [], [], 0
    for i in range(warmup + n):
        got = page.evaluate(MEASURE_JS, [img, action, target, values(i), WAIT_MS])
        if got is None:
            timeouts += 1
        elif i >= warmup:
            out.append(got[0] / 1e3)
            busy.append(got[1] / 1e3)
    return out, busy, timeouts


def _note(dataset: str, what: str, busy: list[float], timeouts: int, verb: str) -> str:
    parts = [f"dataset {dataset}; {what}"]
    if busy:
        parts.append(f"main-thread long tasks (> 50 ms) took {percentile(busy, 50) * 1e3:.0f} ms "
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


def measure_browser(url: str, quick: bool = False, settle: Callable[[], object] = lambda: None,
                    log: Callable[[str], None] = lambda s: None,
                    profile: Collection[str] = ()) -> tuple[list[Result], dict[str, str]]:
    """Slider-to-paint of the forward scrub and click-to-paint of one reverse step; with
    `profile` holding "scrub" / "step" (or "missed": the rows that missed), a JavaScript CPU
    profile of 10 more of those inputs (taken after the timed ones, so it does not slow them).
    Returns (rows, profiles)."""
    labels = {"browser.scrub": ("t slider moved to the new x_t painted", 100.0),
              "browser.step": ("Step clicked to the new frame painted (DDIM-1000 run)", None)}
    if not CHROMIUM.exists():
        return [Result.skipped(k, SECTION, l, "ms", f"{CHROMIUM} is missing "
                               "(apt-get install chromium)", t)
                for k, (l, t) in labels.items()], {}
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        return [Result.skipped(k, SECTION, l, "ms", "playwright is not installed (pip install "
                               "playwright; never `playwright install`)", t)
                for k, (l, t) in labels.items()], {}
    n = 10 if quick else 30
    results, profiles = [], {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            page.set_default_timeout(WAIT_MS)
            expect.set_options(timeout=WAIT_MS)
            log("browser: loading the page")
            page.goto(url)
            page.get_by_role("tab", name="Diffusion (VDM)").click()
            dataset = page.locator("#dataset input:checked").input_value()
            expect(page.locator("#vdm-xt img")).to_be_visible()
            expect(page.locator("#vdm-step-text")).to_contain_text("steps: 0 taken")
            settle()                                    # let the page's load events finish

            log(f"browser: t slider x{n}")
            maximum = int(page.locator("#vdm-t input[type=range]").get_attribute("max") or 1000)
            current = int(page.locator("#vdm-t input[type=range]").input_value())
            ts = [v for v in range(maximum // 50, maximum, max(maximum // (n + 3), 1))
                  if v != current][: n + 2]
            seconds, busy, timeouts = _timed(page, "#vdm-xt img", "slider",
                                             "#vdm-t input[type=range]", len(ts) - 2, 2,
                                             lambda i: ts[i])
            note = _note(dataset, f"t moves by ~{ts[1] - ts[0]}; server: /vdm_scrub and "
                         "/vdm_curves (see HTTP)", busy, timeouts, "moves")
            results.append(Result.from_seconds("browser.scrub", SECTION, labels["browser.scrub"][0],
                                               seconds, "ms", 100.0, note))
            if "scrub" in profile or ("missed" in profile and results[-1].verdict == "missed"):
                log("profile: JavaScript CPU profile of 10 slider moves")
                again = [v + 1 for v in ts[:10]]
                profiles["browser:scrub (Chrome CPU profile of the page)"] = _js_profile(
                    page, lambda: _timed(page, "#vdm-xt img", "slider", "#vdm-t input[type=range]",
                                         len(again), 0, lambda i: again[i]), len(again))

            log("browser: DDIM with 1000 steps, then Step")
            page.locator("#vdm-steps input[type=number]").fill("1000")
            page.locator("#vdm-steps input[type=number]").press("Enter")
            page.locator("#vdm-steps input[type=range]").dispatch_event("pointerup")
            expect(page.locator("#vdm-step-text")).to_contain_text("1000 steps: 0 taken")
            seconds, busy, timeouts = _timed(page, "#vdm-panel img", "click", "#vdm-step", n, 2)
            note = _note(dataset, "server: /vdm_step (see HTTP)", busy, timeouts, "clicks")
            results.append(Result.from_seconds("browser.step", SECTION, labels["browser.step"][0],
                                               seconds, "ms", None, note))
            if "step" in profile or ("missed" in profile and results[-1].verdict == "missed"):
                log("profile: JavaScript CPU profile of 10 steps")
                profiles["browser:step (Chrome CPU profile of the page)"] = _js_profile(
                    page, lambda: _timed(page, "#vdm-panel img", "click", "#vdm-step", 10, 0), 10)
        finally:
            browser.close()
    return results, profiles
