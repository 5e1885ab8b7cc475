// lib/draw.js: the DOM writes that skip what is already there.
import assert from "node:assert/strict";
import {test} from "node:test";

import {setProp, setText} from "../../ui/static/lib/draw.js";

/** An element whose writes are counted (a stand-in for the DOM's, which Node lacks). */
function counted(initial) {
  const writes = [];
  const element = {};
  for (const [name, value] of Object.entries(initial)) {
    let current = value;
    Object.defineProperty(element, name, {
      get: () => current,
      set: (v) => { writes.push([name, v]); current = v; },
    });
  }
  return {element, writes};
}

test("setText writes only new text", () => {
  const {element, writes} = counted({textContent: "step 3 of 1000"});
  setText(element, "step 3 of 1000");
  assert.deepEqual(writes, []);
  setText(element, "step 4 of 1000");
  setText(element, "step 4 of 1000");
  assert.deepEqual(writes, [["textContent", "step 4 of 1000"]]);
  assert.equal(element.textContent, "step 4 of 1000");
});

test("setProp writes only a new value, of any type", () => {
  const {element, writes} = counted({disabled: false, value: "0"});
  setProp(element, "disabled", false);
  setProp(element, "value", "0");
  assert.deepEqual(writes, []);
  setProp(element, "disabled", true);
  setProp(element, "disabled", true);
  setProp(element, "value", "12");
  assert.deepEqual(writes, [["disabled", true], ["value", "12"]]);
});
