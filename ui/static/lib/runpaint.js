// The reverse run's three canvases (views/run.js), painted from plain scenes: the step panel
// (x_t | eps_hat | x0_hat | x_t_prev), the filmstrip and the steps on log SNR(t). Nothing here
// touches the DOM, so the same code paints on the page's canvases or, where the browser can,
// on OffscreenCanvases in a worker (compute/paint_worker.js): there a canvas's new frame is
// handed to the compositor by the worker, and the page's main thread does no canvas work at all.
//
// A scene is what the page computes from its run (lib/runs.js) at the step shown:
//   panel: {cells: [Uint8Array (784) | null] x 4, labels: [string] x 4}
//   film:  {items: [{label, x: Uint8Array, x0: Uint8Array | null}], rows: [string, string]}
//   steps: {key, logSnr (when key is new), title, been, ahead, now, n}
// and a frame is {ratio, width, font, panel, film?, steps?} (css px; ratio: device pixels a px).

import {COLORS, dots, frame as plotFrame, line, star} from "./plot.js";
import {grey, picture, readCells, scratch, sized} from "./draw.js";

const SIDE = 28;
const PANEL_GAP = 8, FILM_GAP = 4;

/** Where the panel's cells go at css width `width`: 4 columns, or 2 rows of 2 when narrow. */
export function panelLayout(width, font, cfg) {
  const gap = PANEL_GAP;
  const columns = width >= 4 * 112 + 5 * gap ? 4 : 2;
  const cell = Math.max(SIDE * 2, SIDE * Math.min(cfg.panel_pixel,
    Math.floor((width - (columns + 1) * gap) / columns / SIDE)));
  const rows = 4 / columns;
  const labelH = Math.round(font * 1.6);
  const rects = Array.from({length: 4}, (_, i) => ({
    x: gap + (i % columns) * (cell + gap),
    y: gap + Math.floor(i / columns) * (cell + gap + labelH) + labelH, size: cell}));
  return {w: columns * (cell + gap) + gap, h: rows * (cell + gap + labelH) + gap, labelH, rects};
}

/** The filmstrip's geometry for `count` moments: as many a row as fit, then more rows. */
export function filmLayout(width, font, cfg, count) {
  const gap = FILM_GAP;
  const left = font * 4;
  const minCell = SIDE * 2;
  const perRow = Math.max(1, Math.min(cfg.film.frames,
    Math.floor((width - left - gap) / (minCell + gap))));
  const cell = Math.max(minCell, SIDE * Math.min(4, Math.floor((width - left - (perRow + 1) * gap) / perRow / SIDE)));
  const labelH = Math.round(font * 1.5);
  const bands = Math.ceil(count / perRow);
  const bandH = labelH + 2 * (cell + gap) + gap;
  return {w: Math.min(width, left + perRow * (cell + gap) + gap), h: bands * bandH, left, perRow,
          cell, labelH, bands, bandH};
}

/** The css size of the steps' plot. */
export function stepsSize(width) {
  return {w: width, h: width < 640 ? 220 : 280};
}

export function paintPanel(canvas, scene, {ratio, width, font}, cfg) {
  const layout = panelLayout(width, font, cfg);
  const ctx = sized(canvas, layout.w, layout.h, ratio);
  ctx.fillStyle = grey(cfg.background);
  ctx.fillRect(0, 0, layout.w, layout.h);
  ctx.font = `${font}px sans-serif`;
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  scene.cells.forEach((pixels, i) => {
    const {x, y, size} = layout.rects[i];
    ctx.fillStyle = "#ebebeb";
    ctx.fillText(scene.labels[i], x + size / 2, y - layout.labelH / 2);
    if (pixels) picture(ctx, pixels, x, y, size);
    else { ctx.fillStyle = grey(cfg.background + 20); ctx.fillRect(x, y, size, size); }
  });
  return layout;
}

/** The run so far: x_t (top) and x0_hat of the step that led there (below) at the moments
 * chosen (lib/runs.js filmPicks), labelled with t; on a narrow screen they wrap onto more rows. */
