// The run view (VDM tab, reverse process): Reset / Step / Run / Stop, the step panel
// (x_t | eps_hat | x0_hat | x_t_prev), the run's caption, a slider over the steps taken, rewind
// and branch, the filmstrip and where the steps fall on log SNR(t): all drawn on canvases from
// the compact messages the server streams (lib/runs.js, ui/vdm/frames.py), at most once per
// animation frame. Stop freezes the view at once; the server ends the run after the step under
// way and takes it back to the step shown, so the run is what the audience saw.
//
// Where the browser can (WebAssembly, module workers) and the switch says so, the page takes the
// steps itself (lib/pagerun.js): the network runs in a worker, the server sends the run's rules
// and noise once (its `plan`), so a whole run costs the server one request; Step, Run, Stop,
// rewind and branch are then the page's own, with exactly the run the server would make.
// `?compute=server` in the URL, or the switch, leaves the computing to the server.
//
// props.value: the latest message; config: labels and geometry (ui/vdm/frames.py CONFIG). The
// step shown is the page's: it goes with the events that need it (stop, rewind, branch, png).

import {everyFrame, fontSize, setProp, setText} from "../lib/draw.js";
import {canvasPainter, filmLayout, panelLayout, stepsSize} from "../lib/runpaint.js";
import {openEps, supported} from "../lib/eps.js";
import {branched, cut, pageRun} from "../lib/pagerun.js";
import {offer} from "../lib/registry.js";
import {applyMessage, caption, filmPicks, panel, sampleAfter, stepsOnCurve, tBefore}
  from "../lib/runs.js";

const SLOW_EVERY_MS = 150;         // the filmstrip and the steps' plot during a Run

