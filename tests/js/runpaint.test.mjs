// lib/runpaint.js: the run's canvases fit the width they are given, on every screen.
import assert from "node:assert/strict";
import {test} from "node:test";

import {filmLayout, panelLayout, stepsSize} from "../../ui/static/lib/runpaint.js";

const CFG = {panel_pixel: 8, film: {frames: 10, rows: ["x_t", "x0_hat"]}};

test("the panel has 4 columns on a wide screen, 2 x 2 on a narrow one, and fits", () => {
  for (const width of [280, 400, 492, 493, 800, 1192, 1400]) {
    const layout = panelLayout(width, 13, CFG);
    const columns = new Set(layout.rects.map((r) => r.x)).size;
    assert.equal(columns, width >= 4 * 112 + 5 * 8 ? 4 : 2, `width ${width}`);
    assert.ok(layout.w <= Math.max(width, 4 * 56 + 3 * 8), `width ${width}: ${layout.w}`);
    for (const {x, y, size} of layout.rects) {
      assert.ok(size >= 56 && size % 28 === 0 && size <= 8 * 28);      // whole model pixels
      assert.ok(x + size <= layout.w && y + size <= layout.h);
    }
  }
});

test("the filmstrip wraps its moments onto more rows when they do not fit", () => {
  const wide = filmLayout(1192, 13, CFG, 10);
  assert.equal(wide.bands, 1);
  assert.ok(wide.w <= 1192);
  const narrow = filmLayout(340, 13, CFG, 10);
  assert.ok(narrow.bands > 1 && narrow.perRow * narrow.bands >= 10);
  assert.ok(narrow.w <= 340);
  assert.equal(filmLayout(340, 13, CFG, 1).bands, 1);
});

test("the steps' plot is shorter on a narrow screen", () => {
  assert.deepEqual(stepsSize(1192), {w: 1192, h: 280});
  assert.deepEqual(stepsSize(400), {w: 400, h: 220});
});
