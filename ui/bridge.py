"""The page script: plotly clicks and hovers back to Python, and a little CSS.

gr.Plot has no click event (GRADIO.md). For each plot `#ID` listed in PLOTS, this script puts the
`customdata` (a gallery index) of a clicked point into the hidden textbox `#ID-click` as JSON
{"index": i, "time": ms} (the time makes a second click on the same point a change too) and of a
hovered point into `#ID-hover` as "i", each with the native value setter and an `input` event, so
Python hears them through `.change`. Plots are re-drawn with every update, so the script checks
every half second for plots whose event emitter is new and binds them again.

It runs from `demo.load(js=...)` rather than `launch(head=...)`, so it is there however the app
is launched (python app.py, tests, Spaces).
"""

from __future__ import annotations

import json

PLOTS = ("vae-map", "vae2d-map", "hvae-map", "vdm-dissolve")

CSS = """
.pixelated img, .pixelated canvas, .js-plotly-plot image { image-rendering: pixelated; }
.caption p { font-size: 1.05rem; }
"""

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
  bind();
  setInterval(bind, 500);
}
"""

JS = _JS.replace("__CSS__", json.dumps(CSS)).replace("__PLOTS__", json.dumps(list(PLOTS)))


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
