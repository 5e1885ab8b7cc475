// Networks run by the page itself: onnxruntime-web (served by the app, WebAssembly, on the
// threads lib/threads.js allows) in a module worker (compute/graph_worker.js) that owns one
// graph's session. This side only checks and posts arrays and gets arrays back: the main thread
// does no model work, so a slow call never blocks painting.
//
// `config` is what the server gives (ui/compute.py graph_config / page_compute): URLs relative
// to the page of the runtime and the graph, the graph's name, SHA-256, input and output names
// (and T for the VDM's eps-network); a caller may add `threads`, the count the session takes in
// an isolated page (lib/threads.js; a benchmark's or a test's count).
//
//     const net = await openGraph(config);        // any shipped graph: a decoder, say
//     const {x} = await net.run({z: {type: "float32", data: z, dims: [2, 32]}});
//     const eps = await openEps(config);          // the VDM's eps-network, with its run's steps
//     await eps.eps(x, 500);                      // x: Float32Array of B * 784, t: 1..T
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

/** What a graph's messages call it: its label from the server, else its name. */
export function labelOf(config) {
  return config.graph.label ?? config.graph.name ?? "network";
}

/** Start a worker on graph `config.graph` (its SHA-256 checked). Resolves to
 *  {run(feeds) -> Promise<{output name: Float32Array}>, terminate(), timings}; rejects with the
 *  reason it could not load. */
export async function openGraph(config) {
  return connectGraph(startWorker(labelOf(config)), absolute(config, document.baseURI));
}

/** The VDM's eps-network: `openGraph` with eps(x, t) -> Promise<Float32Array of B * 784> and a
 *  run's steps taken in the worker (`connect`). */
export async function openEps(config) {
  return connect(startWorker("eps network"), absolute(config, document.baseURI));
}

function startWorker(label) {
  if (!supported()) throw new Error(`${label}: this browser lacks WebAssembly or module workers`);
  return new Worker(new URL("../compute/graph_worker.js", import.meta.url), {type: "module"});
}

/** The client of any graph over a started worker (anything with postMessage, terminate and the
 *  on* handlers): each request gets an id, its answer settles that request. The worker answers
 *  one at a time, in order. Errors say `label` first. */
export async function connectGraph(worker, config, label = labelOf(config)) {
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
    if (data.error !== undefined) request.reject(new Error(`${label}: ${data.error}`));
    else request.resolve(data);
  };
  worker.onerror = (event) => {
    event.preventDefault?.();                    // reported here, not as an uncaught error
    worker.terminate();
    close(`${label}: the worker stopped (${event.message || "its script did not load"})`);
  };
  worker.onmessageerror = () => close(`${label}: a reply could not be read`);
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
  return {
    timings: opened.timings,                     // ms: runtime, fetch, sha256, session
    threads: opened.threads ?? 1,                // the session's threads (lib/threads.js)
    /** One call of the graph: feeds {input name: {type: "float32" | "int64", data, dims}}
     *  (copied: the caller keeps its arrays) -> {output name: Float32Array}. */
    run(feeds) {
      const copies = Object.fromEntries(Object.entries(feeds).map(([name, feed]) =>
        [name, {...feed, data: feed.data.slice()}]));
      return ask({type: "run", feeds: copies}, Object.values(copies).map((f) => f.data.buffer))
        .then((reply) => reply.outputs);
    },
    // the raw channel, for clients built on this one (`connect`)
    ask,
    post: (message) => { if (!closed) worker.postMessage(message); },
    terminate() {
      worker.terminate();
      close(`${label}: terminated`);
    },
  };
}

/** The VDM's eps-network over a started worker: `connectGraph` with eps(x, t) and steps. */
export async function connect(worker, config) {
  const net = await connectGraph(worker, config, "eps network");
  const {ask, post} = net;
  const T = config.graph.T;
  return {
    timings: net.timings,
    threads: net.threads,
    terminate: net.terminate,
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
        if (halt) post({type: "halt", target: id});
      }).then((reply) => reply.done);
      return {done, halt() {
        halt = true;
        if (id !== null) post({type: "halt", target: id});
      }};
    },
  };
}
