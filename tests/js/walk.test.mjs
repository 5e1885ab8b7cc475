// lib/walk.js: the walk's stops, lerp and slerp against their closed forms and against what the
// backend (explorer/latent.py) computed for walk.fixture.json (tests/test_page_walk.py writes
// it and checks it is current), the pixel cross-fade, and the decoders' feeds.
import assert from "node:assert/strict";
import {readFileSync} from "node:fs";
import {test} from "node:test";

import {crossFade, decoderFeeds, lerp, norm, pathLatents, slerp, walkW} from "../../ui/static/lib/walk.js";

const FIXTURE = JSON.parse(readFileSync(new URL("./walk.fixture.json", import.meta.url)));
const f32 = (values) => new Float32Array(values);
const ulps = (got, expected) => Math.max(...Array.from(got, (v, i) =>
  Math.abs(v - expected[i]) / Math.max(2 ** -149, Math.abs(expected[i]) * 2 ** -23)));

test("the stops are k / (steps - 1) in float32, whole k in 0..steps - 1", () => {
  assert.equal(walkW(0, 101), 0);
  assert.equal(walkW(100, 101), 1);
  assert.equal(walkW(50, 101), 0.5);
  assert.equal(walkW(1, 101), Math.fround(0.01));
  assert.notEqual(walkW(1, 101), 0.01);                    // float32, as the server's tensor
  for (const bad of [-1, 101, 2.5, NaN]) assert.throws(() => walkW(bad, 101), /0\.\.100/);
});

test("lerp: the ends, the midpoint, float32 arithmetic", () => {
  const a = f32([1, -2, 3.5]), b = f32([3, 2, -0.5]);
  assert.deepEqual(Array.from(lerp(a, b, 0)), Array.from(a));
  assert.deepEqual(Array.from(lerp(a, b, 1)), Array.from(b));
  assert.deepEqual(Array.from(lerp(a, b, 0.5)), [2, 0, 1.5]);
  assert.ok(lerp(a, b, 0.3) instanceof Float32Array);
});

test("slerp of orthogonal unit vectors is (cos(w pi/2), sin(w pi/2)); its norm stays 1", () => {
  const a = f32([1, 0]), b = f32([0, 1]);
  for (const w of [0, 0.25, 0.5, 0.9, 1]) {
    const z = slerp(a, b, w);
    assert.ok(Math.abs(z[0] - Math.cos(w * Math.PI / 2)) < 1e-7, `w = ${w}`);
    assert.ok(Math.abs(z[1] - Math.sin(w * Math.PI / 2)) < 1e-7, `w = ${w}`);
    assert.ok(Math.abs(norm(z) - 1) < 1e-6);
  }
  // lerp's midpoint sinks inside the circle: |z| = 1 / sqrt(2)
  assert.ok(Math.abs(norm(lerp(a, b, 0.5)) - Math.SQRT1_2) < 1e-7);
});

test("slerp falls back to lerp for parallel latents and a zero end", () => {
  const a = f32([1, 2, 3]);
  const twice = f32([2, 4, 6]);
  assert.deepEqual(Array.from(slerp(a, twice, 0.3)), Array.from(lerp(a, twice, 0.3)));
  const zero = f32([0, 0, 0]);
  assert.deepEqual(Array.from(slerp(zero, a, 0.7)), Array.from(lerp(zero, a, 0.7)));
});

test("both paths and the cross-fade are the backend's at every stop of the fixture", () => {
  for (const c of FIXTURE.cases) {
    for (const stop of c.stops) {
      const w = walkW(stop.k, FIXTURE.steps);
      const p = pathLatents(f32(c.za), f32(c.zb), w);
      assert.deepEqual(Array.from(p.lerp), stop.lerp, `lerp at k = ${stop.k}`);
      assert.ok(ulps(p.slerp, stop.slerp) <= 1, `slerp at k = ${stop.k}`);
      assert.deepEqual(Array.from(crossFade(f32(c.xa), f32(c.xb), w)), stop.fade, `fade at k = ${stop.k}`);
    }
  }
});

test("the VAE decoder is fed the batch of latents as z (B, D)", () => {
  const feeds = decoderFeeds(["z"], [[3]], [f32([1, 2, 3]), f32([4, 5, 6])]);
  assert.deepEqual(Object.keys(feeds), ["z"]);
  assert.deepEqual(feeds.z.dims, [2, 3]);
  assert.equal(feeds.z.type, "float32");
  assert.deepEqual(Array.from(feeds.z.data), [1, 2, 3, 4, 5, 6]);
  assert.throws(() => decoderFeeds(["z"], [[3]], [f32([1, 2])]), /2 values, not 3/);
});

test("the HVAE decoder gets the batch at its layer, zeros elsewhere, given one-hot", () => {
  const shapes = [[1, 2, 2], [2, 1, 1]];
  const inputs = ["z_1", "z_2", "given"];
  const feeds = decoderFeeds(inputs, shapes, [f32([1, 2]), f32([3, 4])], 2);
  assert.deepEqual(feeds.z_2.dims, [2, 2, 1, 1]);
  assert.deepEqual(Array.from(feeds.z_2.data), [1, 2, 3, 4]);
  assert.deepEqual(feeds.z_1.dims, [2, 1, 2, 2]);
  assert.deepEqual(Array.from(feeds.z_1.data), new Array(8).fill(0));
  assert.deepEqual(feeds.given.dims, [2]);
  assert.deepEqual(Array.from(feeds.given.data), [0, 1]);
  assert.throws(() => decoderFeeds(inputs, shapes, [f32([1, 2])], 3), /valid: 1\.\.2/);
});
