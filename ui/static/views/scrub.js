// The scrub view (VDM tab, forward process): its own t slider; as it moves the page mixes
//     x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps
// itself (lib/mix.js, the server's float32 arithmetic) and paints x_t, its pixel histogram
// against N(0, 1) and the schedules' curves with a cursor at t, with no request at all.
//
// props.value (ui/vdm/views.py scrub_view_data): x0 and eps of image A and the seed (float32,
// base64), the schedule they go with, {T, tables: {name: {a, b}}}: sqrt(alpha_bar_t) and
// sqrt(1 - alpha_bar_t) for t = 0..T of every schedule, and scene_t: the t a scene link asks
// for (taken once; otherwise t is the page's own). "x_t as PNG" asks the server for the same
// picture at this t ('png' {t}).

import {float32FromBase64} from "../lib/codec.js";
import {fit, fontSize, grey, picture} from "../lib/draw.js";
import {density, normalDensity} from "../lib/histogram.js";
import {mix, moments, toUint8} from "../lib/mix.js";
import {COLORS, dots, frame, legend, line} from "../lib/plot.js";
import {offer} from "../lib/registry.js";


export function mount({element, trigger, props, watch, config}) {
  const root = document.createElement("div");
  root.className = "le-scrub";
  root.innerHTML = `
    <div class="le-controls">
      <label class="le-t-label" for="le-scrub-t">t</label>
      <input class="le-t" id="le-scrub-t" type="range" min="0" step="1" aria-label="diffusion step t">
      <input class="le-t-box" type="number" min="0" step="1" aria-label="t">
      <button class="le-btn small" data-act="png" title="x_t at this t as a PNG file, for slides">x_t as PNG</button>
      <span class="le-readout" aria-live="polite"></span>
    </div>
    <div class="le-pictures">
      <figure class="le-xt-figure"><canvas class="le-xt" aria-label="x_t"></canvas>
        <figcaption class="le-xt-caption"></figcaption></figure>
      <canvas class="le-hist" aria-label="pixel histogram of x_t"></canvas>
    </div>
    <canvas class="le-curves" aria-label="noise schedules"></canvas>`;
  element.appendChild(root);
  const range = root.querySelector(".le-t");
  const box = root.querySelector(".le-t-box");
  const readout = root.querySelector(".le-readout");
  const caption = root.querySelector(".le-xt-caption");
  const [xtCanvas, histCanvas, curvesCanvas] = ["le-xt", "le-hist", "le-curves"]
    .map((c) => root.querySelector(`.${c}`));

  const state = {t: config.t, T: config.T, data: null, tables: {}, curves: null, sceneT: null};

  const read = () => {
    const v = props.value;
    if (!v || !v.x0) return;
    state.data = {schedule: v.schedule, x0: float32FromBase64(v.x0), eps: float32FromBase64(v.eps)};
    if (v.tables !== state.rawTables) {               // the same dataset sends the same tables
      state.rawTables = v.tables;
      state.T = v.T;
      state.tables = Object.fromEntries(Object.entries(v.tables).map(([name, tb]) =>
        [name, {a: float32FromBase64(tb.a), b: float32FromBase64(tb.b)}]));
      state.curves = null;                            // drawn again from the new tables
      range.max = box.max = String(state.T);
    }
    if (v.scene_t !== null && v.scene_t !== undefined && v.scene_t !== state.sceneT) {
      state.sceneT = v.scene_t;                       // a scene's t, taken once
      state.t = Math.max(0, Math.min(state.T, v.scene_t));
    }
  };

  /** x_t at step t of the current image and schedule (null until both are here). */
  const xAt = (t) => {
    const d = state.data;
    const table = d && state.tables[d.schedule];
    if (!table || !(t >= 0 && t <= state.T)) return null;
    return mix(d.x0, d.eps, table.a[t], table.b[t]);
  };

  const paint = () => {
    const t = state.t;
    range.value = box.value = String(t);
    const x = xAt(t);
    const font = fontSize(13);
    const width = Math.max(200, root.clientWidth || 600);
    const narrow = width < 640;
    const side = Math.min(280, narrow ? width : Math.floor(width * 0.34));
    const ctx = fit(xtCanvas, side, side);
    ctx.fillStyle = grey(config.background ?? 40);
    ctx.fillRect(0, 0, side, side);
    if (!x) { readout.textContent = "waiting for the image..."; return; }
    picture(ctx, toUint8(x), 0, 0, side);
    const table = state.tables[state.data.schedule];
    const a = table.a[t], b = table.b[t];
    const abar = a * a, snr = (a * a) / (b * b);
    const {mean, std} = moments(x);
    caption.textContent = `x_t, t = ${t} (${state.data.schedule})`;
    readout.textContent = `ᾱ_t = ${abar.toFixed(4)} · SNR = ${snr.toPrecision(3)} · ` +
      `log SNR = ${Math.log(snr).toFixed(2)} · pixels: mean ${mean.toFixed(3)}, sd ${std.toFixed(3)}`;
    drawHistogram(histCanvas, x, narrow ? width : width - side - 24, side, font, config, t);
    drawCurves(curvesCanvas, state, width, font);
  };

  const setT = (t) => {
    state.t = Math.max(0, Math.min(state.T, Math.round(t)));
    paint();
  };
  range.addEventListener("input", () => setT(+range.value));
  box.addEventListener("change", () => setT(+box.value));
  root.querySelector("[data-act=png]").addEventListener("click", () => trigger("png", {t: state.t}));
  offer("t-10", root, () => setT(state.t - 10));
  offer("t+10", root, () => setT(state.t + 10));

  watch("value", () => { read(); paint(); });
  window.addEventListener("le:presenter", () => { state.curves = null; paint(); });
  new ResizeObserver(() => { state.curves = null; paint(); }).observe(root);

  range.max = box.max = String(state.T);
  read();
  paint();

  // for the tests and the benchmark: what the page paints at t
  (window.latentExplorer ??= {}).scrub = {
    at: (t) => {
      const x = xAt(t);
      return x && {pixels: Array.from(toUint8(x)), histogram: density(x, config.bins)};
    },
    set: (t) => setT(t),
    get t() { return state.t; },
  };
}

