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

test("the byte-by-byte reader gives the same floats as the view on the bytes", () => {
  const values = Float32Array.from({length: 999}, (_, i) => Math.sin(i) * 1e3 ** (i % 5 - 2));
  const text = Buffer.from(values.buffer).toString("base64");
  assert.deepEqual(float32FromBase64(text, false), values);
  assert.deepEqual(float32FromBase64(text, true), values);
});

test("the browser's own base64 decoder is used where there is one", () => {
  const had = Uint8Array.fromBase64;
  const asked = [];
  Uint8Array.fromBase64 = (text) => { asked.push(text); return new Uint8Array(Buffer.from(text, "base64")); };
  try {
    assert.deepEqual(Array.from(bytesFromBase64("AQID")), [1, 2, 3]);
    assert.deepEqual(Array.from(bytesFromBase64("AQID", false)), [1, 2, 3]);
    assert.deepEqual(asked, ["AQID"]);
  } finally {
    if (had) Uint8Array.fromBase64 = had; else delete Uint8Array.fromBase64;
  }
});
