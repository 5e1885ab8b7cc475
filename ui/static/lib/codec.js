// Arrays as the server sends them (ui/page.py: uint8_b64, float32_b64): base64 text of the raw
// bytes, row-major; float32 little-endian.
//
// A run's plan brings ~3 MB of noise this way: decoded on the main thread, so the browser's own
// decoder (Uint8Array.fromBase64) and a view on the bytes (float32 on a little-endian machine,
// every browser's) keep it to a few ms; the loops are the fallback (Node 20, older browsers).

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Uint8Array of the bytes behind a base64 string (its own buffer, from offset 0). */
export function bytesFromBase64(text, native = typeof Uint8Array.fromBase64 === "function") {
  if (native) return Uint8Array.fromBase64(text);
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Uint8Array of uint8 pixels (0 = black, 255 = white). */
export const uint8FromBase64 = (text) => bytesFromBase64(text);

/** Float32Array of little-endian float32 values. */
export function float32FromBase64(text, littleEndian = LITTLE_ENDIAN) {
  const bytes = bytesFromBase64(text);
  if (bytes.length % 4 !== 0) throw new Error(`float32 data of ${bytes.length} bytes`);
  if (littleEndian) return new Float32Array(bytes.buffer, 0, bytes.length / 4);
  const view = new DataView(bytes.buffer);
  const out = new Float32Array(bytes.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
  return out;
}
