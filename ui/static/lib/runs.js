// The reverse run as the page keeps it: the server streams compact messages (ui/vdm/frames.py),
// this module folds them into the run's history and says what to draw after k steps. Pure
// functions of plain data: node --test covers them (tests/js/runs.test.mjs).
//
// A message: {seq, run, start, taken, done, branches, steps: [{t, eps, x0, x}], head?}
//   head (a new run): {key, timesteps, log_snr, x_T, sampler, eta, steps, evaluations, seed,
//                      spacing, dataset, compute: the page's network config or null (ui/compute.py)}
//   (evaluations: the run's steps as the page takes them, one network evaluation each: `steps`,
//   or 2 steps - 1 for Heun, whose timesteps list each evaluation's t)
//   (key: what the page asks for the run's new steps with, ui/vdm/live.py)
//   steps[i] is step start + i: eps_hat (divided by the noise scale), x0_hat and the sample
//   after it, each 28x28 uint8 in base64. The history is cut to `start` steps, then extended.

import {float32FromBase64, uint8FromBase64} from "./codec.js";
import {roundHalfEven} from "./mix.js";

/** The history a message starts (it must carry a head). */
export function startRun(msg) {
  const h = msg.head;
  return {
    run: msg.run, key: h.key, seq: msg.seq, sampler: h.sampler, eta: h.eta,
    n: h.evaluations ?? h.steps, solverSteps: h.steps, seed: h.seed,
    spacing: h.spacing, dataset: h.dataset, timesteps: h.timesteps,
    logSnr: float32FromBase64(h.log_snr), xT: uint8FromBase64(h.x_T),
    steps: [], taken: 0, done: false, branches: msg.branches || [[0, h.seed]],
    compute: h.compute || null,
  };
}

/** Fold a message into the history. Returns {history, need}: need is null, or {from} when the
 * page lacks steps the message builds on (a message was missed) and must ask for them. */
export function applyMessage(history, msg) {
  if (msg.head) history = startRun(msg);
  else if (!history || msg.run !== history.run) return {history, need: {from: 0}};
  if (msg.start > history.steps.length) return {history, need: {from: history.steps.length}};
  const steps = history.steps.slice(0, msg.start);
  for (const s of msg.steps) {
    steps.push({t: s.t, eps: uint8FromBase64(s.eps), x0: uint8FromBase64(s.x0),
                x: uint8FromBase64(s.x)});
  }
  const next = {...history, seq: msg.seq, steps, taken: msg.taken, done: msg.done,
                branches: msg.branches || history.branches};
  return {history: next, need: steps.length === msg.taken ? null : {from: steps.length}};
}

/** t of the run before step k (0 once every step is taken: x_0). */
export function tBefore(history, k) {
  return k < history.timesteps.length ? history.timesteps[k] : 0;
}

/** The sample after `shown` steps (x_T at 0). */
export function sampleAfter(history, shown) {
  return shown === 0 ? history.xT : history.steps[shown - 1].x;
}

/** The step panel after `shown` steps: four pictures (null: blank) and their labels, from the
 * label formats of config.panel ({t} and {t_next} filled in). */
export function panel(history, shown, labels) {
  const fill = (text, k) => text.replace("{t}", tBefore(history, k))
    .replace("{t_next}", tBefore(history, k + 1));
  if (shown === 0) {
    return {cells: [history.xT, null, null, null], labels: labels.start.map((s) => fill(s, 0))};
  }
  const k = shown - 1;
  const step = history.steps[k];
  return {cells: [sampleAfter(history, k), step.eps, step.x0, step.x],
          labels: labels.step.map((s) => fill(s, k))};
}

/** The moments the filmstrip shows after `shown` steps, as the server picks them:
 * sorted(set(np.linspace(0, shown, min(n, shown + 1)).round())). */
export function filmPicks(shown, n) {
  const m = Math.min(n, shown + 1);
  if (m === 1) return [0];
  const step = shown / (m - 1);
  const picks = new Set();
  for (let i = 0; i < m; i++) picks.add(roundHalfEven(i === m - 1 ? shown : i * step));
  return [...picks].sort((a, b) => a - b);
}

/** The run's steps on log-SNR(t) after `shown` steps: where it has been (up to now), where it
 * goes, and now (empty once x_0 is reached, off the curve). Points are [t, log SNR(t)]. */
export function stepsOnCurve(history, shown) {
  const at = (t) => [t, history.logSnr[t - 1]];
  const states = history.timesteps;
  return {been: states.slice(0, shown + 1).map(at), ahead: states.slice(shown + 1).map(at),
          now: states.slice(shown, shown + 1).map(at)};
}

/** What step (network evaluation) k of a second-order run is: an Euler step t -> t', or the
 * corrector at the t' it lands on (as ui/vdm/run.py's second_order_part says it). */
export function secondOrderPart(history, k) {
  const t = tBefore(history, k), next = tBefore(history, k + 1);
  return t === next ? `the corrector at t = ${t}` : `an Euler step t = ${t} -> ${next}`;
}

/** The seed whose noise step k draws (the last branch starting at or before k). */
export function seedOf(history, k) {
  let seed = history.seed;
  for (const [start, s] of history.branches) if (start <= k) seed = s;
  return seed;
}

/** The run in words, after `shown` steps. */
export function caption(history, shown) {
  const parts = [`${history.sampler.toUpperCase()}${history.sampler === "ddim" ? ` (eta = ${history.eta})` : ""}`,
                 `${history.solverSteps ?? history.n} steps` +
                 (history.solverSteps && history.n !== history.solverSteps
                   ? ` (${history.n} network evaluations, each a step below)` : ""),
                 `${shown} taken (t = ${tBefore(history, shown)})` +
                 (shown < history.taken ? ` of ${history.taken} in the run` : "") +
                 (history.done && shown === history.taken ? ", done: x_0 reached" : ""),
                 `noise seed ${seedOf(history, Math.max(shown - 1, 0))}`];
  if (history.solverSteps && history.n !== history.solverSteps && shown > 0) {
    parts.splice(3, 0, `step ${shown} was ${secondOrderPart(history, shown - 1)}`);
  }
  const branches = history.branches.slice(1).map((b) => b[0]);
  if (branches.length) parts.push(`branches at steps ${branches.join(", ")}`);
  parts.push(`steps ${history.spacing}`);
  return parts.join(" · ");
}
