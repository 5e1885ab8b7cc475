// The worker that owns one ONNX graph's onnxruntime-web session (lib/eps.js starts it and is
// its only client): any graph the app ships (ui/compute.py GRAPHS), named by its config. Messages,
// each with an `id` its answer repeats:
//   {type: "open", config}  -> {timings: {runtime, fetch, sha256, session} ms, threads}  load
//                              both; threads: how many the session computes on (threadsFor)
//   {type: "run", feeds}    -> {outputs: {name: Float32Array}}  one call of the graph; feeds:
//                              {input name: {type: "float32" | "int64", data, dims}}
//   the VDM's eps-network (its inputs x_t and t, in the order onnx.json names them):
//   {type: "eps", x, t}     -> {eps: Float32Array (B * 784)}  x: Float32Array (B * 784),
//                                                            t: BigInt64Array (B)
//   {type: "steps", x, k, rules, noise, x0Before}
//                           -> {step: {k, x0, eps, x}} after every step, then {done: taken}
//       a reverse run's steps k, k + 1, ... taken here: eps_hat from the session, the step from
//       its rule (lib/sampler.js's takeStep; noise[i]: step k + i's z or null; x0Before: step
//       k - 1's x0_hat, which a 2nd-order rule reads, or null), one after the
//       other with no round trip to the page between them, until the rules end or
//   {type: "halt", target}  (answered at once, out of turn) stops request `target` after the
//                           step under way
//   a failure               -> {error: "what went wrong"}
// Requests are handled one after another, in the order they came (one session runs one call
// at a time), and the arrays travel as transferred buffers, not copies.

import {sessionOptions, threadsFor} from "../lib/threads.js";
import {takeStep} from "../lib/sampler.js";

let ort = null;
let session = null;
let names = null;                       // {inputs, outputs} of the graph, as onnx.json names them
let queue = Promise.resolve();
const halted = new Set();               // ids of "steps" requests to end

self.onmessage = ({data}) => {
  if (data.type === "halt") {
    halted.add(data.target);
    return;
  }
  queue = queue.then(() => handle(data)).catch((error) => {
    self.postMessage({id: data.id, error: String(error?.message ?? error)});
  });
};

async function handle(message) {
  if (message.type === "open") {
    const timings = await open(message.config);
    self.postMessage({id: message.id, timings, threads: ort.env.wasm.numThreads});
  } else if (message.type === "run") {
    const outputs = await runFeeds(message.feeds);
    self.postMessage({id: message.id, outputs}, Object.values(outputs).map((o) => o.buffer));
  } else if (message.type === "eps") {
    const eps = await epsOf(message.x, message.t);
    self.postMessage({id: message.id, eps}, [eps.buffer]);
  } else if (message.type === "steps") {
    const taken = await steps(message);
    self.postMessage({id: message.id, done: taken});
  } else {
    throw new Error(`unknown request ${JSON.stringify(message.type)}; valid: open, run, eps, steps, halt`);
  }
}

/** Import the runtime, fetch the graph, check its SHA-256, create the session; the ms each
 *  took (the session's include fetching and compiling the runtime's wasm). */
async function open(config) {
  if (session) throw new Error("this worker has a graph already");
  const t0 = performance.now();
  ort = await import(config.ort);
  // threads only in a cross-origin isolated page (SharedArrayBuffer); elsewhere ort would warn
  // before falling back to one
  ort.env.wasm.numThreads = threadsFor(self.crossOriginIsolated, navigator.hardwareConcurrency,
                                       config.threads);
  ort.env.wasm.wasmPaths = config.wasm;
  const t1 = performance.now();
  const response = await fetch(config.graph.url);
  if (!response.ok) throw new Error(`${config.graph.url} answered ${response.status}`);
  const bytes = await response.arrayBuffer();
  const t2 = performance.now();
  // a browser may hold an older graph under the same URL (exported again since)
  if (globalThis.crypto?.subtle) {
    const digest = hex(await crypto.subtle.digest("SHA-256", bytes));
    if (digest !== config.graph.sha256) {
      throw new Error(`the graph's SHA-256 is ${digest}, not ${config.graph.sha256} as the ` +
                      "server recorded: it is not the graph the app ships; reload the page");
    }
  } else {
    console.warn(`${config.graph.label ?? "network"}: no crypto.subtle here (not a secure context): graph not checked`);
  }
  const t3 = performance.now();
  session = await ort.InferenceSession.create(new Uint8Array(bytes),
                                              sessionOptions(ort.env.wasm.numThreads));
  names = {inputs: config.graph.inputs, outputs: config.graph.outputs};
  return {runtime: t1 - t0, fetch: t2 - t1, sha256: t3 - t2, session: performance.now() - t3};
}

/** Every output of one call of the graph on `feeds` ({name: {type, data, dims}}), each in a
 *  buffer of its own, to be transferred. */
async function runFeeds(feeds) {
  if (!session) throw new Error("no graph loaded: open first");
  const tensors = {};
  for (const name of names.inputs) {
    const feed = feeds[name];
    if (!feed) throw new Error(`no input ${JSON.stringify(name)}; the graph takes ${names.inputs.join(", ")}`);
    tensors[name] = new ort.Tensor(feed.type, feed.data, feed.dims);
  }
  const results = await session.run(tensors);
  return Object.fromEntries(names.outputs.map((name) => [name, owned(results[name].data)]));
}

/** eps_theta(x_t, t) for B images; the output's own buffer, to be transferred. */
async function epsOf(x, t) {
  const [xName, tName] = names ? names.inputs : [];
  const outputs = await runFeeds({[xName]: {type: "float32", data: x, dims: [t.length, 1, 28, 28]},
                                  [tName]: {type: "int64", data: t, dims: [t.length]}});
  return outputs[names.outputs[0]];
}

/** The array in a buffer of exactly its size (what transfer needs). */
function owned(data) {
  return data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : data.slice();
}

/** Take the run's steps from k on, posting each; the number taken. */
async function steps({id, x, k, rules, noise, x0Before}) {
  let taken = 0;
  let before = x0Before || null;                // x0_hat of the step before (a 2nd-order rule)
  try {
    for (let i = 0; i < rules.length && !halted.has(id); i++) {
      const rule = rules[i];
      const epsHat = await epsOf(x, BigInt64Array.of(BigInt(rule.t)));
      const out = takeStep(rule, x, epsHat, noise[i], before);
      taken += 1;
      x = out.x.slice();                          // the next step's input (out.x is sent)
      before = out.x0.slice();
      self.postMessage({id, step: {k: k + i, x0: out.x0, eps: out.eps, x: out.x}},
                       [out.x0.buffer, out.eps.buffer, out.x.buffer]);
    }
  } finally {
    halted.delete(id);
  }
  return taken;
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}
