// Arrays as the server sends them (ui/page.py: uint8_b64, float32_b64): base64 text of the raw
// bytes, row-major; float32 little-endian.

/** Uint8Array of the bytes behind a base64 string. */
export function bytesFromBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Uint8Array of uint8 pixels (0 = black, 255 = white). */
export const uint8FromBase64 = bytesFromBase64;

/** Float32Array of little-endian float32 values. */
export function float32FromBase64(text) {
  const bytes = bytesFromBase64(text);
  if (bytes.length % 4 !== 0) throw new Error(`float32 data of ${bytes.length} bytes`);
  const view = new DataView(bytes.buffer);
  const out = new Float32Array(bytes.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
  return out;
}
