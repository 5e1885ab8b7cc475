// lib/plot.js: the pure parts of the canvas plots.
import assert from "node:assert/strict";
import {test} from "node:test";

import {linear, niceTicks, tickText} from "../../ui/static/lib/plot.js";

test("ticks are round (1, 2 or 5 times a power of ten apart) and inside the range", () => {
  for (const [lo, hi, n] of [[0, 1000, 5], [-14, 10, 4], [0, 1, 5], [-4, 4, 8], [0.001, 0.0042, 3]]) {
    const ticks = niceTicks(lo, hi, n);
    assert.ok(ticks.length >= 2 && ticks.length <= 2 * n + 1, `${lo}..${hi}: ${ticks}`);
    for (const t of ticks) assert.ok(t >= lo - 1e-12 && t <= hi + 1e-12);
    const step = ticks[1] - ticks[0];
    const mantissa = step / 10 ** Math.floor(Math.log10(step) + 1e-9);
    assert.ok([1, 2, 5].some((m) => Math.abs(mantissa - m) < 1e-6), `step ${step}`);
  }
  assert.deepEqual(niceTicks(0, 1000, 5), [0, 200, 400, 600, 800, 1000]);
});

test("a linear map sends the domain's ends to the range's ends", () => {
  const f = linear([2, 10], [100, 0]);
  assert.equal(f(2), 100);
  assert.equal(f(10), 0);
  assert.equal(f(6), 50);
});

test("tick text is short and free of float noise", () => {
  assert.equal(tickText(0.30000000000000004), "0.3");
  assert.equal(tickText(0), "0");
  assert.equal(tickText(1000), "1000");
  assert.equal(tickText(100000), "1e5");
});
