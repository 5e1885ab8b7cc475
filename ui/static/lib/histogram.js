// The pixel histogram of x_t as the server draws it (ui/plots.py histogram_plot):
// np.histogram(np.clip(x, lo, hi), bins=np.linspace(lo, hi, n + 1), density=True), each
// density rounded to 4 decimals. numpy's own steps are followed, so every pixel lands in the
// same bin: the edges of np.linspace, the bin from (x - lo) * n / (hi - lo), then the fix-up
// against the edges; density = count / width / total.

import {roundHalfEven} from "./mix.js";

/** The n + 1 edges of np.linspace(lo, hi, n + 1). */
export function edges(lo, hi, n) {
  const step = (hi - lo) / n;
  const out = new Float64Array(n + 1);
  for (let i = 0; i <= n; i++) out[i] = i * step + lo;
  out[n] = hi;
  return out;
}

/** The bin of each value (numpy's rule for even bins; values already inside [lo, hi]). */
function binOf(v, lo, hi, n, e) {
  let k = Math.floor((v - lo) * (n / (hi - lo)));
  if (k === n) k -= 1;
  if (v < e[k]) k -= 1;
  else if (k !== n - 1 && v >= e[k + 1]) k += 1;
  return k;
}

/** Counts per bin of the values clipped to [lo, hi]. */
export function counts(x, [lo, hi, n]) {
  const e = edges(lo, hi, n);
  const out = new Array(n).fill(0);
  for (let i = 0; i < x.length; i++) out[binOf(Math.min(hi, Math.max(lo, x[i])), lo, hi, n, e)] += 1;
  return out;
}

/** Density per bin (integrates to 1 over [lo, hi]), rounded to 4 decimals as the server does. */
export function density(x, bins) {
  const [lo, hi, n] = bins;
  const e = edges(lo, hi, n);
  const c = counts(x, bins);
  const total = c.reduce((s, v) => s + v, 0);
  return c.map((v, i) => roundHalfEven((v / (e[i + 1] - e[i]) / total) * 1e4) / 1e4);
}

/** The standard normal density at v: the curve x_t's pixels approach as t -> T. */
export function normalDensity(v) {
  return Math.exp(-(v * v) / 2) / Math.sqrt(2 * Math.PI);
}
