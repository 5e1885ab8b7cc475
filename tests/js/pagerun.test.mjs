// lib/sampler.js and lib/pagerun.js: a step from a StepRule, and the page's own run (a fake
// server plan and a fake network: every request counted).
import assert from "node:assert/strict";
import {test} from "node:test";

import {appended, branched, cut, pageRun} from "../../ui/static/lib/pagerun.js";
import {branchAt, readPlan, takeStep} from "../../ui/static/lib/sampler.js";

const FIELDS = ["t", "t_prev", "root_alpha_bar", "root_one_minus_alpha_bar", "clip", "x0", "xt",
                "eps", "noise"];
const f32 = (values) => Buffer.from(Float32Array.from(values).buffer).toString("base64");
const rule = (over) => ({t: 10, t_prev: 5, root_alpha_bar: 0.6, root_one_minus_alpha_bar: 0.8,
                         clip: false, x0: 0.7, xt: 0.2, eps: 0.1, noise: 0.3, ...over});

test("a step is the rule's map: x0_hat, then x0 x0_hat + xt x_t + eps eps_hat + noise z", () => {
  const x = Float32Array.of(0.5, -2), epsHat = Float32Array.of(0.25, 1), z = Float32Array.of(1, -1);
  const out = takeStep(rule(), x, epsHat, z);
  const x0 = [(0.5 - 0.8 * 0.25) / 0.6, (-2 - 0.8) / 0.6];
  x0.forEach((v, i) => assert.ok(Math.abs(out.x0[i] - v) < 1e-6));
  const next = x0.map((v, i) => 0.7 * v + 0.2 * x[i] + 0.1 * epsHat[i] + 0.3 * z[i]);
  next.forEach((v, i) => assert.ok(Math.abs(out.x[i] - v) < 1e-6));
  assert.deepEqual(Array.from(out.eps), Array.from(epsHat));         // not clipped: eps_hat
});

test("clipping clamps x0_hat to [-1, 1] and re-derives eps_hat from it", () => {
  const x = Float32Array.of(-2), epsHat = Float32Array.of(1);
  const out = takeStep(rule({clip: true, noise: 0}), x, epsHat, null);
  assert.equal(out.x0[0], -1);
  assert.ok(Math.abs(out.eps[0] - (-2 + 0.6) / 0.8) < 1e-6);
  assert.ok(Math.abs(out.x[0] - (0.7 * -1 + 0.2 * -2 + 0.1 * out.eps[0])) < 1e-6);
  assert.throws(() => takeStep(rule(), x, epsHat, null), /no z/);    // noise without its z
});

test("a second-order rule adds x0_prev times the x0_hat of the step before, which it needs", () => {
  const x = Float32Array.of(0.5, -2), epsHat = Float32Array.of(0.25, 1);
  const before = Float32Array.of(0.125, -0.75);
  const plain = takeStep(rule({noise: 0}), x, epsHat, null);
  const out = takeStep(rule({noise: 0, x0_prev: -0.4}), x, epsHat, null, before);
  Array.from(out.x).forEach((v, i) => assert.ok(Math.abs(v - (plain.x[i] - 0.4 * before[i])) < 1e-6));
  assert.deepEqual(Array.from(out.x0), Array.from(plain.x0));
  assert.throws(() => takeStep(rule({noise: 0, x0_prev: -0.4}), x, epsHat, null),
                /x0_hat of the step before/);
});

test("a branch keeps the branches before its step and replaces the rest", () => {
  assert.deepEqual(branchAt([[0, 1], [4, 2], [9, 3]], 4, 7), [[0, 1], [4, 7]]);
  assert.deepEqual(branchAt([[0, 1]], 3, 5), [[0, 1], [3, 5]]);
});

test("a plan reply reads into rules, x and one z per noisy step", () => {
  const p = readPlan({fields: FIELDS, rules: [[10, 5, 0.6, 0.8, false, 1, 0, 0, 0.3],
                                              [5, 0, 0.9, 0.4, false, 1, 0, 0, 0]],
                      start: 0, x: f32([1, 2]), noise_steps: [0], noise: f32([3, 4])});
  assert.equal(p.rules[1].t_prev, 0);
  assert.deepEqual(Array.from(p.x), [1, 2]);
  assert.deepEqual(Array.from(p.noise.get(0)), [3, 4]);
  assert.equal(p.noise.has(1), false);
});

// ------------------------------------------------------------ the page's run, with fakes

