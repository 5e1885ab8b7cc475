// The reverse run taken by the page itself: eps_hat from the network in a worker (lib/eps.js),
// the step from the sampler's rule (lib/sampler.js), the rules, x_T and every step's z from the
// server once (its `plan`, ui/vdm/pagerun.py), again only after a branch. The history it
// returns is the one lib/runs.js keeps from the server's messages: the views draw either alike.
//
//     const engine = pageRun({plan: (asked) => server.plan(asked), open: openEps, noiseScale});
//     history = await engine.step(history);        // one step; rewind / branch: plain history
//
// It keeps the float32 sample before every step taken and every step's x0_hat (the page's run
// goes on from any of them after a rewind: a 2nd-order step reads the x0_hat of the step before),
// like explorer.trajectory's Trajectory keeps them on the server.

import {toUint8} from "./mix.js";
import {branchAt, readPlan, scaled, takeStep} from "./sampler.js";

/** The history with `taken` steps (a rewind, or Stop on the step shown). */
export function cut(history, taken) {
  const steps = history.steps.slice(0, taken);
  return {...history, steps, taken: steps.length, done: steps.length >= history.n};
}

/** The history cut to step k and branched there with `seed` (no step taken yet). */
export function branched(history, k, seed) {
  return {...cut(history, k), branches: branchAt(history.branches, k, seed)};
}

/** The history with one more step: its pictures as the server makes them (ui/vdm/run.image). */
export function appended(history, t, out, noiseScale) {
  const steps = [...history.steps, {t, eps: toUint8(scaled(out.eps, noiseScale)),
                                    x0: toUint8(out.x0), x: toUint8(out.x)}];
  return {...history, steps, taken: steps.length, done: steps.length >= history.n};
}

const keyOf = (branches) => JSON.stringify(branches);

export function pageRun({plan, open, noiseScale}) {
  let net = null;                 // {eps, terminate} for one graph
  let netUrl = null;
  let opening = null;
  let local = null;               // {run, rules, xs, x0s, noise: Map step -> z, branches}
  const counts = {plans: 0, steps: 0};

  async function network(compute) {
    if (net && netUrl === compute.graph.url) return net;
    if (!opening) {
      opening = (async () => {
        if (net) net.terminate();
        net = null;
        const opened = await open(compute);
        net = opened;
        netUrl = compute.graph.url;
        return opened;
      })().finally(() => { opening = null; });
    }
    return opening;
  }

  /** Ask the server for the rules, x before step `start` and the z from there on. */
  async function planFrom(history, start) {
    counts.plans += 1;
    const mine = local && local.run === history.run && local.xs[start] !== undefined
      && (start === 0 || local.x0s[start - 1] !== undefined);
    const reply = await plan({key: history.key, run: history.run, start,
                              branches: history.branches, need_x: !mine});
    if (!reply || reply.error) throw new Error(reply ? reply.error : "no answer from the server");
    const p = readPlan(reply);
    if (!local || local.run !== history.run) {
      local = {run: history.run, rules: p.rules, xs: [], x0s: [], noise: new Map()};
    }
    local.rules = p.rules;
    if (!mine) {
      local.xs.length = start;
      local.xs[start] = p.x;
      local.x0s.length = Math.max(start - 1, 0);
      if (start > 0) local.x0s[start - 1] = p.x0Before;
    }
    for (const k of [...local.noise.keys()]) if (k >= start) local.noise.delete(k);
    for (const [k, z] of p.noise) local.noise.set(k, z);
    local.branches = keyOf(history.branches);
  }

  /** Whether the page holds what step k of this history needs (x before it, its z). */
  const holds = (history, k) => local && local.run === history.run && local.xs[k] !== undefined
    && local.xs.length >= k + 1 && (k === 0 || local.x0s[k - 1] !== undefined)
    && local.branches === keyOf(history.branches);

  /** Record step k's results: the sample after it and its x0_hat (what is after k goes). */
  function keep(k, out) {
    local.xs.length = k + 1;
    local.xs.push(out.x);
    local.x0s.length = k;
    local.x0s.push(out.x0);
  }

  return {
    counts,
    /** Open the network for this run's graph now (say, when the switch is turned on). */
    warm: (history) => network(history.compute),
    /** One step of `history` taken in the page: the new history. */
    async step(history) {
      const k = history.steps.length;
      if (k >= history.n) return history;
      const [netNow] = await Promise.all([network(history.compute),
                                          holds(history, k) ? null : planFrom(history, k)]);
      const rule = local.rules[k];
      const x = local.xs[k];
      const epsHat = await netNow.eps(x, rule.t);
      const out = takeStep(rule, x, epsHat, local.noise.get(k), k > 0 ? local.x0s[k - 1] : null);
      keep(k, out);
      counts.steps += 1;
      return appended(history, rule.t, out, noiseScale);
    },
    /** Every remaining step of `history`, taken in the worker one after the other (no round
     * trip to the page between them): `onHistory(next)` gets the history after each step and
     * returns false to end the run (after the step under way). Resolves to the last history. */
    async run(history, onHistory) {
      const k = history.steps.length;
      if (k >= history.n) return history;
      const [netNow] = await Promise.all([network(history.compute),
                                          holds(history, k) ? null : planFrom(history, k)]);
      const rules = local.rules.slice(k);
      const noise = rules.map((_, i) => local.noise.get(k + i) || null);
      let last = history;
      let run = null;
      const x0Before = k > 0 ? local.x0s[k - 1] : null;
      run = netNow.steps({x: local.xs[k], k, rules, noise, x0Before}, (step) => {
        if (step.k !== last.steps.length) return;              // not the step that follows
        keep(step.k, step);
        counts.steps += 1;
        last = appended(last, local.rules[step.k].t, step, noiseScale);
        if (onHistory(last) === false) run.halt();
      });
      await run.done;
      return last;
    },
    /** The float32 sample after `taken` steps, if the page holds it (tests, benchmarks). */
    sample: (history, taken) => (holds(history, Math.min(taken, history.steps.length))
      ? local.xs[taken] : null),
    close() { if (net) net.terminate(); net = null; local = null; },
  };
}
