// lib/mix.js: the forward mix x_t = a x_0 + b eps and the 256 pixel levels, as the server
// computes them (tests/test_page_math.py checks the same values against numpy and torch).
import assert from "node:assert/strict";
import {test} from "node:test";

import {mix, moments, roundHalfEven, toUint8} from "../../ui/static/lib/mix.js";

test("round half to even, as numpy.round", () => {
  const cases = [[0.5, 0], [1.5, 2], [2.5, 2], [3.5, 4], [-0.5, 0], [-1.5, -2], [2.49, 2],
                 [2.51, 3], [254.5, 254], [127.5, 128]];
  for (const [v, want] of cases) assert.equal(roundHalfEven(v) + 0, want, `round(${v})`);
});

test("every pixel level survives the trip to [-1, 1] and back", () => {
  // explorer.data.to_float: k * 2 / 255 - 1 in float32
  const levels = Float32Array.from({length: 256}, (_, k) => Math.fround(Math.fround(k * 2) / 255) - 1);
  assert.deepEqual(Array.from(toUint8(levels)), Array.from({length: 256}, (_, k) => k));
});

test("values outside [-1, 1] clamp to black and white", () => {
  assert.deepEqual(Array.from(toUint8([-7, -1.0001, 1.0001, 9, 0])), [0, 0, 255, 255, 128]);
});

test("the mix is float32 throughout: each product and the sum rounded", () => {
  const x0 = Float32Array.from([0.1, -0.7, 1, -1, 0.3333]);
  const eps = Float32Array.from([1.5, -2.25, 0.01, 3, -0.125]);
  const a = 0.9, b = Math.sqrt(1 - 0.81);
  const x = mix(x0, eps, a, b);
  x.forEach((v, i) => {
    const want = Math.fround(Math.fround(Math.fround(a) * x0[i]) + Math.fround(Math.fround(b) * eps[i]));
    assert.equal(v, want);
  });
  assert.deepEqual(Array.from(mix(x0, eps, 1, 0)), Array.from(x0));       // t = 0: x_0 itself
  assert.deepEqual(Array.from(mix(x0, eps, 0, 1)), Array.from(eps));      // pure noise
});

test("moments are the population mean and standard deviation", () => {
  const {mean, std} = moments([1, 2, 3, 4]);
  assert.equal(mean, 2.5);
  assert.ok(Math.abs(std - Math.sqrt(1.25)) < 1e-12);
});
