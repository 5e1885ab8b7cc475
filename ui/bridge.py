"""The page script: plotly clicks and hovers back to Python, and a little CSS.

gr.Plot has no click event (GRADIO.md). For each plot `#ID` listed in PLOTS, this script puts the
`customdata` (a gallery index) of a clicked point into the hidden textbox `#ID-click` as JSON
{"index": i, "time": ms} (the time makes a second click on the same point a change too) and of a
hovered point into `#ID-hover` as "i", each with the native value setter and an `input` event, so
Python hears them through `.change`. Plots are re-drawn with every update, so the script checks
every half second for plots whose event emitter is new and binds them again.

It paints the VDM tab's forward scrub as the t slider moves (scrub_paint.py). It binds the
keyboard shortcuts of talk mode (S step, R run, X stop, left / right arrows move the VDM tab's t
slider by 10, P the presenter look; never while typing in a field) and holds the presenter look
(a class on <body>: large type, black on white).

It runs from `demo.load(js=...)` rather than `launch(head=...)`, so it is there however the app
is launched (python app.py, tests, Spaces).
"""

from __future__ import annotations

import json

from .scrub_paint import JS as SCRUB_JS

PLOTS = ("vae-map", "vae2d-map", "hvae-map", "vdm-dissolve")

CSS = """
.pixelated img, .pixelated canvas, .js-plotly-plot image { image-rendering: pixelated; }
.caption p { font-size: 1.05rem; }
body.presenter, body.presenter .gradio-container {
  --body-text-color: #000; --body-text-color-subdued: #111; --block-label-text-color: #000;
  --block-title-text-color: #000; --block-info-text-color: #111; --link-text-color: #0033cc;
  --background-fill-primary: #fff; --background-fill-secondary: #fff;
  --block-background-fill: #fff; --border-color-primary: #000; --block-border-color: #000;
  --color-accent: #c00000; --slider-color: #c00000; --input-border-color: #000;
  --button-primary-background-fill: #000; --button-primary-text-color: #fff;
  --text-xs: 15px; --text-sm: 17px; --text-md: 20px; --text-lg: 24px; --text-xl: 30px;
  --text-xxl: 36px; --prose-text-size: 20px; --block-label-text-size: 18px;
  --block-title-text-size: 20px; --input-text-size: 20px;
  background: #fff; color: #000;
}
body.presenter .caption p { font-size: 1.55rem; line-height: 1.5; }
body.presenter h1 { font-size: 2.8rem; }
body.presenter h2 { font-size: 2.1rem; border-bottom: 3px solid #000; }
body.presenter .katex { font-size: 1.25em; }
"""

# The presenter checkbox's page-side handler: the look is a class on <body>.
PRESENTER_JS = "(on) => { document.body.classList.toggle('presenter', !!on); return []; }"

