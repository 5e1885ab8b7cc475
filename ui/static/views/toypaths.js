// The 2-D playground's reverse-process view: n seeded points from x_T ~ N(0, I) to x_0, DDPM
// beside DDIM (eta = 0), the trained network's field (red) and the exact denoiser's (black)
// taking the same x_T and the same noise. One request (`trajectories`, ui/playground/live.py)
// brings every step of the four runs; Step, Run, Stop and the step slider (rewind to any
// step) then move through them here, drawn on canvas at most once per frame.
//
// props.value: the lab (its key and points); a new lab forgets the runs of the old one.

import {float32FromBase64} from "../lib/codec.js";
import {everyFrame, fit, fontSize} from "../lib/draw.js";
import {COLORS} from "../lib/plot.js";
import {offer} from "../lib/registry.js";
import {plane} from "../lib/toy.js";

const RUN_MS = 4000;               // Run plays the whole reverse process in about this long
const TRAILS = 40;                 // points whose path so far is drawn
const INK = {data: "rgba(120,120,120,0.45)", learned: "rgba(214,39,40,0.85)",
             exact: "rgba(17,17,17,0.8)"};

export function mount({element, trigger, props, watch, server, config}) {
  const root = document.createElement("div");
  root.className = "le-toypaths";
  root.innerHTML = `
    <div class="le-toolbar" role="toolbar" aria-label="trajectories">
      <label>points <input class="le-n" type="number" min="${config.n[0]}" max="${config.n[1]}" step="1" value="200"></label>
      <label>steps <input class="le-steps-box" type="number" min="${config.steps[0]}" max="${config.steps[1]}" step="1" value="100"></label>
      <label>seed <input class="le-seed" type="number" min="0" step="1" value="0"></label>
      <button class="le-btn primary" data-act="sample" title="the four runs from new x_T">Sample</button>
      <button class="le-btn" data-act="step" title="one step">Step</button>
      <button class="le-btn" data-act="run" title="every remaining step">Run</button>
      <button class="le-btn stop" data-act="stop" title="stop where it is" disabled>Stop</button>
      <label class="le-compute"><input class="le-show-learned" type="checkbox" checked> network</label>
      <label class="le-compute"><input class="le-show-exact" type="checkbox" checked> exact denoiser</label>
      <label class="le-compute"><input class="le-show-trails" type="checkbox" checked> paths</label>
      <span class="le-status" aria-live="polite"></span>
      <span class="le-spacer"></span>
      <button class="le-btn small" data-act="gif" title="the four runs as a GIF, for slides">as GIF</button>
      <button class="le-btn small" data-act="csv" title="every point at every step, as CSV">as CSV</button>
    </div>
    <div class="le-scrubber">
      <label>after step <b class="le-k">0</b>
        <input class="le-shown" type="range" min="0" max="0" step="1" value="0"></label>
    </div>
    <div class="le-pictures">
      <canvas class="le-paths-ddpm" aria-label="DDPM trajectories"></canvas>
      <canvas class="le-paths-ddim" aria-label="DDIM trajectories"></canvas>
    </div>
    <p class="le-caption le-paths-caption"></p>`;
  element.appendChild(root);
  const q = (s) => root.querySelector(s);
  const buttons = Object.fromEntries([...root.querySelectorAll("[data-act]")].map((b) => [b.dataset.act, b]));
  const slider = q(".le-shown"), kLabel = q(".le-k"), status = q(".le-status"), caption = q(".le-paths-caption");
  const shows = {learned: q(".le-show-learned"), exact: q(".le-show-exact"), trails: q(".le-show-trails")};
  const canvases = {ddpm: q(".le-paths-ddpm"), ddim: q(".le-paths-ddim")};

  const state = {key: null, points: null, runs: null, n: 0, steps: 0, timesteps: [], k: 0,
                 running: false, asked: null, paints: 0};
  (window.latentExplorer ??= {}).toypaths = {state};

  const read = () => {
    const v = props.value;
    if (!v || !v.key || v.key === state.key) return;
    state.key = v.key;
    state.points = float32FromBase64(v.points);
    state.runs = null;
    state.k = 0;
    status.textContent = "press Sample (after some training) to run the reverse process";
    paint();
  };
  const settings = () => ({n: Number(q(".le-n").value), steps: Number(q(".le-steps-box").value),
                           seed: Number(q(".le-seed").value)});
  const sampleRuns = async () => {
    if (!state.key) return;
    const asked = {key: state.key, ...settings()};
    buttons.sample.disabled = true;
    status.textContent = "sampling...";
    try {
      const reply = await server.trajectories(asked);
      if (!reply || reply.error) { status.textContent = reply ? reply.error : "no answer"; return; }
      if (asked.key !== state.key) return;
      state.asked = asked;
      state.n = reply.n;
      state.steps = reply.steps;
      state.timesteps = [...reply.timesteps, 0];
      state.runs = Object.fromEntries(Object.entries(reply.runs).map(([k, v]) => [k, float32FromBase64(v)]));
      slider.max = String(reply.steps);
      state.k = 0;
      status.textContent = `${reply.n} points, ${reply.steps} steps, seed ${reply.seed}`;
      paint();
    } catch (error) {
      status.textContent = `the server did not answer (${error.message || error})`;
    } finally {
      buttons.sample.disabled = false;
    }
  };
  const setK = (k) => {
    state.k = Math.max(0, Math.min(state.steps, k));
    paint();
  };
  const setRunning = (on) => {
    state.running = on;
    buttons.stop.disabled = !on;
    buttons.run.disabled = buttons.step.disabled = buttons.sample.disabled = on;
  };
  const run = () => {
    if (!state.runs || state.k >= state.steps) return;
    setRunning(true);
    const perMs = state.steps / RUN_MS;
    const start = performance.now(), k0 = state.k;
    const tick = (now) => {
      if (!state.running) return;
      setK(Math.min(state.steps, k0 + Math.max(1, Math.floor((now - start) * perMs))));
      if (state.k >= state.steps) setRunning(false);
      else requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  };
  buttons.sample.addEventListener("click", sampleRuns);
  buttons.step.addEventListener("click", () => state.runs && setK(state.k + 1));
  buttons.run.addEventListener("click", run);
  buttons.stop.addEventListener("click", () => setRunning(false));
  slider.addEventListener("input", () => { setRunning(false); setK(Number(slider.value)); });
  for (const box of Object.values(shows)) box.addEventListener("change", () => paint());
  for (const what of ["gif", "csv"]) {
    buttons[what].addEventListener("click", () => {
      if (!state.asked) { status.textContent = "press Sample first"; return; }
      trigger("export", {what, ...state.asked});
    });
  }
  offer("step", root, () => buttons.step.click());
  offer("run", root, () => buttons.run.click());
  offer("stop", root, () => buttons.stop.click());

  // ------------------------------------------------------------ painting
  const at = (run, k, i) => [run[(k * state.n + i) * 2], run[(k * state.n + i) * 2 + 1]];
  const paintRun = (name, side, font) => {
    const ctx = fit(canvases[name], side, side);
    const pl = plane(config.box, side);
    ctx.clearRect(0, 0, side, side);
    ctx.strokeStyle = COLORS.axis;
    ctx.strokeRect(0.5, 0.5, side - 1, side - 1);
    if (state.points) {
      ctx.fillStyle = INK.data;
      for (let i = 0; i + 1 < state.points.length; i += 2) {
        ctx.fillRect(pl.sx(state.points[i]) - 1, pl.sy(state.points[i + 1]) - 1, 2, 2);
      }
    }
    if (state.runs) {
      for (const which of ["exact", "learned"]) {
        if (!shows[which].checked) continue;
        const run = state.runs[`${name}-${which}`];
        if (shows.trails.checked && state.k > 0) {
          ctx.strokeStyle = INK[which];
          ctx.globalAlpha = 0.35;
          ctx.lineWidth = 1;
          ctx.beginPath();
          for (let i = 0; i < Math.min(TRAILS, state.n); i++) {
            const [x, y] = at(run, 0, i);
            ctx.moveTo(pl.sx(x), pl.sy(y));
            for (let k = 1; k <= state.k; k++) {
              const [u, v] = at(run, k, i);
              ctx.lineTo(pl.sx(u), pl.sy(v));
            }
          }
          ctx.stroke();
          ctx.globalAlpha = 1;
        }
        ctx.fillStyle = INK[which];
        for (let i = 0; i < state.n; i++) {
          const [x, y] = at(run, state.k, i);
          ctx.beginPath();
          ctx.arc(pl.sx(x), pl.sy(y), 2.2, 0, 2 * Math.PI);
          ctx.fill();
        }
      }
    }
    ctx.font = `${font}px sans-serif`;
    ctx.fillStyle = COLORS.ink;
    ctx.textBaseline = "top";
    ctx.fillText(config.samplers[name], 6, 4);
  };
  const paint = everyFrame(() => {
    state.paints += 1;
    const font = fontSize(12);
    const width = Math.max(300, root.clientWidth || 900);
    const side = Math.max(220, Math.min(440, Math.floor(width < 700 ? width : (width - 20) / 2)));
    paintRun("ddpm", side, font);
    paintRun("ddim", side, font);
    slider.value = String(state.k);
    kLabel.textContent = String(state.k);
    caption.textContent = state.runs
      ? `step ${state.k} of ${state.steps}: t = ${state.timesteps[state.k]}` +
        (state.k === 0 ? " (x_T, pure noise)" : state.k === state.steps ? " (x_0: where each field puts the points)" : "")
      : "";
  });

  watch("value", read);
  new ResizeObserver(() => paint()).observe(root);
  read();
  paint();
}