export function paintFilm(canvas, scene, {ratio, width, font}, cfg) {
  const layout = filmLayout(width, font, cfg, scene.items.length);
  const {w, h, left, perRow, cell, labelH, bands, bandH} = layout;
  const gap = FILM_GAP;
  const ctx = sized(canvas, w, h, ratio);
  ctx.fillStyle = grey(cfg.background);
  ctx.fillRect(0, 0, w, h);
  ctx.font = `${Math.min(font, Math.floor(cell / 4.5))}px sans-serif`;
  ctx.textBaseline = "middle";
  for (let band = 0; band < bands; band++) {
    const y0 = band * bandH;
    ctx.fillStyle = "#ebebeb";
    ctx.textAlign = "left";
    cfg.film.rows.forEach((name, r) => ctx.fillText(name, gap, y0 + labelH + gap + r * (cell + gap) + cell / 2));
  }
  ctx.textAlign = "center";
  scene.items.forEach(({label, x: top, x0}, i) => {
    const x = left + gap + (i % perRow) * (cell + gap);
    const y0 = Math.floor(i / perRow) * bandH;
    ctx.fillStyle = "#ebebeb";
    ctx.fillText(label, x + cell / 2, y0 + labelH / 2 + 2);
    picture(ctx, top, x, y0 + labelH + gap, cell);
    if (x0) picture(ctx, x0, x, y0 + labelH + gap + cell + gap, cell);
    else { ctx.fillStyle = grey(cfg.background); ctx.fillRect(x, y0 + labelH + 2 * gap + cell, cell, cell); }
  });
  return layout;
}

/** log SNR(t) of the model's schedule with the run's timesteps on it: filled where the run has
 * been, hollow ahead, a star where it is now. The curve is drawn once per run and size into a
 * bitmap kept in `memo` (whose logSnr the scene brings only when its key is new). */
export function paintSteps(canvas, scene, {ratio, width, font}, memo) {
  const {w, h} = stepsSize(width);
  if (scene.logSnr) memo.logSnr = {key: scene.key, values: scene.logSnr};
  if (!memo.curve || memo.curve.key !== scene.key) {
    const values = memo.logSnr.values;
    const T = values.length;
    let lo = Infinity, hi = -Infinity;
    for (const v of values) { if (v < lo) lo = v; if (v > hi) hi = v; }
    const bitmap = scratch(1, 1);
    const ctx = sized(bitmap, w, h, ratio);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, w, h);
    const plot = plotFrame(ctx, {w, h, x: [0, T], y: [Math.floor(lo) - 1, Math.ceil(hi) + 1], font,
                                 xLabel: "t", yLabel: "log SNR(t)", title: scene.title});
    line(ctx, plot, Array.from({length: T}, (_, i) => i + 1), values, COLORS.grey, 2);
    memo.curve = {key: scene.key, bitmap, plot};
  }
  const ctx = sized(canvas, w, h, ratio);
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.drawImage(memo.curve.bitmap, 0, 0);
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  const r = Math.max(2.5, Math.min(5, 600 / scene.n));
  dots(ctx, memo.curve.plot, scene.ahead, COLORS.learned, r, false);
  dots(ctx, memo.curve.plot, scene.been, COLORS.learned, r, true);
  if (scene.now.length) star(ctx, memo.curve.plot, scene.now[0], Math.max(9, font * 0.9));
}

/** Paint what a frame brings on the canvases {panel, film, steps}; the panel's layout. */
export function paintFrame(canvases, frame, memo, cfg) {
  const layout = paintPanel(canvases.panel, frame.panel, frame, cfg);
  if (frame.film) paintFilm(canvases.film, frame.film, frame, cfg);
  if (frame.steps) paintSteps(canvases.steps, frame.steps, frame, memo);
  return layout;
}

/** A painter of frames on the canvases {panel, film, steps} (elements or OffscreenCanvases):
 * draw(frame), and read() the panel's pictures as last painted. */
export function canvasPainter(canvases, cfg) {
  const memo = {};
  let layout = null, ratio = 1;
  return {
    draw(frame) {
      layout = paintFrame(canvases, frame, memo, cfg);
      ratio = frame.ratio;
    },
    read: () => (layout ? readCells(canvases.panel, layout.rects, ratio) : null),
  };
}
