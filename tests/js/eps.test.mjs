// lib/eps.js without a browser: its checks of x and t, the config's URLs, and the client's
// bookkeeping against a fake worker (ids, answers in order, errors, terminate). The real worker
// and onnxruntime-web run in Chromium: tests/test_page_eps.py.
import assert from "node:assert/strict";
import {test} from "node:test";

import {PIXELS, absolute, batchOf, connect, supported, timesteps} from "../../ui/static/lib/eps.js";

const CONFIG = {
  ort: "gradio_api/file=/app/ui/static/vendor/onnxruntime-web/ort.wasm.min.mjs",
  wasm: {mjs: "gradio_api/file=/app/v/ort-wasm-simd-threaded.mjs",
         wasm: "gradio_api/file=/app/v/ort-wasm-simd-threaded.wasm"},
  dataset: "mnist",
  graph: {url: "gradio_api/file=/data/mnist/vdm_eps.onnx", sha256: "ab", T: 1000,
          inputs: ["x_t", "t"], outputs: ["eps"]},
};

/** A worker that records what it is sent and answers when told to. */
class FakeWorker {
  constructor() { this.sent = []; this.terminated = false; }
  postMessage(message, transfer = []) { this.sent.push({message, transfer}); }
  terminate() { this.terminated = true; }
  reply(data) { this.onmessage({data}); }
}

async function opened() {
  const worker = new FakeWorker();
  const client = connect(worker, CONFIG);
  worker.reply({id: 0, timings: {fetch: 1, sha256: 2, session: 3}, threads: 2});
  return {worker, net: await client};
}

test("x must be whole 28x28 images of float32", () => {
  assert.equal(batchOf(new Float32Array(3 * PIXELS)), 3);
  assert.throws(() => batchOf(new Float32Array(PIXELS + 1)), /785 values/);
  assert.throws(() => batchOf(new Float32Array(0)), RangeError);
  assert.throws(() => batchOf(new Float64Array(PIXELS)), /Float32Array/);
});

test("t is one step for every image or one per image, whole, in 1..T", () => {
  assert.deepEqual(Array.from(timesteps(7, 3, 1000)), [7n, 7n, 7n]);
  assert.deepEqual(Array.from(timesteps([1, 1000], 2, 1000)), [1n, 1000n]);
  assert.ok(timesteps(5, 1, 1000) instanceof BigInt64Array);
  assert.throws(() => timesteps([1, 2, 3], 2, 1000), /3 steps t for 2 images/);
  for (const bad of [0, 1001, 2.5, NaN, "3"]) {
    assert.throws(() => timesteps([bad], 1, 1000), /valid: a whole number in 1\.\.1000/);
  }
});

test("the config's URLs are made absolute against the page, the rest kept", () => {
  const got = absolute(CONFIG, "http://127.0.0.1:7860/sub/");
  assert.equal(got.ort, "http://127.0.0.1:7860/sub/gradio_api/file=/app/ui/static/vendor/" +
               "onnxruntime-web/ort.wasm.min.mjs");
  assert.equal(got.wasm.wasm, "http://127.0.0.1:7860/sub/gradio_api/file=/app/v/" +
               "ort-wasm-simd-threaded.wasm");
  assert.equal(got.graph.url, "http://127.0.0.1:7860/sub/gradio_api/file=/data/mnist/vdm_eps.onnx");
  assert.deepEqual({...got.graph, url: 0}, {...CONFIG.graph, url: 0});
});

test("without module workers (Node) it says so", () => {
  assert.equal(supported(), false);
});

test("requests carry ids; answers settle their own request, x stays the caller's", async () => {
  const {worker, net} = await opened();
  assert.deepEqual(worker.sent[0].message, {type: "open", config: CONFIG, id: 0});
  assert.deepEqual(net.timings, {fetch: 1, sha256: 2, session: 3});
  assert.equal(net.threads, 2);
  const x = new Float32Array(2 * PIXELS).fill(0.5);
  const first = net.eps(x, 10);
  const second = net.eps(x.subarray(0, PIXELS), [20]);
  const [a, b] = worker.sent.slice(1);
  assert.deepEqual([a.message.id, b.message.id], [1, 2]);
  assert.deepEqual(a.transfer, [a.message.x.buffer, a.message.t.buffer]);   // moved, not copied
  assert.notEqual(a.message.x.buffer, x.buffer);
  assert.equal(x.length, 2 * PIXELS);                                         // still the caller's
  assert.deepEqual(Array.from(b.message.t), [20n]);
  worker.reply({id: 1, eps: new Float32Array([1])});
  worker.reply({id: 2, eps: new Float32Array([2])});
  assert.deepEqual(Array.from(await first), [1]);
  assert.deepEqual(Array.from(await second), [2]);
});

test("a bad x or t is refused before anything is sent", async () => {
  const {worker, net} = await opened();
  await assert.rejects(net.eps(new Float32Array(10), 1), /not a whole number of 28x28/);
  await assert.rejects(net.eps(new Float32Array(PIXELS), 0), /1\.\.1000/);
  assert.equal(worker.sent.length, 1);
});

test("the worker's error rejects that request with its message", async () => {
  const {worker, net} = await opened();
  const call = net.eps(new Float32Array(PIXELS), 1);
  worker.reply({id: 1, error: "session failed"});
  await assert.rejects(call, {message: "eps network: session failed"});
});

test("a failed open rejects, and stops the worker", async () => {
  const worker = new FakeWorker();
  const client = connect(worker, CONFIG);
  worker.reply({id: 0, error: "the graph's SHA-256 is 00, not ab"});
  await assert.rejects(client, /eps network: the graph's SHA-256 is 00, not ab/);
  assert.ok(worker.terminated);
});

test("a worker that dies rejects what is pending and what comes after", async () => {
  const {worker, net} = await opened();
  const call = net.eps(new Float32Array(PIXELS), 1);
  let prevented = false;
  worker.onerror({message: "boom", preventDefault: () => { prevented = true; }});
  await assert.rejects(call, /the worker stopped \(boom\)/);
  await assert.rejects(net.eps(new Float32Array(PIXELS), 1), /the worker stopped/);
  assert.ok(prevented && worker.terminated);
});

test("terminate rejects what is pending", async () => {
  const {worker, net} = await opened();
  const call = net.eps(new Float32Array(PIXELS), 1);
  net.terminate();
  await assert.rejects(call, /terminated/);
  assert.ok(worker.terminated);
});