_JS = """
() => {
  if (window.__latentExplorer) return;
  window.__latentExplorer = true;
  const style = document.createElement("style");
  style.textContent = __CSS__;
  document.head.appendChild(style);
  const send = (id, value) => {
    const box = document.querySelector(`#${id} textarea, #${id} input`);
    if (!box) return;
    const proto = box.tagName === "TEXTAREA" ? HTMLTextAreaElement.prototype
                                             : HTMLInputElement.prototype;
    Object.getOwnPropertyDescriptor(proto, "value").set.call(box, value);
    box.dispatchEvent(new Event("input", {bubbles: true}));
  };
  const indexOf = (ev) => {
    const p = ev && ev.points && ev.points.find(q => typeof q.customdata === "number");
    return p ? p.customdata : null;
  };
  const bind = () => {
    for (const id of __PLOTS__) {
      const gd = document.querySelector(`#${id} .js-plotly-plot`);
      if (!gd || !gd._ev || gd.__latentExplorerEv === gd._ev) continue;
      gd.__latentExplorerEv = gd._ev;
      gd.on("plotly_click", ev => {
        const i = indexOf(ev);
        if (i !== null) send(`${id}-click`, JSON.stringify({index: i, time: Date.now()}));
      });
      gd.on("plotly_hover", ev => {
        const i = indexOf(ev);
        if (i !== null) send(`${id}-hover`, String(i));
      });
    }
  };
  // the VDM tab's schedule curves: their cursor follows the t slider in the page (a Plotly
  // relayout of the dashed lines), with no round trip to the server
  const moveCursor = () => {
    const range = document.querySelector("#vdm-t input[type=range]");
    const gd = document.querySelector("#vdm-curves .js-plotly-plot");
    if (!range || !gd || !gd.layout || !window.Plotly) return;
    const t = +range.value;
    if (gd.__cursorAt === t) return;
    gd.__cursorAt = t;
    const shapes = (gd.layout.shapes || []).map(s => Object.assign({}, s, {x0: t, x1: t}));
    window.Plotly.relayout(gd, {shapes, "title.text": `noise schedules, cursor at t = ${t}`});
  };
__SCRUB__
  // input in the VDM tab's sliders. A number typed in a slider's box reaches its range input
  // only after this (capturing) listener has run, and the server only on release, which Gradio
  // fires when the box loses focus:
  // - t: read a frame later, or the old t would be painted until the reply;
  // - steps, eta: fire the release once typing rests (a value in range), or a click on Run
  //   would send the old run while the new one is set up.
  let typedTimer = null;
  document.addEventListener("input", (ev) => {
    const el = ev.target;
    if (!el || !el.closest) return;
    const typed = el.type === "number";
    if (el.closest("#vdm-t")) {
      const moved = () => { scrubMoved(); afterPaint(moveCursor); };
      if (typed) requestAnimationFrame(moved);
      else moved();
    } else if (typed && el.closest("#vdm-steps, #vdm-eta")) {
      clearTimeout(typedTimer);
      typedTimer = setTimeout(() => {
        const v = +el.value;
        if (el.value !== "" && v >= +el.min && v <= +el.max) release(el);
      }, 300);
    }
  }, true);

  bind();
  watch();
  setInterval(() => { bind(); watch(); scrubCheck(); moveCursor(); }, 500);

  // keyboard: S step, R run, X stop, left/right move t by 10 (VDM tab), P presenter mode;
  // never while typing in a field, and only on controls that are on screen
  const shown = (selector) => {
    const el = document.querySelector(selector);
    return el && el.offsetParent !== null ? el : null;
  };
  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    const target = ev.target;
    if (target && (["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName) ||
                   target.isContentEditable)) return;
    const buttons = {s: "#vdm-step", r: "#vdm-run", x: "#vdm-stop", p: "#presenter input"};
    const key = ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
    if (key in buttons) {
      const el = key === "p" ? document.querySelector(buttons.p) : shown(buttons[key]);
      if (el) { el.click(); ev.preventDefault(); }
    } else if (key === "ArrowLeft" || key === "ArrowRight") {
      const range = shown("#vdm-t input[type=range]");
      if (!range) return;
      const step = key === "ArrowRight" ? 10 : -10;
      const value = Math.min(+range.max, Math.max(+range.min, +range.value + step));
      Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value")
        .set.call(range, String(value));
      range.dispatchEvent(new Event("input", {bubbles: true}));
      range.dispatchEvent(new Event("change", {bubbles: true}));
      ev.preventDefault();
    }
  });
}
"""

JS = (_JS.replace("__CSS__", json.dumps(CSS)).replace("__PLOTS__", json.dumps(list(PLOTS)))
      .replace("__SCRUB__", SCRUB_JS))


def parse_click(payload: str | None) -> int | None:
    """The gallery index in a click payload ('{"index": 12, ...}' or '12'), or None."""
    if not payload:
        return None
    try:
        value = json.loads(payload)
    except json.JSONDecodeError:
        raise ValueError(f"a map click must be JSON like {{\"index\": 3}}, "
                         f"got {payload!r}") from None
    index = value.get("index") if isinstance(value, dict) else value
    if not isinstance(index, int) or isinstance(index, bool):
        raise ValueError(f"a map click needs an integer index, got {payload!r}")
    return index
