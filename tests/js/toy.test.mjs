// lib/toy.js: the 2-D playground's pure helpers, against closed forms.
import assert from "node:assert/strict";
import {test} from "node:test";

import {appendHistory, arrow, arrowScale, densityLevels, heat, isolines, lossRange, normQuantile,
        plane, thin} from "../../ui/static/lib/toy.js";

test("the plane maps [-box, box]^2 onto the square with y up, and back", () => {
  const p = plane(3, 300);
  assert.equal(p.sx(-3), 0);
  assert.equal(p.sx(3), 300);
  assert.equal(p.sy(3), 0);
  assert.equal(p.sy(-3), 300);
  for (const [x, y] of [[0.5, -1.25], [-2.9, 2.2]]) {
    const [u, v] = p.fromCanvas(p.sx(x), p.sy(y));
    assert.ok(Math.abs(u - x) < 1e-12 && Math.abs(v - y) < 1e-12);
  }
});

test("isolines of a radial function lie on its circle", () => {
  // f(x, y) = x^2 + y^2 on cell centres of [-3, 3]^2; the level 4 is the circle of radius 2
  const side = 61, step = 6 / side;
  const values = new Float64Array(side * side);
  for (let r = 0; r < side; r++) {
    for (let c = 0; c < side; c++) {
      const x = -3 + (c + 0.5) * step, y = -3 + (r + 0.5) * step;
      values[r * side + c] = x * x + y * y;
    }
  }
  const segments = isolines(values, side, 4);
  assert.ok(segments.length > 60);
  let length = 0;
  for (const [c0, r0, c1, r1] of segments) {
    for (const [c, r] of [[c0, r0], [c1, r1]]) {
      const x = -3 + (c + 0.5) * step, y = -3 + (r + 0.5) * step;
      assert.ok(Math.abs(Math.hypot(x, y) - 2) < 0.02, `${x}, ${y}`);
    }
    length += Math.hypot(c1 - c0, r1 - r0) * step;
  }
  assert.ok(Math.abs(length - 4 * Math.PI) < 0.05, `length ${length}`);   // the circumference
});

test("a saddle cell gives two segments, none crossing the cell's centre value", () => {
  const values = [1, 0, 0, 1];           // 2x2 grid: row 0 = [1, 0], row 1 = [0, 1]
  assert.equal(isolines(values, 2, 0.5).length, 2);
});

test("density levels climb from max/100 to 0.9 max, evenly in log", () => {
  const levels = densityLevels([0, 2, 10, 5], 3);
  assert.equal(levels.length, 3);
  assert.ok(Math.abs(levels[0] - 0.1) < 1e-12 && Math.abs(levels[2] - 9) < 1e-12);
  assert.ok(Math.abs(levels[1] ** 2 - levels[0] * levels[2]) < 1e-9);
  assert.deepEqual(densityLevels([0, 0]), []);
});

test("arrows: one scale for both fields, a capped length, y flipped for the canvas", () => {
  const a = [3, 4, 0, 1], b = [0, 10, 1, 0];         // norms 5, 1 and 10, 1
  assert.equal(normQuantile(a, 1), 5);
  assert.equal(normQuantile(b, 1), 10);
  const scale = arrowScale([a, b], 20);
  assert.equal(scale, 20 / 10);                      // the 95th percentile of the larger field
  assert.deepEqual(arrow([100, 100], [3, 4], scale, 1000), [100, 100, 106, 92]);
  const [, , x1, y1] = arrow([0, 0], [30, 40], 1, 10);
  assert.ok(Math.abs(Math.hypot(x1, y1) - 10) < 1e-12);
});

test("the loss range keeps the floor and ignores the odd outlier", () => {
  const column = Array.from({length: 200}, (_, i) => 10 - i / 40);
  column[3] = 1e6;
  const [lo, hi] = lossRange([column], 2);
  assert.ok(lo < 2 && hi < 20 && hi > 9);
  assert.deepEqual(lossRange([[]]), [0, 1]);
});

test("history messages append, and one from earlier cuts first", () => {
  const h = {};
  appendHistory(h, {from: 0, iteration: [10, 20]}, ["iteration"]);
  appendHistory(h, {from: 2, iteration: [30]}, ["iteration"]);
  assert.deepEqual(h.iteration, [10, 20, 30]);
  appendHistory(h, {from: 1, iteration: [21]}, ["iteration"]);
  assert.deepEqual(h.iteration, [10, 21]);
});

test("a drag keeps points at least the spacing apart; the heat map runs white to dark red", () => {
  assert.deepEqual(thin([[0, 0], [0.01, 0], [0.2, 0], [0.21, 0]], 0.1), [[0, 0], [0.2, 0]]);
  assert.equal(heat(0), "rgb(255,255,255)");
  assert.equal(heat(1), "rgb(103,0,13)");
  assert.equal(heat(NaN), "rgb(255,255,255)");
});