const N = 4;
function fakes() {
  const asked = [];
  const opened = [];
  // every step: x_prev = 0.5 x + 0.5 eps_hat + 0.1 z with eps_hat = x + t / 100 (a made-up
  // network), z of step k under seed s = s + k (each pixel)
  const rules = Array.from({length: N}, (_, k) => [40 - 10 * k, 30 - 10 * k, 1, 1, false,
                                                   0, 0.5, 0.5, k < N - 1 ? 0.1 : 0]);
  const plan = async (a) => {
    asked.push(a);
    const seedOf = (k) => a.branches.filter((b) => b[0] <= k).at(-1)[1];
    const noisy = [];
    for (let k = a.start; k < N; k++) if (rules[k][8] > 0) noisy.push(k);
    return {fields: FIELDS, rules, start: a.start, x: a.need_x ? f32([0.25, -0.25]) : null,
            noise_steps: noisy, noise: f32(noisy.flatMap((k) => [seedOf(k) + k, seedOf(k) + k]))};
  };
  const eps = async (x, t) => Float32Array.from(x, (v) => v + t / 100);
  // the worker's "steps": each step as lib/eps.js's worker takes it, one after the other
  const steps = ({x, k, rules: rs, noise}, onStep) => {
    let halted = false;
    const done = (async () => {
      let taken = 0;
      for (let i = 0; i < rs.length && !halted; i++) {
        const out = takeStep(rs[i], x, await eps(x, rs[i].t), noise[i]);
        x = out.x;
        taken += 1;
        onStep({k: k + i, ...out});
      }
      return taken;
    })();
    return {done, halt() { halted = true; }};
  };
  const open = async (compute) => {
    opened.push(compute.graph.url);
    return {eps, steps, terminate() {}};
  };
  const history = {run: 1, key: "k", n: N, seed: 3, branches: [[0, 3]], steps: [], taken: 0,
                   done: false, compute: {graph: {url: "g.onnx"}}};
  return {asked, opened, plan, open, history};
}

function expected(x, k, seed) {
  const t = 40 - 10 * k;
  return x.map((v) => Math.fround(0.5 * v + 0.5 * (v + t / 100) + (k < N - 1 ? 0.1 * (seed + k) : 0)));
}

test("the page's run: one plan for the whole run, the steps as the rule and z say", async () => {
  const {asked, opened, plan, open, history} = fakes();
  const engine = pageRun({plan, open, noiseScale: 3});
  let h = history;
  let x = [0.25, -0.25];
  for (let k = 0; k < N; k++) {
    h = await engine.step(h);
    x = expected(x, k, 3);
    engine.sample(h, k + 1).forEach((v, i) => assert.ok(Math.abs(v - x[i]) < 1e-5, `step ${k}`));
  }
  assert.equal(h.done, true);
  assert.equal(h.steps.length, N);
  assert.equal(asked.length, 1);                                     // one request: the plan
  assert.equal(asked[0].need_x, true);
  assert.deepEqual(opened, ["g.onnx"]);                              // the network opened once
  assert.equal(await engine.step(h), h);                             // done: nothing more
});

test("rewind and Stop are the page's alone; a branch asks for its noise, not for x", async () => {
  const {asked, plan, open, history} = fakes();
  const engine = pageRun({plan, open, noiseScale: 3});
  let h = history;
  for (let k = 0; k < 3; k++) h = await engine.step(h);
  const before = engine.sample(h, 2);
  h = cut(h, 1);                                                     // rewind to step 1
  assert.equal(h.steps.length, 1);
  h = await engine.step(h);                                          // the same step 2 again
  assert.deepEqual(engine.sample(h, 2), before);
  assert.equal(asked.length, 1);
  h = branched(h, 1, 50);                                            // branch at 1, seed 50
  assert.deepEqual(h.branches, [[0, 3], [1, 50]]);
  h = await engine.step(h);
  assert.equal(asked.length, 2);
  assert.deepEqual([asked[1].start, asked[1].need_x], [1, false]);   // x_1 is the page's own
  const x1 = Array.from(engine.sample(h, 1));
  engine.sample(h, 2).forEach((v, i) => assert.ok(Math.abs(v - expected(x1, 1, 50)[i]) < 1e-5));
});

test("a step's pictures are made as the server makes them (eps_hat over the noise scale)", () => {
  const h = {n: 2, steps: [], taken: 0, done: false};
  const out = {x0: Float32Array.of(1, -1), eps: Float32Array.of(3, -6), x: Float32Array.of(0, 0.5)};
  const next = appended(h, 7, out, 3);
  assert.deepEqual(Array.from(next.steps[0].eps), [255, 0]);         // 3 / 3 = 1, -6 / 3 -> -1
  assert.deepEqual(Array.from(next.steps[0].x0), [255, 0]);
  assert.deepEqual(Array.from(next.steps[0].x), [128, 191]);        // round((x + 1) * 127.5)
  assert.equal(next.taken, 1);
});

