// The latent walk (VAE and HVAE tabs): A | lerp(w) | slerp(w) | pixels (1 - w) A + w B | B on
// one canvas, at the w its slider or Play sets, painted as it moves, with no request per frame.
//
// props.value (ui/vae/walk.py message), once per A and B (and the HVAE's layer): A and B as
// floats, the endpoint latents z_A, z_B, the decoder's latent shapes, and `compute`, the
// decoder graph's config (ui/compute.py graph_config, or null). The page computes the path
// latents (lib/walk.js, the server's formulas) and decodes them in a worker (lib/eps.js
// openGraph); the pixel cross-fade is plain arithmetic. Where the page cannot decode
// (?compute=server, the switch off, no WebAssembly or module workers, no usable graph, the
// graph failing) the view's server function `frames` decodes one stop a call; the status line
// says once which path is in use. Frames are kept per stop until A or B change.

import {float32FromBase64, uint8FromBase64} from "../lib/codec.js";
import {everyFrame, fit, fontSize, grey, picture, readCells} from "../lib/draw.js";
import {openGraph, supported} from "../lib/eps.js";
import {toUint8} from "../lib/mix.js";
import {crossFade, decoderFeeds, norm, pathLatents, walkW} from "../lib/walk.js";

const SIDE = 28, PIXELS = SIDE * SIDE;
const PLAY_STEP_MS = 30;              // Play: a sweep from A to B in ~3 s
const SERVER = "the server decodes each frame";

