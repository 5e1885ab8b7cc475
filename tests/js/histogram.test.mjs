// lib/histogram.js: np.histogram(np.clip(x, lo, hi), bins=n, density=True), rounded to 4
// decimals, checked against the definition: bin i holds edges[i] <= v < edges[i + 1] (the
// last bin also holds hi), density = count / (N * width).
import assert from "node:assert/strict";
import {test} from "node:test";

import {counts, density, edges, normalDensity} from "../../ui/static/lib/histogram.js";

const BINS = [-4, 4, 40];

function reference(x, [lo, hi, n]) {
  const e = edges(lo, hi, n);
  const out = new Array(n).fill(0);
  for (const raw of x) {
    const v = Math.min(hi, Math.max(lo, raw));
    let k = n - 1;
    for (let i = 0; i < n; i++) if (e[i] <= v && v < e[i + 1]) { k = i; break; }
    out[k] += 1;
  }
  return out;
}

function seeded(n, seed) {           // a deterministic spread of values, some off the range
  let s = seed;
  return Array.from({length: n}, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return Math.fround((s / 2147483648) * 10 - 5);
  });
}

test("edges are np.linspace(lo, hi, n + 1)", () => {
  const e = edges(...BINS);
  assert.equal(e.length, 41);
  assert.equal(e[0], -4);
  assert.equal(e[40], 4);
  e.forEach((v, i) => { if (i < 40) assert.equal(v, i * 0.2 - 4); });
});

test("every value lands in the bin the definition gives, edges and clipped values too", () => {
  const x = [...seeded(2000, 7), ...edges(...BINS), -4, 4, -1e9, 1e9, 3.9999999, -3.9999999];
  assert.deepEqual(counts(x, BINS), reference(x, BINS));
});

test("the density integrates to 1 over the range", () => {
  const d = density(seeded(784, 3), BINS);
  const total = d.reduce((s, v) => s + v * 0.2, 0);
  assert.ok(Math.abs(total - 1) < 40 * 0.2 * 5e-5, `integral ${total}`);
  for (const v of d) assert.equal(v, Math.round(v * 1e4) / 1e4);      // 4 decimals
});

test("the standard normal density", () => {
  assert.ok(Math.abs(normalDensity(0) - 1 / Math.sqrt(2 * Math.PI)) < 1e-15);
  assert.ok(Math.abs(normalDensity(1) - Math.exp(-0.5) / Math.sqrt(2 * Math.PI)) < 1e-15);
});