export function mount({element, trigger, props, watch, server, config}) {
  const root = document.createElement("div");
  root.className = "le-run";
  root.innerHTML = `
    <div class="le-toolbar" role="toolbar" aria-label="reverse run">
      <button class="le-btn" data-act="reset" title="a new run with the settings above">Reset</button>
      <button class="le-btn primary" data-act="step" title="one step (key S)">Step</button>
      <button class="le-btn primary" data-act="run" title="every remaining step (key R)">Run</button>
      <button class="le-btn stop" data-act="stop" title="stop on the frame shown (key X)" disabled>Stop</button>
      <label class="le-compute" title="run the network in this browser (WebAssembly, in a worker): the server only sends the run's noise once; off: every step is computed on the server">
        <input class="le-compute-box" type="checkbox"> compute in this browser</label>
      <span class="le-status" aria-live="polite"></span>

      <span class="le-spacer"></span>
      <button class="le-btn small" data-act="png" title="the step panel as a PNG file, for slides">this step as PNG</button>
      <button class="le-btn small" data-act="film" title="the filmstrip as a PNG file, for slides">filmstrip as PNG</button>
      <button class="le-btn small" data-act="gif" title="the run so far as a GIF (up to ${config.gif_frames} frames), for slides">run as GIF</button>
    </div>
    <canvas class="le-panel" aria-label="x_t, predicted noise, predicted x_0, next x_t"></canvas>
    <p class="le-caption"></p>
    <div class="le-scrubber">
      <label>show the run after step <b class="le-k">0</b>
        <input class="le-shown" type="range" min="0" max="0" step="1" value="0"></label>
    </div>
    <div class="le-branch">
      <button class="le-btn" data-act="rewind" title="forget the steps after the one shown">rewind to this step</button>
      <label>branch seed <input class="le-branch-seed" type="number" min="0" step="1" value="1"></label>
      <button class="le-btn" data-act="branch" title="rewind here and step on with noise from the branch seed">branch here</button>
    </div>
    <canvas class="le-film" aria-label="the run so far: x_t and x0_hat"></canvas>
    <canvas class="le-steps" aria-label="the run's steps on log SNR(t)"></canvas>`;
  element.appendChild(root);
  const q = (selector) => root.querySelector(selector);
  const [panelCanvas, filmCanvas, stepsCanvas] = [q(".le-panel"), q(".le-film"), q(".le-steps")];
  const slider = q(".le-shown"), kLabel = q(".le-k"), captionEl = q(".le-caption");
  const status = q(".le-status"), seedBox = q(".le-branch-seed"), computeBox = q(".le-compute-box");
  const buttons = Object.fromEntries([...root.querySelectorAll("[data-act]")]
    .map((b) => [b.dataset.act, b]));

  const state = {history: null, shown: 0, running: false, frozen: false, following: false,
                 filling: false, drawn: [], slowDrawn: 0,
                 drawnShown: 0, pageTook: false, stepping: false,
                 // the switch: on where this browser can run the network, unless ?compute=server
                 pageWanted: supported() && new URLSearchParams(location.search).get("compute") !== "server",
                 pageFailed: null};
  const engine = pageRun({plan: (asked) => server.plan(asked), open: openEps,
                          noiseScale: config.noise_scale});
  const painter = makePainter({panel: panelCanvas, film: filmCanvas, steps: stepsCanvas}, config);
  const test = (window.latentExplorer ??= {}).run = {state, drawn: state.drawn, engine, painter};

  // ------------------------------------------------------------ talking to the server
  // Reset is a Gradio event (it reads the settings above the view); the rest are the view's
  // server functions (ui/vdm/live.py), each one small request answered with a message.
  // `at`: where the page's own steps left the run, for the server to catch up to first
  const at = () => (state.pageTook && state.history
    ? {at: {taken: state.history.steps.length, branches: state.history.branches}} : {});
  const held = () => (state.history ? {have: state.history.steps.length, run: state.history.run,
                                       key: state.history.key, ...at()}
                                    : {have: 0, run: null, key: null});
  const setRunning = (on) => {
    state.running = on;
    buttons.stop.disabled = !on;
    for (const name of ["reset", "step", "run", "rewind", "branch"]) buttons[name].disabled = on;
    if (on) status.textContent = "running...";
    else if (status.textContent === "running...") status.textContent = "";
  };
  /** Call server function `name` and fold its reply in; a refusal is said in the status line. */
  const call = async (name, extra = {}) => {
    try {
      const reply = await server[name]({...held(), ...extra});
      if (reply && reply.error) {
        status.textContent = reply.error;
        return null;
      }
      state.pageTook = false;              // the server holds the run as the page does
      apply(reply);
      return reply;
    } catch (error) {
      status.textContent = `the server did not answer (${error.message || error})`;
      return null;
    }
  };
  // ------------------------------------------------------------ the page's own steps
  const inPage = () => Boolean(state.pageWanted && !state.pageFailed && state.history
                               && state.history.compute);
  /** The page could not take a step itself: say why, once, and leave it to the server. */
  const pageFailed = (error) => {
    state.pageFailed = error.message || String(error);
    status.textContent = `this browser could not run the network (${state.pageFailed}): the server computes`;
    showSwitch();
  };
  /** A history the page made (a step, a rewind): shown as a message's would be. */
  const show = (next) => {
    const h = state.history;
    const following = !h || state.shown >= h.steps.length;
    state.history = next;
    state.pageTook = true;
    if (following || state.shown > next.steps.length) state.shown = next.steps.length;
    draw();
  };
  /** One step in the page; false when it could not be taken (or the run changed meanwhile). */
  const pageStep = async () => {
    const h = state.history;
    try {
      const next = await engine.step(h);
      if (state.history !== h) return false;          // a new run, a Stop: not this step
      show(next);
      return true;
    } catch (error) {
      if (state.history === h) pageFailed(error);
      return false;
    }
  };
  const pageActions = {
    step: async () => {
      if (state.stepping || state.history.done) return;
      state.stepping = true;
      try {
        if (!(await pageStep()) && state.pageFailed) call("step");     // the server takes over
      } finally {
        state.stepping = false;
      }
    },
    run: async () => {
      state.frozen = false;
      setRunning(true);
      // the steps are taken in the worker, one after the other; each is shown as it comes,
      // until Stop (or a new run) makes the history another one than the run's last
      let mine = state.history;
      try {
        await engine.run(mine, (next) => {
          if (!state.running || state.history !== mine) return false;
          show(next);
          mine = next;
          return true;
        });
      } catch (error) {
        if (state.history === mine) pageFailed(error);
      }
      const failed = state.running && state.pageFailed;
      if (state.running) setRunning(false);
      if (failed) actions.run();                     // the server goes on from the step reached
    },
    stop: () => {
      state.shown = state.drawnShown;                 // the step on screen, as on the server
      setRunning(false);
      status.textContent = "stopped";
      show(cut(state.history, state.shown));
    },
    rewind: () => show(cut(state.history, state.shown)),
    branch: async () => {
      show(branched(state.history, state.shown, Math.max(0, Math.round(+seedBox.value || 0))));
      await pageActions.step();
    },
  };

  const actions = {
    reset: () => { state.frozen = false; trigger("reset"); },
    step: () => {
      if (state.running || !state.history) return;
      if (inPage()) pageActions.step();
      else call("step");
    },
    run: async () => {
      if (state.running || !state.history || state.history.done) return;
      if (inPage()) return pageActions.run();
      state.frozen = false;
      setRunning(true);
      if (await call("start")) follow();
      else setRunning(false);
    },
    stop: () => {
      if (!state.running) return;
      if (inPage()) return pageActions.stop();
      state.frozen = true;                    // nothing more is drawn from here on: the run
      state.shown = state.drawnShown;         // stops on the step on screen (not on one that
      setRunning(false);                      // came in but was not drawn yet)
      status.textContent = "stopped";
      call("stop", {shown: state.shown});
    },
    rewind: () => (inPage() ? pageActions.rewind() : call("rewind", {shown: state.shown})),
    branch: () => (inPage() ? pageActions.branch()
      : call("branch", {shown: state.shown, seed: Math.max(0, Math.round(+seedBox.value || 0))})),
    png: () => trigger("png", {what: "panel", shown: state.shown, ...at()}),
    film: () => trigger("png", {what: "film", shown: state.shown, ...at()}),
    gif: () => trigger("png", {what: "gif", shown: state.shown, ...at()}),
  };

  /** The switch as things stand: on where the page computes; off and greyed where it cannot. */
  const switchTitle = computeBox.parentElement.title;
  const showSwitch = () => {
    const can = supported() && !state.pageFailed && Boolean(state.history && state.history.compute);
    computeBox.disabled = !can;
    computeBox.checked = can && state.pageWanted;
    computeBox.parentElement.title = can ? switchTitle
      : state.pageFailed ? `the server computes: ${state.pageFailed}`
      : !supported() ? "this browser lacks WebAssembly or module workers: the server computes"
      : "this model has no graph for the page: the server computes";
  };
  computeBox.addEventListener("change", () => {
    state.pageWanted = computeBox.checked;
    status.textContent = state.pageWanted ? "computing in this browser" : "computing on the server";
    if (inPage()) engine.warm(state.history).catch(pageFailed);
  });
  if (!supported()) {
    status.textContent = "this browser cannot run the network (no WebAssembly or module workers): the server computes";
  }
  for (const [name, button] of Object.entries(buttons)) {
    button.addEventListener("click", actions[name]);
  }
  for (const name of ["step", "run", "stop"]) offer(name, root, actions[name]);

  slider.addEventListener("input", () => {
    state.shown = Math.min(+slider.value, state.history ? state.history.steps.length : 0);
    draw();
  });

  /** Fold a message into the run (the view's value, or a server function's reply), draw it. */
  const apply = (msg) => {
    const h = state.history;
    // run ids only grow: a message of an older run (a late reply) is stale, head or not
    if (!msg || (h && (msg.run < h.run || (!msg.head && msg.run === h.run && msg.seq <= h.seq)))) {
      return;
    }
    if (state.frozen && !msg.stopped && !msg.head) return;     // after Stop: its reply only
    const following = !h || state.shown >= h.steps.length;        // at the newest step held
    const {history, need} = applyMessage(h, msg);
    if (!history) return;
    state.history = history;
    if (msg.head || msg.stopped) state.frozen = false;
    if (msg.head) {
      setRunning(false);
      state.pageTook = false;
      showSwitch();
    }
    if (following || state.shown > history.steps.length) {
      state.shown = Math.min(history.taken, history.steps.length);
    }
    draw();
    if (need && !state.running) fill();
  };

  /** During a Run: ask for the steps after those held, again as soon as a reply is in (the
   * server answers once there is a new step), until the run is done, stopped, or has not moved
   * for a while. Drawing stays at most once a frame (`draw`). */
  const follow = async () => {
    if (state.following) return;
    state.following = true;
    let quiet = 0;
    try {
      while (state.running && !state.frozen) {
        const before = state.history ? state.history.steps.length : 0;
        const reply = await call("follow", {wait: true});
        if (!state.running || state.frozen) break;
        const h = state.history;
        if (h && h.done && h.steps.length >= h.taken) { setRunning(false); break; }
        const moved = h && h.steps.length !== before;
        quiet = moved || (reply && reply.active) ? 0 : quiet + 1;
        if (!reply || quiet > 2) { setRunning(false); break; }    // ended, refused or gone
      }
    } finally {
      state.following = false;
    }
  };

  /** Steps the page lacks (a reply cut short): ask until it holds them all. */
  const fill = async () => {
    if (state.filling) return;
    state.filling = true;
    try {
      for (let i = 0; i < 200; i++) {
        const h = state.history;
        if (!h || h.steps.length >= h.taken || state.running) break;
        const before = h.steps.length;
        if (!(await call("follow")) || state.history.steps.length === before) break;
      }
    } finally {
      state.filling = false;
    }
  };

  // ------------------------------------------------------------ drawing
  // the page works out what to show (a frame of lib/runpaint.js scenes, a few KB) and sizes the
  // canvases; the painter (a worker holding them, where the browser can) paints it
  const filmScene = (h, shown) => ({items: filmPicks(shown, config.film.frames).map((k) => ({
    label: config.film.label.replace("{t}", tBefore(h, k)), x: sampleAfter(h, k),
    x0: k > 0 ? h.steps[k - 1].x0 : null}))});
  const stepsScene = (h, shown, width, font, ratio) => {
    const key = `${h.run}:${width}:${font}:${ratio}`;
    return {key, n: h.n, ...stepsOnCurve(h, shown),
            logSnr: painter.hasCurve(key) ? null : Array.from(h.logSnr),
            title: width < 640 ? `the run's ${h.n} steps on log SNR(t)`
              : `the run's ${h.n} steps${h.n !== h.solverSteps ? " (network evaluations)" : ""} on log SNR(t) of the learned schedule, ${h.spacing}`};
  };
  const cssSize = (canvas, {w, h}) => {
    setProp(canvas.style, "width", `${w}px`);
    setProp(canvas.style, "height", `${h}px`);
  };
  const draw = everyFrame(() => {
    const h = state.history;
    if (!h || state.frozen) return;
    const ratio = window.devicePixelRatio || 1;
    const width = Math.max(280, root.clientWidth || 800);
    const font = fontSize(13);
    const shown = Math.min(state.shown, h.steps.length);
    const frame = {ratio, width, font, panel: panel(h, shown, config.panel)};
    cssSize(painter.canvases.panel, panelLayout(width, font, config));
    // during a Run the filmstrip and the steps' plot follow at a calmer pace than the panel:
    // each canvas redrawn is a layer the browser uploads again, and these two are the largest
    const now = performance.now();
    if (!state.running || now - state.slowDrawn >= SLOW_EVERY_MS) {
      state.slowDrawn = now;
      frame.film = filmScene(h, shown);
      frame.steps = stepsScene(h, shown, width, font, ratio);
      cssSize(painter.canvases.film, filmLayout(width, font, config, frame.film.items.length));
      cssSize(painter.canvases.steps, stepsSize(width));
    }
    painter.draw(frame);
    // only what changed is written: each write is a style and layout invalidation
    setText(captionEl, caption(h, shown));
    setProp(slider, "max", String(h.taken));
    setProp(slider, "value", String(shown));
    setText(kLabel, `${shown} (t = ${tBefore(h, shown)})`);
    for (const name of ["rewind", "branch"]) setProp(buttons[name], "disabled", state.running);
    for (const name of ["step", "run"]) setProp(buttons[name], "disabled", state.running || h.done);
    state.drawnShown = shown;
    state.drawn.push([performance.now(), shown]);
    if (state.drawn.length > 5000) state.drawn.splice(0, 2500);
  });
  watch("value", () => apply(props.value));
  window.addEventListener("le:presenter", () => draw());
  new ResizeObserver(() => draw()).observe(root);

  // for the tests and the benchmark: the panel's four pictures as painted (read back from the
  // canvas at the centre of every model pixel; a Promise), and the run as the page holds it
  test.panelPixels = () => painter.read();
  test.cells = () => {
    const h = state.history;
    return h && panel(h, Math.min(state.shown, h.taken), config.panel).cells
      .map((c) => (c ? Array.from(c) : null));
  };
  test.sampleAfter = (k) => Array.from(sampleAfter(state.history, k));
  test.actions = actions;
  test.inPage = inPage;
  test.sample = (taken) => {
    const x = state.history && engine.sample(state.history, taken);
    return x ? Array.from(x) : null;
  };
  apply(props.value);
}

