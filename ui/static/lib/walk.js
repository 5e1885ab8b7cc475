// The latent walk's arithmetic, done by the page exactly as the server does it: the paths of
// explorer/latent.py (`lerp`, `slerp`: the formulas of its `interpolate`, the strips' paths)
// and the pixel cross-fade of ui/vae/views.py, on float32 arrays:
//
//     lerp    z_w = (1 - w) z_A + w z_B
//     slerp   z_w = sin((1 - w) Ω) / sin Ω · z_A + sin(w Ω) / sin Ω · z_B,
//             cos Ω = <z_A, z_B> / (|z_A| |z_B|)        (lerp where sin Ω < 1e-6 or a z is ~0)
//     pixels  x_w = (1 - w) A + w B                    (A, B in [-1, 1], then 0..255)
//
// Products and sums in float32 (lib/mix.js: Math.fround after each); slerp's angle and
// coefficients in float64, then float32, as the backend computes them. The walk stops at
// w_k = k / (steps - 1) rounded to float32 (`walkW`), the same w the server decodes at
// (ui/vae/walk.py). tests/test_page_walk.py checks every value against the backend;
// tests/js/walk.test.mjs against closed forms and values the backend wrote.

import {mix, toUint8} from "./mix.js";

export const PATHS = ["lerp", "slerp"];

/** w at stop k of a walk with `steps` stops (0 .. steps - 1), as float32. */
export function walkW(k, steps) {
  if (!Number.isInteger(k) || k < 0 || k > steps - 1) {
    throw new RangeError(`stop k = ${k} is not valid; valid: a whole number in 0..${steps - 1}`);
  }
  return Math.fround(k / (steps - 1));
}

/** (1 - w) z0 + w z1 in float32. */
export function lerp(z0, z1, w) {
  return mix(z0, z1, 1 - w, w);
}

/** Spherical interpolation from z0 to z1 (each flattened) at w; lerp where the great circle is
 *  undefined (sin Ω < eps, or |z0| or |z1| < eps). */
export function slerp(z0, z1, w, eps = 1e-6) {
  let dot = 0, n0 = 0, n1 = 0;
  for (let i = 0; i < z0.length; i++) {
    dot += z0[i] * z1[i];
    n0 += z0[i] * z0[i];
    n1 += z1[i] * z1[i];
  }
  const a = Math.sqrt(n0), b = Math.sqrt(n1);
  const omega = Math.acos(Math.min(1, Math.max(-1, dot / Math.max(a * b, 1e-30))));
  const sin = Math.sin(omega);
  if (sin < eps || a < eps || b < eps) return lerp(z0, z1, w);
  return mix(z0, z1, Math.sin((1 - w) * omega) / sin, Math.sin(w * omega) / sin);
}

/** The latents of both paths at w: {lerp, slerp}, Float32Arrays like z0. */
export function pathLatents(z0, z1, w) {
  return {lerp: lerp(z0, z1, w), slerp: slerp(z0, z1, w)};
}

/** The pixel cross-fade (1 - w) A + w B of two pictures given as floats in [-1, 1], as 0..255. */
export function crossFade(xa, xb, w) {
  return toUint8(lerp(xa, xb, w));
}

/** |z| (float64). */
export function norm(z) {
  let sum = 0;
  for (let i = 0; i < z.length; i++) sum += z[i] * z[i];
  return Math.sqrt(sum);
}

/** The feeds of one decoder call on a batch of latents (Float32Arrays of one shape each).
 *  VAE (`layer` null): {z: (B, D)}. HVAE: every layer's input z_l (B, *shapes[l]), zeros except
 *  layer `layer` (1-based), which holds the batch, and `given`, 1 at that layer only: the
 *  layers below follow at their prior means (explorer/export.py HVAEDecoder). */
export function decoderFeeds(inputs, shapes, batch, layer = null) {
  const n = batch.length;
  const stacked = (shape, rows) => {
    const size = shape.reduce((p, d) => p * d, 1);
    const data = new Float32Array(n * size);
    rows?.forEach((row, i) => {
      if (row.length !== size) throw new RangeError(`a latent of ${row.length} values, not ${size}`);
      data.set(row, i * size);
    });
    return {type: "float32", data, dims: [n, ...shape]};
  };
  if (layer === null) return {[inputs[0]]: stacked(shapes[0], batch)};
  const layers = inputs.slice(0, -1);
  if (!(layer >= 1 && layer <= layers.length)) {
    throw new RangeError(`layer ${layer} is not valid; valid: 1..${layers.length}`);
  }
  const feeds = Object.fromEntries(layers.map((name, l) =>
    [name, stacked(shapes[l], l === layer - 1 ? batch : null)]));
  const given = new Float32Array(layers.length);
  given[layer - 1] = 1;
  feeds[inputs[inputs.length - 1]] = {type: "float32", data: given, dims: [layers.length]};
  return feeds;
}