export function mount({element, props, watch, server, config}) {
  const root = document.createElement("div");
  root.className = "le-walk";
  root.innerHTML = `
    <div class="le-toolbar" role="toolbar" aria-label="latent walk">
      <button class="le-btn primary" data-act="play" title="sweep w from A to B and back">Play</button>
      <label class="le-w-label">w <input class="le-w" type="range" min="0" max="${config.steps - 1}"
        step="1" value="${config.start}" aria-label="w, from A (0) to B (1)"></label>
      <b class="le-w-value"></b>
      <label class="le-compute" title="decode in this browser (WebAssembly, in a worker): the server sends A and B once; off: the server decodes every frame">
        <input class="le-compute-box" type="checkbox"> decode in this browser</label>
      <span class="le-status" aria-live="polite"></span>
    </div>
    <canvas class="le-walk-frames" aria-label="A, lerp, slerp and pixel cross-fade at w, B"></canvas>
    <p class="le-readout"></p>`;
  element.appendChild(root);
  const q = (selector) => root.querySelector(selector);
  const [range, wValue, status, readout] = [q(".le-w"), q(".le-w-value"), q(".le-status"), q(".le-readout")];
  const [canvas, computeBox, playButton] = [q(".le-walk-frames"), q(".le-compute-box"), q("[data-act=play]")];

  const askedServer = new URLSearchParams(location.search).get("compute") === "server";
  const state = {data: null, key: null, k: config.start, frames: new Map(), shown: null,
                 busy: false, error: null, playing: false, dir: 1, lastStep: 0,
                 pageWanted: supported() && !askedServer, switched: false, pageFailed: null,
                 net: null, opening: null, requests: 0, painted: [], layout: null};

  // ------------------------------------------------------------ which path decodes
  const inPage = () => Boolean(state.pageWanted && !state.pageFailed && state.data?.compute);
  /** Why the server decodes (null: the page does). */
  const serverReason = () => {
    if (!supported()) return "this browser lacks WebAssembly or module workers";
    if (state.pageFailed) return `this browser could not run the decoder (${state.pageFailed})`;
    if (state.data && !state.data.compute) return "the app has no usable decoder graph for the page (missing, damaged or stale)";
    if (!state.pageWanted) return askedServer && !state.switched ? "?compute=server" : "the switch is off";
    return null;
  };
  /** The status line: which path is in use, said once (and what went wrong, if anything). */
  const say = () => {
    const reason = serverReason();
    const label = state.data?.compute?.graph?.label ?? "decoder";
    const loading = !reason && state.net?.url !== state.data?.compute?.graph?.url;
    const path = !state.data ? "waiting for A and B from the server..."
      : reason ? `${reason}: ${SERVER}`
      : loading ? `loading the ${label} into this browser...`
      : `decoding in this browser (${label}, WebAssembly in a worker)`;
    const text = state.error ? `${path}; the server could not decode (${state.error})` : path;
    if (status.textContent !== text) status.textContent = text;
    const can = supported() && !state.pageFailed && Boolean(state.data?.compute);
    computeBox.disabled = !can;
    computeBox.checked = can && state.pageWanted;
  };

  /** The worker on this graph (opened once per graph URL; the one before is terminated). */
  const network = (compute) => {
    const url = compute.graph.url;
    if (state.net?.url === url) return Promise.resolve(state.net.client);
    if (state.opening?.url !== url) {
      const opening = {url};
      opening.promise = openGraph(compute).then((client) => {
        state.net?.client.terminate();
        state.net = {url, client};
        say();
        return client;
      }).finally(() => { if (state.opening === opening) state.opening = null; });
      state.opening = opening;
    }
    return state.opening.promise;
  };

  /** Both paths' frames at stop k of `data`: {lerp, slerp} uint8 (784 each), and in the page
   *  also x (the decoder's float output, 2 * 784) and the path latents. */
  const frameAt = async (k, data) => {
    const w = walkW(k, data.steps);
    if (inPage()) {
      try {
        const net = await network(data.compute);
        const latents = pathLatents(data.za, data.zb, w);
        const {inputs, outputs} = data.compute.graph;
        const feeds = decoderFeeds(inputs, data.shapes, [latents.lerp, latents.slerp], data.layer);
        const x = (await net.run(feeds))[outputs[0]];
        return {lerp: toUint8(x.subarray(0, PIXELS)), slerp: toUint8(x.subarray(PIXELS)), x, latents};
      } catch (error) {
        if (state.data !== data) throw error;
        state.pageFailed = error.message || String(error);   // the server takes over
        say();
      }
    }
    state.requests += 1;
    const reply = await server.frames({dataset: data.dataset, layer: data.layer,
                                       za: data.zaText, zb: data.zbText, k});
    if (!reply || reply.error) throw new Error(reply?.error ?? "no answer");
    return {lerp: uint8FromBase64(reply.lerp), slerp: uint8FromBase64(reply.slerp)};
  };

  /** Decode the stop shown until it is held: one call at a time, always for the latest stop
   *  (the stops a drag passes while a call runs are skipped). */
  const pump = async () => {
    if (state.busy) return;
    state.busy = true;
    try {
      while (state.data && !state.frames.has(state.k)) {
        const data = state.data, frames = state.frames, k = state.k;
        let frame;
        try {
          frame = await frameAt(k, data);
        } catch (error) {
          if (state.data !== data) continue;
          state.error = error.message || String(error);
          say();
          draw();
          break;
        }
        // new A and B meanwhile, or the other path chosen: that frame is not shown
        if (state.data !== data || state.frames !== frames) continue;
        frames.set(k, frame);
        if (state.error) { state.error = null; say(); }
        draw();
      }
    } finally {
      state.busy = false;
    }
  };

  // ------------------------------------------------------------ moving w
  const setK = (k) => {
    state.k = Math.max(0, Math.min(config.steps - 1, Math.round(k)));
    draw();
    pump();
  };
  range.addEventListener("input", () => setK(+range.value));
  const play = (on) => {
    state.playing = on;
    playButton.textContent = on ? "Pause" : "Play";
    if (on) requestAnimationFrame(tick);
  };
  const tick = (now) => {
    if (!state.playing) return;
    if (root.offsetParent === null) return play(false);       // its tab left: Play stops
    // the next stop once this one is painted: Play never runs ahead of the decoder
    if (state.frames.has(state.k) && now - state.lastStep >= PLAY_STEP_MS) {
      if (state.k + state.dir < 0 || state.k + state.dir > config.steps - 1) state.dir = -state.dir;
      state.lastStep = now;
      setK(state.k + state.dir);
    }
    requestAnimationFrame(tick);
  };
  playButton.addEventListener("click", () => play(!state.playing));
  computeBox.addEventListener("change", () => {
    state.pageWanted = computeBox.checked;
    state.switched = true;
    state.frames = new Map();                              // shown again by the path chosen
    say();
    pump();
  });

  // ------------------------------------------------------------ the server's message
  const read = () => {
    const v = props.value;
    const key = v && v.za ? [v.model, v.dataset, v.layer, v.za, v.zb, v.xa, v.xb,
                             v.compute?.graph?.url].join("|") : null;
    if (key === state.key) return;
    state.key = key;
    state.frames = new Map();
    state.shown = null;
    state.error = null;
    if (!key) {                     // cleared (a dataset without this model): nothing to walk
      state.data = null;
      return;
    }
    const xa = float32FromBase64(v.xa), xb = float32FromBase64(v.xb);
    state.data = {...v, xa, xb, pa: toUint8(xa), pb: toUint8(xb), za: float32FromBase64(v.za),
                  zb: float32FromBase64(v.zb), zaText: v.za, zbText: v.zb};
  };

  // ------------------------------------------------------------ painting
  const draw = everyFrame(() => paint());
  const paint = () => {
    const d = state.data;
    const k = state.k;
    range.value = String(k);
    const w = walkW(k, config.steps);
    wValue.textContent = w.toFixed(2);
    if (state.frames.has(k)) state.shown = k;          // else the last stop decoded stays
    const frame = state.shown === null ? null : state.frames.get(state.shown);
    const layer = d?.layer ? ` z_${d.layer}` : "";
    const at = state.shown === null || state.shown === k ? "" : ` (w = ${walkW(state.shown, config.steps).toFixed(2)})`;
    const cells = [["A", d?.pa], [`lerp${layer}${at}`, frame?.lerp], [`slerp${layer}${at}`, frame?.slerp],
                   ["pixels", d ? crossFade(d.xa, d.xb, w) : null], ["B", d?.pb]];
    state.layout = drawCells(canvas, cells, Math.max(280, root.clientWidth || 800), config,
                             !d ? "waiting for A and B..." : state.error ? "no frame" : "decoding...");
    readout.textContent = d ? numbers(d, w) : "";
    state.painted.push([performance.now(), k, state.shown]);
    if (state.painted.length > 5000) state.painted.splice(0, 2500);
  };

  watch("value", () => { read(); say(); draw(); pump(); });
  window.addEventListener("le:presenter", () => draw());
  new ResizeObserver(() => draw()).observe(root);
  read();
  say();
  draw();
  pump();

  // for the tests and the benchmark: this view's state, its frames and what it painted
  ((window.latentExplorer ??= {}).walk ??= {})[config.model] = {
    state, set: setK, play, inPage,
    ends: () => state.data && {za: Array.from(state.data.za), zb: Array.from(state.data.zb)},
    frame: (k) => {
      const f = state.frames.get(k);
      const list = (a) => (a ? Array.from(a) : null);
      return f && {lerp: list(f.lerp), slerp: list(f.slerp), x: list(f.x),
                   latents: f.latents && {lerp: list(f.latents.lerp), slerp: list(f.latents.slerp)}};
    },
    cells: () => state.layout && readCells(canvas, state.layout,
                                            canvas.width / parseFloat(canvas.style.width)),
  };
}

