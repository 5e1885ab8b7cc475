// lib/threads.js: how many threads a session gets, and its options.
import assert from "node:assert/strict";
import {test} from "node:test";

import {MAX_THREADS, sessionOptions, threadsFor} from "../../ui/static/lib/threads.js";

test("a page that is not cross-origin isolated computes on one thread", () => {
  for (const cores of [1, 2, 8, 64, undefined]) assert.equal(threadsFor(false, cores), 1);
});

test("an isolated page leaves one core to the page, and takes at most MAX_THREADS", () => {
  assert.equal(threadsFor(true, 1), 1);
  assert.equal(threadsFor(true, 2), 1);
  assert.equal(threadsFor(true, 3), 2);
  assert.equal(threadsFor(true, 4), 3);
  assert.equal(threadsFor(true, 64), MAX_THREADS);
});

test("a browser that does not say its cores gets one thread", () => {
  for (const cores of [undefined, 0, -2, 2.5, NaN]) assert.equal(threadsFor(true, cores), 1);
});

test("threads of a session sleep between calls; one thread needs no such option", () => {
  assert.deepEqual(sessionOptions(1), {executionProviders: ["wasm"], graphOptimizationLevel: "all"});
  assert.equal(sessionOptions(2).extra.session.intra_op.allow_spinning, "0");
  assert.deepEqual(sessionOptions(4).executionProviders, ["wasm"]);
});

test("a config's count is taken as asked, up to MAX_THREADS, in an isolated page only", () => {
  assert.equal(threadsFor(true, 8, 1), 1);
  assert.equal(threadsFor(true, 2, 2), 2);
  assert.equal(threadsFor(true, 8, 99), MAX_THREADS);
  assert.equal(threadsFor(true, 8, undefined), 4);
  assert.equal(threadsFor(true, 8, 0), 4);
  assert.equal(threadsFor(true, 2, 1.5), 1);
  assert.equal(threadsFor(false, 8, 4), 1);
});
