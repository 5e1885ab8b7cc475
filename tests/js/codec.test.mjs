// lib/codec.js against Node's own base64 and float32 readers.
import assert from "node:assert/strict";
import {test} from "node:test";

import {bytesFromBase64, float32FromBase64} from "../../ui/static/lib/codec.js";

test("base64 gives back every byte value, in order", () => {
  const bytes = Buffer.from(Array.from({length: 256}, (_, i) => 255 - i));
  assert.deepEqual(Array.from(bytesFromBase64(bytes.toString("base64"))), Array.from(bytes));
});

test("float32 values are read little-endian, exactly", () => {
  const values = [0, -0, 1, -1.5, 3.4028234663852886e38, 1.401298464324817e-45, Math.PI, -2 / 3];
  const buffer = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => buffer.writeFloatLE(v, 4 * i));
  const read = float32FromBase64(buffer.toString("base64"));
  assert.deepEqual(Array.from(read), values.map(Math.fround));
});

test("a float32 payload of the wrong length is refused", () => {
  assert.throws(() => float32FromBase64(Buffer.from([1, 2, 3]).toString("base64")), /float32/);
});
