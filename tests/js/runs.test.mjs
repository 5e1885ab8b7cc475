// lib/runs.js: how the page folds the server's messages into a run and what it draws of it.
import assert from "node:assert/strict";
import {test} from "node:test";

import {applyMessage, caption, filmPicks, panel, seedOf, stepsOnCurve, tBefore}
  from "../../ui/static/lib/runs.js";

const b64 = (bytes) => Buffer.from(bytes).toString("base64");
const picture = (v) => b64(new Array(784).fill(v));
const f32 = (values) => {
  const buffer = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => buffer.writeFloatLE(v, 4 * i));
  return buffer.toString("base64");
};
const LOG_SNR = Array.from({length: 10}, (_, i) => 8 - 1.5 * i);          // t = 1..10
const head = (run, steps = 4) => ({
  key: "k", dataset: "mnist", sampler: "ddpm", eta: 0, steps, seed: 3, spacing: "evenly in t",
  timesteps: [10, 7, 4, 1].slice(0, steps), log_snr: f32(LOG_SNR), x_T: picture(9)});
const step = (k) => ({t: [10, 7, 4, 1][k], eps: picture(100 + k), x0: picture(150 + k),
                      x: picture(200 + k)});
const msg = (fields) => ({seq: 1, run: 1, start: 0, taken: 0, done: false,
                          branches: [[0, 3]], steps: [], ...fields});

test("a head starts a run; steps extend it; a later start cuts it first (a rewind)", () => {
  let {history, need} = applyMessage(null, msg({head: head(1)}));
  assert.equal(need, null);
  assert.equal(history.steps.length, 0);
  assert.equal(history.xT[0], 9);
  ({history, need} = applyMessage(history, msg({seq: 2, start: 0, taken: 2,
                                                steps: [step(0), step(1)]})));
  assert.equal(need, null);
  assert.deepEqual(history.steps.map((s) => s.x[0]), [200, 201]);
  ({history, need} = applyMessage(history, msg({seq: 3, start: 1, taken: 1, steps: []})));
  assert.equal(history.steps.length, 1);
  assert.equal(history.taken, 1);
});

test("a message built on steps the page lacks asks for them", () => {
  const {history} = applyMessage(null, msg({head: head(1)}));
  const gap = applyMessage(history, msg({seq: 2, start: 2, taken: 3, steps: [step(2)]}));
  assert.deepEqual(gap.need, {from: 0});
  assert.equal(gap.history.steps.length, 0);                 // nothing applied
  const short = applyMessage(history, msg({seq: 2, start: 0, taken: 3, steps: [step(0)]}));
  assert.deepEqual(short.need, {from: 1});                   // a reply cut short: ask again
  const other = applyMessage(history, msg({run: 2, seq: 5, steps: []}));
  assert.deepEqual(other.need, {from: 0});                   // another run, no head: ask
});

test("the panel after k steps: x_t before the step, its predictions, the sample after", () => {
  const labels = {start: ["x_T (t = {t})", "eps_hat", "x0_hat", "next"],
                  step: ["x_t, t = {t}", "eps_hat / 3", "x0_hat", "x_t, t = {t_next}"]};
  let {history} = applyMessage(null, msg({head: head(1)}));
  ({history} = applyMessage(history, msg({seq: 2, taken: 2, steps: [step(0), step(1)]})));
  const start = panel(history, 0, labels);
  assert.deepEqual(start.labels, ["x_T (t = 10)", "eps_hat", "x0_hat", "next"]);
  assert.deepEqual(start.cells.map((c) => (c ? c[0] : null)), [9, null, null, null]);
  const second = panel(history, 2, labels);
  assert.deepEqual(second.labels, ["x_t, t = 7", "eps_hat / 3", "x0_hat", "x_t, t = 4"]);
  assert.deepEqual(second.cells.map((c) => c[0]), [200, 101, 151, 201]);
  assert.equal(tBefore(history, 4), 0);                      // every step taken: x_0
});

test("film picks are sorted(set(round(linspace(0, k, min(n, k + 1))))), halves to even", () => {
  const linspacePicks = (k, n) => {
    const m = Math.min(n, k + 1);
    if (m === 1) return [0];
    const out = new Set();
    for (let i = 0; i < m; i++) {
      const v = i === m - 1 ? k : i * (k / (m - 1));
      const f = Math.floor(v);
      out.add(v - f === 0.5 ? (f % 2 === 0 ? f : f + 1) : Math.round(v));
    }
    return [...out].sort((a, b) => a - b);
  };
  for (const k of [0, 1, 2, 5, 9, 10, 13, 50, 333, 1000]) {
    assert.deepEqual(filmPicks(k, 10), linspacePicks(k, 10), `k = ${k}`);
    const picks = filmPicks(k, 10);
    assert.equal(picks[0], 0);
    assert.equal(picks.at(-1), k);
    assert.ok(picks.length <= 10);
  }
  assert.deepEqual(filmPicks(9, 10), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(filmPicks(27, 10), [0, 3, 6, 9, 12, 15, 18, 21, 24, 27]);
});

test("steps on the curve: where the run has been, where it goes, and now", () => {
  const {history} = applyMessage(null, msg({head: head(1)}));
  const at = (t) => [t, Math.fround(LOG_SNR[t - 1])];
  assert.deepEqual(stepsOnCurve(history, 1), {been: [at(10), at(7)], ahead: [at(4), at(1)],
                                             now: [at(7)]});
  assert.deepEqual(stepsOnCurve(history, 4).now, []);        // x_0: off the curve
});

test("branches: a step draws the seed of the last branch at or before it", () => {
  let {history} = applyMessage(null, msg({head: head(1)}));
  ({history} = applyMessage(history, msg({seq: 2, branches: [[0, 3], [2, 8]]})));
  assert.deepEqual([0, 1, 2, 3].map((k) => seedOf(history, k)), [3, 3, 8, 8]);
  assert.match(caption(history, 0), /DDPM · 4 steps · 0 taken \(t = 10\) · noise seed 3 · branches at steps 2/);
});

test("Heun's run: each network evaluation is a step, and the caption says which part it was", () => {
  const heun = {...head(1, 2), sampler: "heun", steps: 2, evaluations: 3, timesteps: [10, 4, 4]};
  const {history} = applyMessage(null, msg({head: heun}));
  assert.equal(history.n, 3);
  assert.match(caption(history, 0), /HEUN · 2 steps \(3 network evaluations, each a step below\) · 0 taken \(t = 10\)/);
  assert.match(caption(history, 1), /1 taken \(t = 4\) · step 1 was an Euler step t = 10 -> 4 · noise seed 3/);
  assert.match(caption(history, 2), /step 2 was the corrector at t = 4/);
  assert.match(caption(history, 3), /step 3 was an Euler step t = 4 -> 0/);
});
