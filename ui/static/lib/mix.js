// The forward process in the page, computed exactly as the server computes it
// (explorer.diffusion.mix / q_sample on float32 numpy arrays, explorer.data.to_uint8):
//
//     x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps
//
// float32 products and sum (Math.fround after every operation), then the clamp to [-1, 1] and
// the round-half-to-even of the 256 pixel levels. tests/test_page_math.py checks every value
// against numpy and torch.

/** Round half to even, as numpy.round / torch.round. */
export function roundHalfEven(v) {
  const f = Math.floor(v);
  const r = v - f;
  if (r > 0.5) return f + 1;
  if (r < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** x_t = a x_0 + b eps in float32: a = sqrt(alpha_bar_t), b = sqrt(1 - alpha_bar_t). */
export function mix(x0, eps, a, b) {
  const fa = Math.fround(a);
  const fb = Math.fround(b);
  const x = new Float32Array(x0.length);
  for (let i = 0; i < x.length; i++) {
    x[i] = Math.fround(Math.fround(fa * x0[i]) + Math.fround(fb * eps[i]));
  }
  return x;
}

/** Pixel levels 0..255 of values in [-1, 1] (clamped): round((x + 1) * 127.5), in float32. */
export function toUint8(x) {
  const out = new Uint8Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const clamped = Math.min(1, Math.max(-1, x[i]));
    out[i] = roundHalfEven(Math.fround(Math.fround(clamped + 1) * 127.5));
  }
  return out;
}

/** Mean and standard deviation (population, as numpy's x.mean(), x.std()). */
export function moments(x) {
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += x[i];
  const mean = sum / x.length;
  let sq = 0;
  for (let i = 0; i < x.length; i++) sq += (x[i] - mean) ** 2;
  return {mean, std: Math.sqrt(sq / x.length)};
}