/** |z| along both paths at w against the endpoints' and the sqrt(D) shell of N(0, I). */
function numbers(d, w) {
  const {lerp, slerp} = pathLatents(d.za, d.zb, w);
  const f = (v) => v.toFixed(2);
  return `w = ${f(w)} · |z|: lerp ${f(norm(lerp))}, slerp ${f(norm(slerp))}, A ${f(norm(d.za))}, ` +
         `B ${f(norm(d.zb))} · √D = ${f(Math.sqrt(d.za.length))}`;
}

/** The labelled pictures in one row (a wide screen) or rows of three; a cell without a
 *  picture is grey with `empty` written in it. Returns each picture's square. */
function drawCells(canvas, cells, width, config, empty) {
  const gap = 8;
  const font = fontSize(13);
  const labelH = Math.round(font * 1.6);
  const columns = width >= cells.length * (3 * SIDE + gap) + gap ? cells.length : 3;
  const cell = SIDE * Math.max(2, Math.min(7, Math.floor((width - (columns + 1) * gap) / columns / SIDE)));
  const rows = Math.ceil(cells.length / columns);
  const w = columns * (cell + gap) + gap, h = rows * (cell + labelH + gap) + gap;
  const ctx = fit(canvas, w, h);
  ctx.fillStyle = grey(config.background);
  ctx.fillRect(0, 0, w, h);
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  return cells.map(([label, pixels], i) => {
    const x = gap + (i % columns) * (cell + gap);
    const y = gap + Math.floor(i / columns) * (cell + labelH + gap) + labelH;
    ctx.font = `${Math.min(font, Math.floor(cell / 6))}px sans-serif`;
    ctx.fillStyle = "#ebebeb";
    ctx.fillText(label, x + cell / 2, y - labelH / 2);
    if (pixels) {
      picture(ctx, pixels, x, y, cell);
    } else {
      ctx.fillStyle = grey(config.background + 20);
      ctx.fillRect(x, y, cell, cell);
      ctx.fillStyle = "#ebebeb";
      ctx.fillText(empty, x + cell / 2, y + cell / 2);
    }
    return {x, y, size: cell};
  });
}
