// The 2-D playground's training view: Train / Pause / Stop / Reset, the data with the model's
// samples as it trains, the loss (its reconstruction, prior and diffusion terms, in nats) with
// the exact denoiser's floor, and at a scrubbed t the forward process (the data pushed through
// x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, mixed here from the server's tables,
// under the exact density's contours) with the network's field beside the exact one and the
// gap between them. Everything is drawn on canvas from arrays, at most once per frame.
//
// props.value (ui/playground/views.py view_data): the lab's key, its points and the cloud's eps
// (float32, base64), the schedule's tables. The view's server functions (ui/playground/live.py)
// train, pause and stop the lab, `follow` it (long-polled: news as training makes it) and fetch
// the field at t. Drawing points is the view's 'draw' event (a new lab, on the drawn points).

import {float32FromBase64} from "../lib/codec.js";
import {everyFrame, fit, fontSize} from "../lib/draw.js";
import {mix} from "../lib/mix.js";
import {COLORS, frame, legend, line} from "../lib/plot.js";
import {appendHistory, arrow, arrowScale, densityLevels, heat, isolines, lossRange, plane, thin}
  from "../lib/toy.js";

const TERMS = ["reconstruction", "prior", "diffusion", "total"];
const TERM_COLORS = {reconstruction: "#2ca02c", prior: "#9467bd", diffusion: "#d62728",
                     total: "#222"};
const ACTIVE = new Set(["waiting", "training"]);
const FIELD_EVERY_MS = 1000;          // the field is fetched again this often while training
const INK = {data: "rgba(120,120,120,0.55)", cloud: "rgba(214,39,40,0.7)", drawn: "#1f77b4",
             xt: "rgba(80,80,80,0.45)", learned: "#d62728", exact: "#111"};