function drawHistogram(canvas, x, w, h, font, config, t) {
  const ctx = fit(canvas, Math.max(220, w), h);
  const width = Math.max(220, w);
  ctx.clearRect(0, 0, width, h);
  const [lo, hi, n] = config.bins;
  const bars = density(x, config.bins);
  const plot = frame(ctx, {w: width, h, x: [lo, hi], y: [0, 3], font,
                           title: `pixel values of x_t (t = ${t}) against N(0, 1)`,
                           xLabel: "pixel value", yLabel: "density"});
  const {box, sx, sy} = plot;
  const step = (hi - lo) / n;
  ctx.fillStyle = COLORS.grey;
  for (let i = 0; i < n; i++) {
    const x0 = sx(lo + i * step), x1 = sx(lo + (i + 1) * step);
    const y = sy(Math.min(3, bars[i]));
    ctx.fillRect(x0, y, Math.max(1, x1 - x0 - 0.5), box.bottom - y);
  }
  const xs = [], ys = [];
  for (let i = 0; i <= 160; i++) {
    const v = lo + ((hi - lo) * i) / 160;
    xs.push(v);
    ys.push(normalDensity(v));
  }
  line(ctx, plot, xs, ys, COLORS.learned, 3);
  legend(ctx, [["pixels of x_t", COLORS.grey], ["N(0, 1)", COLORS.learned]],
         box.left + font * 0.5, box.top + font, font);
}

/** alpha_bar_t, SNR(t) (log axis) and log SNR(t) of each schedule: the lines drawn once into a
 * cached bitmap; each frame copies it and draws the cursor at t. */
function drawCurves(canvas, state, width, font) {
  const names = Object.keys(state.tables);
  if (!names.length) return;
  const narrow = width < 640;
  const panelW = narrow ? width : width / 3;
  const panelH = narrow ? 170 : 220;
  const h = narrow ? panelH * 3 + font * 2 : panelH + font * 2;
  if (!state.curves || state.curves.width !== width || state.curves.font !== font) {
    const cache = document.createElement("canvas");
    const ctx = fit(cache, width, h);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, width, h);
    const panels = [
      {title: "alpha_bar_t", y: [0, 1], f: (a, b) => a * a},
      {title: "SNR(t), log axis", y: [-6, 4], f: (a, b) => Math.log10((a * a) / (b * b)),
       yText: (v) => `1e${v}`},
      {title: "log SNR(t)", y: [-14, 10], f: (a, b) => Math.log((a * a) / (b * b))},
    ];
    const frames = [];
    panels.forEach((p, i) => {
      ctx.save();
      ctx.translate(narrow ? 0 : i * panelW, narrow ? i * panelH : 0);
      const plot = frame(ctx, {w: panelW, h: panelH, x: [0, state.T], y: p.y, font,
                               title: p.title, xLabel: i === 2 || !narrow ? "t" : null,
                               yText: p.yText});
      for (const name of names) {
        const {a, b} = state.tables[name];
        const xs = [], ys = [];
        for (let t = 1; t <= state.T; t += 2) { xs.push(t); ys.push(p.f(a[t], b[t])); }
        line(ctx, plot, xs, ys, COLORS[name] || COLORS.ink, 2.5);
      }
      frames.push({plot, dx: narrow ? 0 : i * panelW, dy: narrow ? i * panelH : 0, f: p.f});
      ctx.restore();
    });
    legend(ctx, names.map((n) => [n, COLORS[n] || COLORS.ink]), font, h - font, font);
    state.curves = {bitmap: cache, width, font, h, frames};
  }
  const ctx = fit(canvas, width, state.curves.h);
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.drawImage(state.curves.bitmap, 0, 0);
  const ratio = window.devicePixelRatio || 1;
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  const t = state.t;
  const current = state.data && state.tables[state.data.schedule];
  for (const {plot, dx, dy, f} of state.curves.frames) {
    ctx.save();
    ctx.translate(dx, dy);
    ctx.strokeStyle = "#000";
    ctx.setLineDash([5, 4]);
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.moveTo(plot.sx(t), plot.box.top);
    ctx.lineTo(plot.sx(t), plot.box.bottom);
    ctx.stroke();
    ctx.setLineDash([]);
    if (current && t > 0) {
      const y = f(current.a[t], current.b[t]);
      if (Number.isFinite(y)) dots(ctx, plot, [[t, y]], COLORS[state.data.schedule], 4);
    }
    ctx.restore();
  }
}
