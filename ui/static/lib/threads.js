// How many threads a page's onnxruntime-web session computes on, and the session's options.
// Pure: the worker (compute/graph_worker.js) asks, node --test checks (tests/js/threads.test.mjs).

/** Most threads one session takes: the graphs are small (a 28x28 U-Net: one call splits into
 *  little work per thread), and the page may hold up to three sessions (eps, two decoders). */
export const MAX_THREADS = 4;

/** Threads for one session: 1 unless the page is cross-origin isolated (threads share a
 *  SharedArrayBuffer, which only such a page has; ui/compute.py CrossOriginIsolation), else
 *  one core fewer than the machine has (the page's main thread, its compositor and, locally,
 *  the app need one), at most MAX_THREADS; or `asked` (a config's `threads`: a benchmark's or
 *  a test's count), at most MAX_THREADS. Measured on a 2-core machine (BENCHMARKS.md, "Page
 *  run"): a session on both cores made one call 1.1-1.3x faster, but a 1000-step run in the
 *  page took 23.5 s with 60 main-thread tasks over 50 ms, against 14.3 s and 6 on one thread. */
export function threadsFor(isolated, cores, asked = null) {
  if (!isolated) return 1;
  if (Number.isInteger(asked) && asked > 0) return Math.min(asked, MAX_THREADS);
  const spare = Number.isInteger(cores) && cores > 1 ? cores - 1 : 1;
  return Math.min(MAX_THREADS, spare);
}

/** The options of a session on `threads` threads: the wasm backend, every graph optimisation;
 *  with more than one thread, threads that sleep between calls instead of spinning (a spinning
 *  thread would hold a core the page's main thread needs to paint). */
export function sessionOptions(threads) {
  const options = {executionProviders: ["wasm"], graphOptimizationLevel: "all"};
  if (threads > 1) options.extra = {session: {intra_op: {allow_spinning: "0"}}};
  return options;
}