/** Who paints the run's canvases: a worker holding them as OffscreenCanvases where the browser
 * can hand them over (their frames then reach the screen without this thread), else this page;
 * `?paint=page` asks for the page. Should the worker fail, the page takes over on fresh canvases. */
function makePainter(canvases, config) {
  let local = canvasPainter(canvases, config);
  let worker = null, curveKey = null, next = 0;
  const asked = new Map();                     // id -> resolve, of the worker's reads
  const painter = {
    kind: "page",
    canvases,                                  // the elements on the page (replaced on failure)
    /** Whether the painter has the log-SNR curve of this key (else the scene must bring it). */
    hasCurve: (key) => curveKey === key,
    draw(frame) {
      if (frame.steps && frame.steps.logSnr) curveKey = frame.steps.key;
      if (worker) worker.postMessage({type: "draw", frame});
      else local.draw(frame);
    },
    read: () => (worker
      ? new Promise((done) => { const id = ++next; asked.set(id, done); worker.postMessage({type: "read", id}); })
      : Promise.resolve(local.read())),
  };
  const can = typeof Worker !== "undefined" && typeof OffscreenCanvas !== "undefined"
    && typeof HTMLCanvasElement.prototype.transferControlToOffscreen === "function"
    && new URLSearchParams(location.search).get("paint") !== "page";
  if (!can) return painter;

  const toPage = (why) => {                    // fresh canvases in place of the handed-over ones
    console.warn(`Latent Explorer: the run's painter worker failed (${why}); the page paints`);
    for (const name of Object.keys(canvases)) {
      const fresh = canvases[name].cloneNode(false);
      canvases[name].replaceWith(fresh);
      canvases[name] = fresh;
    }
    worker.terminate();
    worker = null;
    local = canvasPainter(canvases, config);
    curveKey = null;
    painter.kind = "page";
    for (const done of asked.values()) done(null);
    asked.clear();
  };
  try {
    worker = new Worker(new URL("../compute/paint_worker.js", import.meta.url), {type: "module"});
    const offscreen = Object.fromEntries(Object.entries(canvases)
      .map(([name, canvas]) => [name, canvas.transferControlToOffscreen()]));
    worker.postMessage({type: "init", canvases: offscreen, config}, Object.values(offscreen));
  } catch (error) {
    if (worker) toPage(error.message || error);
    return painter;
  }
  worker.onerror = (event) => { event.preventDefault(); if (worker) toPage(event.message || "error"); };
  worker.onmessage = ({data}) => {
    if (data.error) console.error(`Latent Explorer: the run's painter: ${data.error}`);
    const done = asked.get(data.id);
    asked.delete(data.id);
    if (done) done(data.cells ?? null);
  };
  painter.kind = "worker";
  return painter;
}
