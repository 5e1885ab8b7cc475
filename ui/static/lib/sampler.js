// One reverse step taken in the page, as the server takes it: the sampler's StepRule
// (explorer/samplers/base.py: `Sampler.step` applies the same rule), its eps_hat from the
// network run in the page (lib/eps.js) and its z sent by the server (ui/vdm/pagerun.py):
//
//     x0_hat     = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t), clipped to [-1, 1] when the
//                  rule clips (eps_hat is then re-derived from the clipped x0_hat)
//     mean       = x0 x0_hat + xt x_t + eps eps_hat + x0_prev x0_hat'
//     x_{t_prev} = mean + noise z
//
// (x0_hat' the x0_hat of the step before: DPM-Solver++(2M)'s steps after its first, and Heun's
// corrector, read it; for the others x0_prev is 0)
//
// in float32 (Math.fround after every operation, as torch's CPU kernels round), so the page's
// run is the server's up to the runtimes' rounding. Pure functions: node --test covers them and
// tests/test_page_math.py checks them against torch.

import {float32FromBase64} from "./codec.js";

const f = Math.fround;

/** The plan of a run (the server's `plan` reply) as the page uses it: rules as objects named by
 * `fields`, the float32 sample before step `start` and x0_hat of the step before it (null when
 * not asked for, or at step 0), and step -> z for the noisy steps. */
export function readPlan(reply) {
  const rules = reply.rules.map((row) => Object.fromEntries(reply.fields.map((name, i) => [name, row[i]])));
  const all = reply.noise ? float32FromBase64(reply.noise) : new Float32Array(0);
  const size = reply.noise_steps.length ? all.length / reply.noise_steps.length : 0;
  const noise = new Map(reply.noise_steps.map((k, i) => [k, all.subarray(i * size, (i + 1) * size)]));
  return {rules, start: reply.start, x: reply.x ? float32FromBase64(reply.x) : null,
          x0Before: reply.x0_before ? float32FromBase64(reply.x0_before) : null, noise};
}

/** One step: x_t and eps_hat (Float32Array), the step's rule, z (null when rule.noise is 0),
 * and the x0_hat of the step before (null when rule.x0_prev is 0). Returns {x0, eps, x}:
 * x0_hat, the eps_hat x0_hat implies, x_{t_prev}. */
export function takeStep(rule, x, epsHat, z, x0Before = null) {
  if (rule.noise > 0 && !z) throw new Error(`step t = ${rule.t} adds noise but has no z`);
  const cprev = f(rule.x0_prev || 0);
  if (cprev && !x0Before) {
    throw new Error(`step t = ${rule.t} reads the x0_hat of the step before, which it was not given`);
  }
  const n = x.length;
  const r0 = f(rule.root_alpha_bar), r1 = f(rule.root_one_minus_alpha_bar);
  const cx0 = f(rule.x0), cxt = f(rule.xt), ceps = f(rule.eps), s = f(rule.noise);
  const x0 = new Float32Array(n), eps = new Float32Array(n), next = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let a = f(f(x[i] - f(r1 * epsHat[i])) / r0);
    let e = epsHat[i];
    if (rule.clip) {
      a = Math.min(1, Math.max(-1, a));
      e = f(f(x[i] - f(r0 * a)) / r1);
    }
    let mean = f(cx0 * a);
    if (cxt) mean = f(mean + f(cxt * x[i]));
    if (ceps) mean = f(mean + f(ceps * e));
    if (cprev) mean = f(mean + f(cprev * x0Before[i]));
    x0[i] = a;
    eps[i] = e;
    next[i] = s > 0 ? f(mean + f(s * z[i])) : mean;
  }
  return {x0, eps, x: next};
}

/** The branches after branching at step k with `seed` (those from k on are replaced), as
 * explorer.trajectory's Trajectory.branch makes them. */
export function branchAt(branches, k, seed) {
  return [...branches.filter((b) => b[0] < k), [k, seed]];
}

/** Values divided by `scale` (the panel shows eps_hat / NOISE_SCALE), in float32. */
export function scaled(x, scale) {
  if (scale === 1) return x;
  const s = f(scale);
  return Float32Array.from(x, (v) => f(v / s));
}
