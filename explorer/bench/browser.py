"""Input-to-paint latency in a real browser: headless Debian Chromium driven by Playwright
against the running app (Playwright is imported only here, and only when this part runs).

Each measurement runs inside the page: performance.now() right before the input event is
dispatched, a MutationObserver that notices the target image's src change, the new image
loaded (complete, naturalWidth > 0), then one animation frame for the paint.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable, Collection

from explorer.bench.profiling import summarize_cpuprofile
from explorer.bench.stats import Result, percentile

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 60_000
SECTION = "browser"

# [image selector, action, target, value, timeout ms, reply pattern or null] -> [ms from the
# action to the new image painted, ms of main-thread long tasks (> 50 ms: script, layout, plotly
# renders) in between, ms to the server's reply painted (an image whose src matches the reply
# pattern; null without one)], or null on timeout. Actions on a range input: "slider" sets its
# value and fires input + change (an arrow key), "drag" fires input only (one move of a drag:
# the pointer is down), "track" wraps that in pointerdown / pointerup (a click on the track);
# action "click": click the element.
MEASURE_JS = """
async ([imgSel, action, target, value, timeout, replyPattern]) => {
  const watched = document.querySelector(imgSel.split(' ')[0]);
  const old = document.querySelector(imgSel);
  const oldSrc = old ? old.src : null;
  const reply = replyPattern ? new RegExp(replyPattern) : null;
  const tasks = [];
  const longtasks = new PerformanceObserver((list) => tasks.push(...list.getEntries()));
  longtasks.observe({type: 'longtask'});
  const afterFrame = (resolve) => requestAnimationFrame(() => {   // the frame that paints it
    const ch = new MessageChannel();                              // ... and just after it
    ch.port1.onmessage = () => resolve(performance.now());
    ch.port2.postMessage(null);
  });
  // resolves with the time just after the first frame showing an image whose src passes `ok`
  const paintedWhen = (ok) => new Promise((resolve) => {
    let done = false;
    const finish = (value) => {
      if (!done) { done = true; observer.disconnect(); resolve(value); }
    };
    const check = () => {
      const img = document.querySelector(imgSel);
      if (done || !img || !img.src || !ok(img.src)) return;
      if (img.complete && img.naturalWidth > 0) afterFrame(finish);
      else img.addEventListener('load', check, {once: true});
    };
    const observer = new MutationObserver(check);
    observer.observe(watched, {subtree: true, childList: true, attributes: true,
                               attributeFilter: ['src']});
    setTimeout(() => finish(null), timeout);
  });
  const painted = paintedWhen((src) => src !== oldSrc);
  const replied = reply ? paintedWhen((src) => reply.test(decodeURIComponent(src)))
                        : Promise.resolve(null);
  const element = document.querySelector(target);
  const t0 = performance.now();
  const pointer = (type) => element.dispatchEvent(new PointerEvent(type, {bubbles: true}));
  if (action === 'slider' || action === 'drag' || action === 'track') {
    if (action === 'track') pointer('pointerdown');
    const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
    setter.call(element, String(value));
    element.dispatchEvent(new Event('input', {bubbles: true}));
    if (action !== 'drag') element.dispatchEvent(new Event('change', {bubbles: true}));
    if (action === 'track') pointer('pointerup');
  } else {
    element.click();
  }
  const t1 = await painted;
  const t2 = await replied;
  tasks.push(...longtasks.takeRecords());
  longtasks.disconnect();
  const busy = tasks.filter(e => e.startTime >= t0 && e.startTime < t1)
                    .reduce((sum, e) => sum + e.duration, 0);
  if (t1 === null || (reply && t2 === null)) return null;
  return [t1 - t0, busy, t2 === null ? null : t2 - t0];
}
"""


def _timed(page, img: str, action: str, target: str, n: int, warmup: int,
           values: Callable[[int], object] = lambda i: None,
           reply: Callable[[object], str] | None = None,
           ) -> tuple[list[float], list[float], int, list[float]]:
    """n timed actions after `warmup` untimed ones: (seconds to paint, seconds of long tasks
    in between, timeouts, seconds to the server's reply painted: its image's src matches
    reply(value); empty without `reply`)."""
    out, busy, timeouts, replies = [], [], 0, []
    for i in range(warmup + n):
        pattern = reply(values(i)) if reply else None
        got = page.evaluate(MEASURE_JS, [img, action, target, values(i), WAIT_MS, pattern])
        if got is None:
            timeouts += 1
        elif i >= warmup:
            out.append(got[0] / 1e3)
            busy.append(got[1] / 1e3)
            if got[2] is not None:
                replies.append(got[2] / 1e3)
    return out, busy, timeouts, replies


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
    labels = {"browser.scrub": ("t slider dragged: each move to the new x_t painted", 100.0),
              "browser.scrub_click": ("t slider clicked: the new x_t painted", 100.0),
              "browser.scrub_reply": ("t slider clicked: the server's reply painted", None),
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

            log(f"browser: t slider, a drag of {n} moves, then {n // 2} clicks on the track")
            maximum = int(page.locator("#vdm-t input[type=range]").get_attribute("max") or 1000)
            current = int(page.locator("#vdm-t input[type=range]").input_value())
            ts = [v for v in range(maximum // 50, maximum, max(maximum // (n + 3), 1))
                  if v != current][: n + 2]
            slider = "#vdm-t input[type=range]"
            page.dispatch_event(slider, "pointerdown")
            seconds, busy, timeouts, _ = _timed(page, "#vdm-xt img", "drag", slider,
                                                len(ts) - 2, 2, lambda i: ts[i])
            page.dispatch_event(slider, "pointerup")            # let go: the server's reply
            expect(page.locator("#vdm-xt img")).to_have_attribute(
                "src", re.compile(f"x_t-{ts[-1]:04d}-"))
            results.append(Result.from_seconds(
                "browser.scrub", SECTION, labels["browser.scrub"][0], seconds, "ms", 100.0,
                _note(dataset, f"one drag, t moves by ~{ts[1] - ts[0]}; painted by the page "
                      "itself from the session's x_0 and eps (ui/scrub_paint.py), no request "
                      "until the pointer lets go", busy, timeouts, "moves")))
            clicks = [v + 7 for v in ts[: max(n // 2, 5) + 2]]
            paints, reply_s, reply_timeouts = [], [], 0
            for i, t in enumerate(clicks):
                page.wait_for_timeout(500)                      # clicks half a second apart
                got = page.evaluate(MEASURE_JS, ["#vdm-xt img", "track", slider, t, WAIT_MS,
                                                 f"x_t-{t:04d}-[0-9a-f]+[.]png"])
                if got is None:
                    reply_timeouts += 1
                elif i >= 2:
                    paints.append(got[0] / 1e3)
                    reply_s.append(got[2] / 1e3)
            results.append(Result.from_seconds(
                "browser.scrub_click", SECTION, labels["browser.scrub_click"][0], paints, "ms",
                100.0, _note(dataset, "pointerdown, a new t, pointerup; clicks 0.5 s apart",
                             [], reply_timeouts, "clicks")))
            results.append(Result.from_seconds(
                "browser.scrub_reply", SECTION, labels["browser.scrub_reply"][0], reply_s, "ms",
                None, f"dataset {dataset}; the same clicks: the same pixels, now the server's "
                "(/vdm_scrub on release, see HTTP): what the download button saves"))
            missed = any(r.verdict == "missed" for r in results[-3:])
            if "scrub" in profile or ("missed" in profile and missed):
                log("profile: JavaScript CPU profile of 10 clicks on the slider's track")
                again = [v + 1 for v in ts[:10]]
                profiles["browser:scrub (Chrome CPU profile of the page)"] = _js_profile(
                    page, lambda: _timed(page, "#vdm-xt img", "track", slider, len(again), 0,
                                         lambda i: again[i]), len(again))

            log("browser: DDIM with 1000 steps, then Step")
            page.locator("#vdm-sampler label", has_text="ddim").click()
            expect(page.locator("#vdm-step-text")).to_contain_text("DDIM")
            page.locator("#vdm-steps input[type=number]").fill("1000")
            page.locator("#vdm-steps input[type=number]").press("Enter")
            page.locator("#vdm-steps input[type=range]").dispatch_event("pointerup")
            expect(page.locator("#vdm-step-text")).to_contain_text("1000 steps: 0 taken")
            seconds, busy, timeouts, _ = _timed(page, "#vdm-panel img", "click", "#vdm-step",
                                                n, 2)
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
