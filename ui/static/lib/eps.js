// The VDM's noise prediction eps_theta(x_t, t), run by the page itself: onnxruntime-web (served
// by the app, WebAssembly, one thread) in a module worker (compute/eps_worker.js) that owns the
// session. This side only checks and posts arrays and gets arrays back: the main thread does no
// model work, so a slow step never blocks painting.
//
// `config` is what the server gives (ui/compute.py page_compute): URLs relative to the page of
// the runtime and the graph, the graph's SHA-256, its input and output names and T.
//
//     const net = await openEps(config);          // the worker loads runtime and graph
//     const eps = await net.eps(x, 500);          // x: Float32Array of B * 784, t: 1..T
//     net.terminate();

export const PIXELS = 28 * 28;                    // one image, (1, 28, 28)

/** Whether this browser can run it: WebAssembly, Worker, and module workers. */
export function supported() {
  if (typeof WebAssembly !== "object" || typeof Worker !== "function") return false;
  // a module worker reads `type` from its options before it parses the URL; "blob://" then
  // fails to parse, so nothing starts (the usual feature test)
  let module = false;
  try {
    new Worker("blob://", {get type() { module = true; return "module"; }});
  } catch { /* the bad URL, as intended */ }
  return module;
}

/** The number of images in x (a Float32Array of B * 784 values, B >= 1). */
export function batchOf(x) {
  if (!(x instanceof Float32Array)) throw new TypeError("x must be a Float32Array");
  if (x.length === 0 || x.length % PIXELS !== 0) {
    throw new RangeError(`x has ${x.length} values, not a whole number of 28x28 images (784 each)`);
  }
  return x.length / PIXELS;
}

/** t as the graph takes it: BigInt64Array (B,) of whole steps in 1..T; a number is every
 *  image's step. */
export function timesteps(t, batch, T) {
  const steps = typeof t === "number" ? new Array(batch).fill(t) : Array.from(t);
  if (steps.length !== batch) throw new RangeError(`${steps.length} steps t for ${batch} images`);
  for (const s of steps) {
    if (!Number.isInteger(s) || s < 1 || s > T) {
      throw new RangeError(`t = ${s} is not valid; valid: a whole number in 1..${T}`);
    }
  }
  return BigInt64Array.from(steps, BigInt);
}

/** The config with every URL made absolute against `base` (a worker resolves URLs against its
 *  own script, not the page). */
export function absolute(config, base) {
  const url = (u) => new URL(u, base).href;
  return {...config, ort: url(config.ort),
          wasm: {mjs: url(config.wasm.mjs), wasm: url(config.wasm.wasm)},
          graph: {...config.graph, url: url(config.graph.url)}};
}

/** Start the worker and load the runtime and the graph in it (its SHA-256 checked). Resolves
 *  to {eps(x, t) -> Promise<Float32Array of B * 784>, terminate(), timings}; rejects with the
 *  reason it could not load. */
export async function openEps(config) {
  if (!supported()) {
    throw new Error("eps network: this browser lacks WebAssembly or module workers");
  }
  const worker = new Worker(new URL("../compute/eps_worker.js", import.meta.url), {type: "module"});
  return connect(worker, absolute(config, document.baseURI));
}

/** The client over a started worker (anything with postMessage, terminate and the on*
 *  handlers): each request gets an id, its answer settles that request. The worker answers one
 *  at a time, in order. */
export async function connect(worker, config) {
  const pending = new Map();                     // id -> {resolve, reject}
  let next = 0;
  let closed = null;                             // why no request can be made any more
  const close = (reason) => {
    closed = closed ?? reason;
    for (const {reject} of pending.values()) reject(new Error(closed));
    pending.clear();
  };
  worker.onmessage = ({data}) => {
    const request = pending.get(data.id);
    if (!request) return;
    if (data.step !== undefined) {               // one step of a "steps" request: not the end
      request.progress?.(data.step);
      return;
    }
    pending.delete(data.id);
    if (data.error !== undefined) request.reject(new Error(`eps network: ${data.error}`));
    else request.resolve(data);
  };
  worker.onerror = (event) => {
    event.preventDefault?.();                    // reported here, not as an uncaught error
    worker.terminate();
    close(`eps network: the worker stopped (${event.message || "its script did not load"})`);
  };
  worker.onmessageerror = () => close("eps network: a reply could not be read");
  const ask = (message, transfer = [], progress = null, sent = () => {}) =>
    new Promise((resolve, reject) => {
      if (closed) return reject(new Error(closed));
      const id = next++;
      pending.set(id, {resolve, reject, progress});
      worker.postMessage({...message, id}, transfer);
      sent(id);
    });

  let opened;
  try {
    opened = await ask({type: "open", config});
  } catch (error) {
    worker.terminate();
    close(error.message);
    throw error;
  }
  const T = config.graph.T;
  return {
    timings: opened.timings,                     // ms: runtime, fetch, sha256, session
    /** eps_theta(x_t, t) of B images: x (B * 784 float32, row-major), t a step or B steps. */
    eps(x, t) {
      let steps;
      try {
        steps = timesteps(t, batchOf(x), T);
      } catch (error) {
        return Promise.reject(error);
      }
      const xs = x.slice();                      // the caller keeps x; the copy is moved
      return ask({type: "eps", x: xs, t: steps}, [xs.buffer, steps.buffer])
        .then((reply) => reply.eps);
    },
    /** A reverse run's steps k, k + 1, ... taken in the worker, one after the other, from x
     *  (the sample before step k) by `rules` (StepRules, one a step) with `noise` (z or null, one
     *  a step) and x0Before (step k - 1's x0_hat, or null): `onStep({k, x0, eps, x})` gets each
     *  (Float32Arrays). Returns {done: Promise of the steps taken, halt()}: halt ends it after
     *  the step under way. */
    steps({x, k, rules, noise, x0Before = null}, onStep) {
      let id = null;
      let halt = false;
      const message = {type: "steps", x: x.slice(), k, rules, noise,
                       x0Before: x0Before ? x0Before.slice() : null};
      const done = ask(message, [], onStep, (sentId) => {
        id = sentId;
        if (halt) worker.postMessage({type: "halt", target: id});
      }).then((reply) => reply.done);
      return {done, halt() {
        halt = true;
        if (id !== null && !closed) worker.postMessage({type: "halt", target: id});
      }};
    },
    terminate() {
      worker.terminate();
      close("eps network: terminated");
    },
  };
}
