// lib/registry.js: a key's action goes to the view on screen that offers it.
import assert from "node:assert/strict";
import {test} from "node:test";

import {act, offer} from "../../ui/static/lib/registry.js";

test("of two views offering one action, the one on screen acts", () => {
  const done = [];
  const hidden = {offsetParent: null}, shown = {offsetParent: {}};
  offer("step", shown, () => done.push("vdm"));
  offer("step", hidden, () => done.push("playground"));
  assert.equal(act("step"), true);
  assert.deepEqual(done, ["vdm"]);
  shown.offsetParent = null;
  hidden.offsetParent = {};
  act("step");
  assert.deepEqual(done, ["vdm", "playground"]);
  hidden.offsetParent = null;
  assert.equal(act("step"), false);
  assert.equal(act("nothing"), false);
});