test("a Run takes every step in the worker; stopping it ends it after the step under way", async () => {
  const {asked, plan, open, history} = fakes();
  const engine = pageRun({plan, open, noiseScale: 3});
  const seen = [];
  let h = await engine.run(history, (next) => { seen.push(next.steps.length); });
  assert.deepEqual(seen, [1, 2, 3, 4]);
  assert.equal(h.done, true);
  assert.equal(asked.length, 1);
  let x = [0.25, -0.25];
  for (let k = 0; k < N; k++) x = expected(x, k, 3);
  engine.sample(h, N).forEach((v, i) => assert.ok(Math.abs(v - x[i]) < 1e-5));
  // a Run stopped after its second step: the history holds two
  const stopped = await engine.run(cut(h, 0), (next) => next.steps.length < 2);
  assert.equal(stopped.steps.length, 2);
  assert.equal(asked.length, 1);                     // x_0 and the noise were the page's
});

// ------------------------------------------------ a run whose steps read the x0_hat before

// rules as fakes() makes them, each after the first adding 0.2 x0_hat of the step before
// (x0_hat = x - eps_hat = -t / 100 there: root_alpha_bar = root_one_minus_alpha_bar = 1)
const PREV = 0.2;
function secondOrder() {
  const base = fakes();
  const asked = [];
  const rules = Array.from({length: N}, (_, k) => [40 - 10 * k, 30 - 10 * k, 1, 1, false,
                                                   0, 0.5, 0.5, 0, k > 0 ? PREV : 0]);
  const xs = [[0.25, -0.25]];
  for (let k = 0; k < N; k++) xs.push(expected2(xs[k], k));
  const plan = async (a) => {
    asked.push(a);
    return {fields: [...FIELDS, "x0_prev"], rules, start: a.start,
            x: a.need_x ? f32(xs[a.start]) : null,
            x0_before: a.need_x && a.start > 0 ? f32(x0Of(xs[a.start - 1], a.start - 1)) : null,
            noise_steps: [], noise: ""};
  };
  const open = async () => {
    const {eps} = await base.open({graph: {url: "g.onnx"}});
    return {eps, steps: workerSteps(eps), terminate() {}};
  };
  return {asked, plan, open, history: base.history, xs};
}

function x0Of(x, k) { return x.map((v) => Math.fround(v - Math.fround(v + (40 - 10 * k) / 100))); }

function expected2(x, k) {
  const t = 40 - 10 * k;
  const prev = k > 0 ? -(t + 10) / 100 : 0;
  return x.map((v) => Math.fround(0.5 * v + 0.5 * (v + t / 100) + PREV * (k > 0 ? prev : 0)));
}

function workerSteps(eps) {
  return ({x, k, rules: rs, noise, x0Before}, onStep) => {
    let halted = false;
    const done = (async () => {
      let taken = 0;
      let before = x0Before;
      for (let i = 0; i < rs.length && !halted; i++) {
        const out = takeStep(rs[i], x, await eps(x, rs[i].t), noise[i], before);
        x = out.x;
        before = out.x0;
        taken += 1;
        onStep({k: k + i, ...out});
      }
      return taken;
    })();
    return {done, halt() { halted = true; }};
  };
}

test("a second-order run in the page: Step, Run, a rewind and a new page all read x0_hat", async () => {
  const {asked, plan, open, history, xs} = secondOrder();
  const close = (h, engine, k) => engine.sample(h, k).forEach(
    (v, i) => assert.ok(Math.abs(v - xs[k][i]) < 1e-5, `after ${k} steps`));
  const engine = pageRun({plan, open, noiseScale: 3});
  let h = await engine.step(history);
  h = await engine.step(h);                                         // reads step 0's x0_hat
  close(h, engine, 2);
  h = await engine.run(h, () => true);                              // the worker goes on
  close(h, engine, N);
  h = await engine.run(cut(h, 2), () => true);                      // rewound: x0_hat kept
  close(h, engine, N);
  assert.equal(asked.length, 1);
  const fresh = pageRun({plan, open, noiseScale: 3});               // another page takes over
  const taken = await fresh.run(cut(h, 2), () => true);
  close(taken, fresh, N);
  assert.deepEqual([asked[1].start, asked[1].need_x], [2, true]);   // x_2 and x0_hat_1 sent
});
