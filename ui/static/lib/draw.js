// Pictures on a canvas: 28x28 uint8 images drawn as crisp blocks (nearest neighbour), the
// canvas sized for the screen's pixel ratio so nothing is blurred.

/** Size `canvas` to css (w, h) at the device pixel ratio; returns its 2-D context in css units. */
export function fit(canvas, w, h) {
  canvas.style.width = `${w}px`;
  canvas.style.height = `${h}px`;
  return sized(canvas, w, h, window.devicePixelRatio || 1);
}

/** Size the bitmap of `canvas` (a canvas or an OffscreenCanvas, which has no style) for css
 * (w, h) at `ratio`; its 2-D context, in css units, with no smoothing. */
export function sized(canvas, w, h, ratio) {
  const pw = Math.round(w * ratio), ph = Math.round(h * ratio);
  if (canvas.width !== pw || canvas.height !== ph) {
    canvas.width = pw;
    canvas.height = ph;
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.imageSmoothingEnabled = false;
  return ctx;
}

/** A canvas to draw off screen: an element where there is a document, else (in a worker) an
 * OffscreenCanvas. */
export function scratch(w, h) {
  if (typeof document === "undefined") return new OffscreenCanvas(w, h);
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  return canvas;
}

const tiles = new Map();           // side -> a small canvas to stage one picture

/** Draw a side x side uint8 picture (null: nothing) into the square (x, y, size), each pixel a
 * block, with no smoothing. */
export function picture(ctx, pixels, x, y, size, side = 28) {
  if (!pixels) return;
  let tile = tiles.get(side);
  if (!tile) {
    tile = scratch(side, side);
    tiles.set(side, tile);
  }
  const t = tile.getContext("2d");
  const image = t.createImageData(side, side);
  for (let i = 0; i < side * side; i++) {
    const v = pixels[i];
    image.data[4 * i] = v;
    image.data[4 * i + 1] = v;
    image.data[4 * i + 2] = v;
    image.data[4 * i + 3] = 255;
  }
  t.putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tile, x, y, size, size);
}

/** The css font size for a view's text: larger in presenter mode. */
export function fontSize(base = 13) {
  return document.body.classList.contains("presenter") ? Math.round(base * 1.5) : base;
}

/** The grey the server puts between frames (ui/common.py BACKGROUND), as css. */
export function grey(level) {
  return `rgb(${level},${level},${level})`;
}

/** Call `draw` at most once per animation frame, with the latest arguments. */
export function everyFrame(draw) {
  let pending = null;
  return (...args) => {
    const first = pending === null;
    pending = args;
    if (first) {
      requestAnimationFrame(() => {
        const latest = pending;
        pending = null;
        draw(...latest);
      });
    }
  };
}

/** element.textContent = text, unless it is that already: a write, even of the same text,
 * replaces the text node and invalidates the element's style, layout and paint. */
export function setText(element, text) {
  if (element.textContent !== text) element.textContent = text;
}

/** element[name] = value, unless it is that already (an input's value, max, a button's
 * disabled: setting a reflected property sets its attribute again, and the page restyles). */
export function setProp(element, name, value) {
  if (element[name] !== value) element[name] = value;
}

/** Pictures as painted on `canvas` in the squares `rects` ({x, y, size}, css px): side x side
 * grey levels each, read back at the centre of every model pixel (`ratio` device pixels a px). */
export function readCells(canvas, rects, ratio, side = 28) {
  const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  return rects.map(({x, y, size}) => Array.from({length: side * side}, (_, p) => {
    const px = Math.floor((x + ((p % side) + 0.5) * size / side) * ratio);
    const py = Math.floor((y + (Math.floor(p / side) + 0.5) * size / side) * ratio);
    return data[4 * (py * canvas.width + px)];
  }));
}
