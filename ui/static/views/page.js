// The page view (app.py, top right): the page's style sheet, presenter mode, the keys of talk
// mode, clicks and hovers on the maps' points, and the brush of the drawing pad.
//
// value: {presenter: bool} (a scene link may set it). Keys map to actions that views offer
// (MANIFEST.keys -> lib/registry.js): never while typing in a field, only for views on screen.
// A click on a map point triggers 'pick' {map, index}, a hover 'hover' {map, index}: the
// server puts that gallery image in slot A or B, or shows it beside the map.

import {act, offer} from "../lib/registry.js";

let mounted = false;

export function mount({element, trigger, props, watch, manifest}) {
  if (mounted) return;                          // one page view per page
  mounted = true;
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = new URL("../app.css", import.meta.url).href;
  document.head.appendChild(link);

  // presenter mode: large type, black on white, for the back of a lecture hall
  const label = document.createElement("label");
  label.className = "le-presenter";
  const box = document.createElement("input");
  box.type = "checkbox";
  box.id = "presenter-mode";
  label.append(box, " presenter mode (P)");
  element.appendChild(label);
  const setPresenter = (on) => {
    box.checked = on;
    document.body.classList.toggle("presenter", on);
    window.dispatchEvent(new Event("le:presenter"));       // views redraw their text
  };
  box.addEventListener("change", () => setPresenter(box.checked));
  watch("value", () => setPresenter(!!(props.value && props.value.presenter)));
  setPresenter(!!(props.value && props.value.presenter));
  offer("presenter", null, () => { box.click(); });

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target && (["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName) ||
                   target.isContentEditable)) return;
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    const action = manifest.keys[key];
    if (action && act(action)) event.preventDefault();
  });

  bindMaps(manifest.maps, trigger);
  brushFirst(manifest.sketches);
}

// ---------------------------------------------------------------- maps

function indexOf(event) {
  const point = event && event.points && event.points.find((p) => typeof p.customdata === "number");
  return point ? point.customdata : null;
}

/** Bind plotly_click / plotly_hover of every map; a map redrawn by Gradio gets a new event
 * emitter, so the bindings are checked again whenever the page's DOM settles. */
function bindMaps(ids, trigger) {
  const bound = new WeakSet();
  let lastHover = null;
  const bind = () => {
    for (const id of ids) {
      const plot = document.querySelector(`#${id} .js-plotly-plot`);
      if (!plot || !plot._ev || bound.has(plot._ev)) continue;
      bound.add(plot._ev);
      plot.on("plotly_click", (event) => {
        const index = indexOf(event);
        if (index !== null) trigger("pick", {map: id, index});
      });
      plot.on("plotly_hover", (event) => {
        const index = indexOf(event);
        if (index === null || (lastHover && lastHover.map === id && lastHover.index === index)) return;
        lastHover = {map: id, index};
        trigger("hover", lastHover);
      });
    }
  };
  let pending = false;
  new MutationObserver(() => {
    if (pending) return;
    pending = true;
    setTimeout(() => { pending = false; bind(); }, 250);
  }).observe(document.body, {childList: true, subtree: true});
  bind();
}

// ---------------------------------------------------------------- the drawing pad

/** Gradio's Sketchpad ignores strokes until its brush is picked: pick it as soon as a pad is
 * on screen, so a drawing works from the first stroke, and again after the pad is cleared. */
function brushFirst(ids) {
  const armed = new WeakSet();
  document.addEventListener("click", (event) => {
    const clear = event.target.closest && event.target.closest("button[aria-label='Clear canvas']");
    const pad = clear && ids.map((id) => document.getElementById(id)).find((p) => p && p.contains(clear));
    const brush = pad && pad.querySelector("button[aria-label=Brush]");
    if (brush) setTimeout(() => brush.click(), 50);
  });
  const arm = () => {
    for (const id of ids) {
      const pad = document.getElementById(id);
      const brush = pad && pad.querySelector("button[aria-label=Brush]");
      if (!brush || armed.has(brush) || pad.offsetParent === null) continue;
      armed.add(brush);
      brush.click();
    }
  };
  let pending = false;
  new MutationObserver(() => {
    if (pending) return;
    pending = true;
    setTimeout(() => { pending = false; arm(); }, 250);
  }).observe(document.body, {childList: true, subtree: true, attributes: true,
                             attributeFilter: ["style", "class", "open"]});
  arm();
}