export function mount({element, trigger, props, watch, server, config}) {
  const root = document.createElement("div");
  root.className = "le-toy";
  root.innerHTML = `
    <div class="le-toolbar" role="toolbar" aria-label="training">
      <button class="le-btn primary" data-act="train" title="train (or go on training) the model">Train</button>
      <button class="le-btn" data-act="pause" title="pause: Train goes on from here" disabled>Pause</button>
      <button class="le-btn stop" data-act="stop" title="stop training" disabled>Stop</button>
      <button class="le-btn" data-act="reset" title="a new, untrained model (and the data again)">Reset</button>
      <label class="le-compute" title="click or drag on the data plot to add points; then train on them">
        <input class="le-draw-box" type="checkbox"> draw points</label>
      <button class="le-btn small" data-act="use" title="train on the points drawn" hidden>use the drawn points</button>
      <button class="le-btn small" data-act="clear" title="forget the points drawn" hidden>clear</button>
      <span class="le-status" aria-live="polite"></span>
    </div>
    <div class="le-pictures">
      <canvas class="le-toy-data" aria-label="the data (grey) and the model's samples (red)"></canvas>
      <canvas class="le-toy-loss" aria-label="the loss while training, and the exact denoiser's floor"></canvas>
    </div>
    <p class="le-readout le-toy-numbers"></p>
    <div class="le-controls">
      <label class="le-t-label" for="le-toy-t">t</label>
      <input class="le-t" id="le-toy-t" type="range" min="0" step="1" value="250" aria-label="diffusion step t">
      <input class="le-t-box" type="number" min="0" step="1" value="250" aria-label="t">
      <label class="le-compute"><input type="radio" name="le-toy-which" value="eps" checked> noise ε</label>
      <label class="le-compute"><input type="radio" name="le-toy-which" value="score"> score ∇log q</label>
      <span class="le-readout le-toy-t-readout" aria-live="polite"></span>
    </div>
    <div class="le-pictures">
      <canvas class="le-toy-learned" aria-label="the network's field at t"></canvas>
      <canvas class="le-toy-exact" aria-label="the exact denoiser's field at t"></canvas>
      <canvas class="le-toy-gap" aria-label="the gap between the fields at t"></canvas>
    </div>`;
  element.appendChild(root);
  const q = (s) => root.querySelector(s);
  const canvases = {data: q(".le-toy-data"), loss: q(".le-toy-loss"), learned: q(".le-toy-learned"),
                    exact: q(".le-toy-exact"), gap: q(".le-toy-gap")};
  const buttons = Object.fromEntries([...root.querySelectorAll("[data-act]")].map((b) => [b.dataset.act, b]));
  const status = q(".le-status"), numbers = q(".le-toy-numbers"), tReadout = q(".le-toy-t-readout");
  const range = q(".le-t"), box = q(".le-t-box"), drawBox = q(".le-draw-box");

  const state = {key: null, lab: null, points: null, eps: null, tables: null, T: 1000, t: 250,
                 which: "eps", seq: null, history: {}, cloud: null, cloudAt: null, floor: null,
                 summary: null, following: false, field: null, fieldBusy: false, fieldWanted: false,
                 fieldAt: 0, drawing: false, drawn: [], dragging: false, paints: 0, follows: 0,
                 updates: 0, clouds: 0, paintMs: 0};
  (window.latentExplorer ??= {}).toy = {state};

  // ------------------------------------------------------------ the lab's data
  const read = () => {
    const v = props.value;
    if (!v || !v.key) return;
    if (v.key !== state.key) {
      Object.assign(state, {key: v.key, lab: v.lab, seq: null, history: {}, cloud: null,
                            cloudAt: null, floor: null, summary: null, field: null});
      state.points = float32FromBase64(v.points);
      state.eps = float32FromBase64(v.eps);
      if (v.scene_t !== null && v.scene_t !== undefined) state.t = v.scene_t;
    }
    readTables(v.tables);
    follow();
    askField();
  };
  const readTables = (tables) => {
    if (!tables || tables === state.rawTables) return;
    state.rawTables = tables;
    state.T = tables.T;
    state.tables = {a: float32FromBase64(tables.a), b: float32FromBase64(tables.b)};
    range.max = box.max = String(state.T);
    state.t = Math.min(state.t, state.T);
    paint("field");                          // the x_t cloud is mixed from these
  };

  // ------------------------------------------------------------ talking to the server
  const held = () => ({key: state.key, seq: state.seq, cloud_at: state.cloudAt,
                       have: (state.history.iteration ?? []).length});
  const apply = (reply) => {
    if (!reply || reply.key !== state.key) return;
    if (reply.seq !== state.seq) state.updates += 1;       // news (the benchmark counts them)
    state.seq = reply.seq;
    state.summary = reply;
    appendHistory(state.history, decodeHistory(reply.history), ["iteration", "seconds", ...TERMS]);
    if (reply.cloud) {
      state.cloud = float32FromBase64(reply.cloud);
      state.cloudAt = reply.cloud_at;
      state.clouds += 1;
    }
    state.floor = reply.floor;
    readTables(reply.tables);
    setActive(ACTIVE.has(reply.status));
    status.textContent = reply.error ? `${reply.status_text}: ${reply.error}` : reply.status_text;
    if (ACTIVE.has(reply.status) && performance.now() - state.fieldAt > FIELD_EVERY_MS) askField();
    paint("training");
  };
  const decodeHistory = (h) => {
    const out = {from: h.from};
    for (const name of ["iteration", "seconds", ...TERMS]) out[name] = float32FromBase64(h[name]);
    return out;
  };
  const call = async (name, extra = {}) => {
    if (!state.key) return null;
    try {
      const reply = await server[name]({...held(), ...extra});
      if (reply && reply.error && !reply.key) { status.textContent = reply.error; return null; }
      apply(reply);
      return reply;
    } catch (error) {
      status.textContent = `the server did not answer (${error.message || error})`;
      return null;
    }
  };
  /** Long-poll the lab while it trains (and once to learn where it is). */
  const follow = async () => {
    if (state.following) return;
    state.following = true;
    try {
      for (let first = true; state.key; first = false) {
        const key = state.key;
        const reply = await call("follow", first ? {seq: null} : {});
        state.follows += 1;
        if (!reply || key !== state.key || !ACTIVE.has(reply.status)) break;
      }
    } finally {
      state.following = false;
    }
  };
  const setActive = (on) => {
    buttons.pause.disabled = buttons.stop.disabled = !on;
    buttons.train.disabled = on;
  };
  buttons.train.addEventListener("click", async () => {
    const reply = await call("train");
    if (reply) follow();
  });
  buttons.pause.addEventListener("click", () => call("pause"));
  buttons.stop.addEventListener("click", () => call("stop"));
  buttons.reset.addEventListener("click", () => trigger("reset", {}));

  // ------------------------------------------------------------ the field at t
  const askField = async () => {
    if (!state.key || state.t < 1) { state.field = null; paint("field"); return; }
    state.fieldWanted = true;
    if (state.fieldBusy) return;
    state.fieldBusy = true;
    try {
      while (state.fieldWanted) {
        state.fieldWanted = false;
        const asked = {key: state.key, t: state.t, grid: config.grid, which: state.which};
        state.fieldAt = performance.now();
        const reply = await server.field(asked);
        if (reply && !reply.error && asked.key === state.key) {
          const density = float32FromBase64(reply.density);
          state.field = {...reply, learned: float32FromBase64(reply.learned),
                         exact: float32FromBase64(reply.exact), gap: float32FromBase64(reply.gap),
                         // the density's contours, traced once per field (marching squares)
                         contours: densityLevels(density).flatMap(
                           (level) => isolines(density, reply.density_side, level))};
          paint("field");
        } else if (reply && reply.error) {
          tReadout.textContent = reply.error;
        }
      }
    } catch (error) {
      tReadout.textContent = `the server did not answer (${error.message || error})`;
    } finally {
      state.fieldBusy = false;
    }
  };
  const setT = (t) => {
    state.t = Math.max(0, Math.min(state.T, Math.round(Number(t) || 0)));
    paint("field");
    askField();
  };
  range.addEventListener("input", () => setT(range.value));
  box.addEventListener("change", () => setT(box.value));
  for (const radio of root.querySelectorAll("input[name=le-toy-which]")) {
    radio.addEventListener("change", () => { state.which = radio.value; askField(); });
  }

  // ------------------------------------------------------------ drawing points
  const dataPlane = () => plane(config.box, canvases.data.clientWidth || 360, 0);
  const addAt = (event) => {
    const rect = canvases.data.getBoundingClientRect();
    const p = dataPlane().fromCanvas(event.clientX - rect.left, event.clientY - rect.top);
    if (Math.abs(p[0]) > config.box || Math.abs(p[1]) > config.box) return;
    if (state.drawn.length >= config.max_points) return;
    state.drawn = thin([...state.drawn, p], state.dragging ? 0.05 : 0);
    paint("training");
  };
  drawBox.addEventListener("change", () => {
    state.drawing = drawBox.checked;
    buttons.use.hidden = buttons.clear.hidden = !state.drawing;
    canvases.data.style.cursor = state.drawing ? "crosshair" : "";
    paint("training");
  });
  canvases.data.addEventListener("pointerdown", (e) => {
    if (!state.drawing) return;
    state.dragging = false;
    addAt(e);
    state.dragging = true;
    canvases.data.setPointerCapture(e.pointerId);
  });
  canvases.data.addEventListener("pointermove", (e) => { if (state.drawing && state.dragging) addAt(e); });
  canvases.data.addEventListener("pointerup", () => { state.dragging = false; });
  buttons.clear.addEventListener("click", () => { state.drawn = []; paint("training"); });
  buttons.use.addEventListener("click", () => {
    if (state.drawn.length < 2) { status.textContent = "draw at least 2 points first"; return; }
    trigger("draw", {points: state.drawn.map(([x, y]) => [+x.toFixed(4), +y.toFixed(4)])});
  });

  // ------------------------------------------------------------ painting
  const square = (width) => Math.max(220, Math.min(420, Math.floor(width)));
  const scatter = (ctx, pl, xy, color, radius) => {
    ctx.fillStyle = color;
    for (let i = 0; i + 1 < xy.length; i += 2) {
      ctx.fillRect(pl.sx(xy[i]) - radius, pl.sy(xy[i + 1]) - radius, 2 * radius, 2 * radius);
    }
  };
  const title = (ctx, text, font) => {
    ctx.save();
    ctx.font = `${font}px sans-serif`;
    ctx.fillStyle = "rgba(255,255,255,0.85)";          // readable over arrows and points
    ctx.fillRect(2, 2, ctx.measureText(text).width + 8, font + 5);
    ctx.fillStyle = COLORS.ink;
    ctx.textBaseline = "top";
    ctx.fillText(text, 6, 4);
    ctx.restore();
  };
  const border = (ctx, size) => {
    ctx.strokeStyle = COLORS.axis;
    ctx.strokeRect(0.5, 0.5, size - 1, size - 1);
  };
  const paintData = (side, font) => {
    const ctx = fit(canvases.data, side, side);
    const pl = plane(config.box, side);
    ctx.clearRect(0, 0, side, side);
    border(ctx, side);
    if (state.points) scatter(ctx, pl, state.points, INK.data, 1.4);
    if (state.cloud) scatter(ctx, pl, state.cloud, INK.cloud, 1.6);
    if (state.drawing) {
      scatter(ctx, pl, state.drawn.flat(), INK.drawn, 3);
      title(ctx, `drawing: ${state.drawn.length} points (click or drag)`, font);
    } else {
      title(ctx, state.cloudAt === null ? "data" : `data (grey), samples at iteration ${state.cloudAt} (red)`, font);
    }
  };
  const paintLoss = (width, height, font) => {
    const ctx = fit(canvases.loss, width, height);
    ctx.clearRect(0, 0, width, height);
    const h = state.history;
    const its = h.iteration ?? [];
    const end = Math.max(state.summary?.iterations_asked ?? 1, its[its.length - 1] ?? 1);
    const [y0, y1] = lossRange(TERMS.map((n) => h[n] ?? []), state.floor);
    const plot = frame(ctx, {w: width, h: height, x: [0, end], y: [y0, y1], font,
                             title: "-ELBO per point (nats) and its terms, by iteration",
                             xLabel: " "});
    for (const name of TERMS) line(ctx, plot, its, h[name] ?? [], TERM_COLORS[name], name === "total" ? 2.5 : 1.6);
    if (Number.isFinite(state.floor)) {
      line(ctx, plot, [0, end], [state.floor, state.floor], TERM_COLORS.diffusion, 1.5, [6, 4]);
    }
    const narrow = width < 600;                        // a phone: short names, one row
    const names = narrow ? {reconstruction: "recon.", diffusion: "diff."} : {};
    legend(ctx, [...TERMS.map((n) => [names[n] ?? n, TERM_COLORS[n]]),
                 [narrow ? "- - floor" : "- - exact denoiser's diffusion term", TERM_COLORS.diffusion]],
           plot.box.left, plot.box.bottom + font * 2.3, font * 0.85);
  };
  const paintField = (side, font) => {
    const f = state.field && state.field.t === state.t ? state.field : (state.t > 0 ? state.field : null);
    const cloud = xt();
    const pl = plane(config.box, side);
    const cell = side / (f ? f.grid : config.grid);
    const scale = f ? arrowScale([f.learned, f.exact], 0.9 * cell) : 1;
    for (const which of ["learned", "exact"]) {
      const ctx = fit(canvases[which], side, side);
      ctx.clearRect(0, 0, side, side);
      border(ctx, side);
      if (f) contours(ctx, pl, f.contours, f.density_side);
      if (cloud) scatter(ctx, pl, cloud, INK.xt, 1.1);
      if (f) arrows(ctx, pl, f.grid, f[which], scale, INK[which], cell);
      title(ctx, which === "learned" ? `network ${symbol()}̂_θ(x_t, t)` : `exact ${symbol()}*(x_t, t): the optimum for these points`, font);
    }
    const ctx = fit(canvases.gap, side, side);
    ctx.clearRect(0, 0, side, side);
    if (f) {
      let max = 0;
      for (const g of f.gap) if (g > max) max = g;
      for (let r = 0; r < f.grid; r++) {
        for (let c = 0; c < f.grid; c++) {
          ctx.fillStyle = heat(f.gap[r * f.grid + c] / (max || 1));
          ctx.fillRect(c * cell, side - (r + 1) * cell, cell + 0.5, cell + 0.5);
        }
      }
      title(ctx, `gap |${symbol()}̂_θ − ${symbol()}*| (max ${max.toPrecision(3)})`, font);
    }
    border(ctx, side);
  };
  const symbol = () => (state.which === "score" ? "s" : "ε");
  const contours = (ctx, pl, segments, dside) => {
    const step = (2 * config.box) / dside;
    ctx.save();
    ctx.strokeStyle = "rgba(31,119,180,0.55)";
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (const [c0, r0, c1, r1] of segments) {
      ctx.moveTo(pl.sx(-config.box + (c0 + 0.5) * step), pl.sy(-config.box + (r0 + 0.5) * step));
      ctx.lineTo(pl.sx(-config.box + (c1 + 0.5) * step), pl.sy(-config.box + (r1 + 0.5) * step));
    }
    ctx.stroke();
    ctx.restore();
  };
  const arrows = (ctx, pl, grid, vectors, scale, color, cell) => {
    const step = (2 * config.box) / grid;
    ctx.save();
    ctx.strokeStyle = color;
    ctx.fillStyle = color;
    ctx.lineWidth = 1.3;
    for (let r = 0; r < grid; r++) {
      for (let c = 0; c < grid; c++) {
        const i = r * grid + c;
        const p = [pl.sx(-config.box + (c + 0.5) * step), pl.sy(-config.box + (r + 0.5) * step)];
        const [x0, y0, x1, y1] = arrow(p, [vectors[2 * i], vectors[2 * i + 1]], scale, 1.5 * cell);
        const len = Math.hypot(x1 - x0, y1 - y0);
        ctx.beginPath();
        ctx.moveTo(x0, y0);
        ctx.lineTo(x1, y1);
        ctx.stroke();
        if (len > 3) {                                   // the head
          const a = Math.atan2(y1 - y0, x1 - x0), hl = Math.min(5, len * 0.4);
          ctx.beginPath();
          ctx.moveTo(x1, y1);
          ctx.lineTo(x1 - hl * Math.cos(a - 0.45), y1 - hl * Math.sin(a - 0.45));
          ctx.lineTo(x1 - hl * Math.cos(a + 0.45), y1 - hl * Math.sin(a + 0.45));
          ctx.fill();
        }
      }
    }
    ctx.restore();
  };
  /** The data pushed through q(x_t | x_0) at the view's t, mixed here. */
  const xt = () => {
    if (!state.points || !state.tables) return null;
    const t = state.t;
    return mix(state.points, state.eps, state.tables.a[t], state.tables.b[t]);
  };
  const readouts = () => {
    const s = state.summary;
    if (s) {
      const terms = s.loss_nats ?? {};
      const parts = [`iteration ${s.iteration} / ${s.iterations_asked}`, `${s.seconds.toFixed(1)} s`];
      for (const n of TERMS) if (terms[n] !== undefined) parts.push(`${n} ${terms[n].toFixed(3)}`);
      if (Number.isFinite(s.floor)) parts.push(`floor (exact denoiser) ${s.floor.toFixed(3)}`);
      if (s.diffusion_over_floor) parts.push(`diffusion / floor ${s.diffusion_over_floor.toFixed(3)}`);
      numbers.textContent = parts.join("  ·  ");
    }
    range.value = box.value = String(state.t);
    const f = state.field;
    const ab = state.tables ? state.tables.a[state.t] ** 2 : null;
    let text = ab === null ? "" : `t = ${state.t}: ᾱ_t = ${ab.toPrecision(3)}, x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε`;
    if (state.t === 0) text += "  (t = 0 is the data: no field)";
    else if (f && f.t === state.t) {
      text += `  ·  E‖ε − ε̂θ‖² = ${f.mse.learned.toFixed(4)}, exact E‖ε − ε*‖² = ${f.mse.exact.toFixed(4)}`;
    }
    tReadout.textContent = text;
  };
  // only the canvases whose data changed are drawn again: a training message redraws the data
  // and the loss, a new t or field the three field panels
  const dirty = {training: true, field: true};
  const draw = everyFrame(() => {
    const began = performance.now();
    state.paints += 1;
    const font = fontSize(12);
    const width = Math.max(300, root.clientWidth || 900);
    const narrow = width < 760;
    const side = square(narrow ? width : width * 0.4);
    if (dirty.training) {
      paintData(side, font);
      paintLoss(narrow ? width : Math.max(300, width - side - 24), side, font);
    }
    if (dirty.field) paintField(square(narrow ? width : (width - 40) / 3), font);
    dirty.training = dirty.field = false;
    readouts();
    state.paintMs = Math.max(state.paintMs, performance.now() - began);   // the longest draw
  });
  const paint = (what = "all") => {
    if (what !== "field") dirty.training = true;
    if (what !== "training") dirty.field = true;
    draw();
  };

  watch("value", read);
  new ResizeObserver(() => paint()).observe(root);
  read();
  paint();
}
