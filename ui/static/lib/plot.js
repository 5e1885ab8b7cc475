// Small plots drawn on a canvas from arrays (the live views redraw them every frame, which a
// Plotly figure per frame could not keep up with). Pure helpers first (node --test covers them),
// then the drawing.

/** About `count` round tick values covering [lo, hi] (1, 2 or 5 times a power of ten apart). */
export function niceTicks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const ticks = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    ticks.push(Math.abs(v) < step * 1e-9 ? 0 : +v.toPrecision(12));
  }
  return ticks;
}

/** A linear map from [d0, d1] to [r0, r1]. */
export function linear([d0, d1], [r0, r1]) {
  const k = (r1 - r0) / (d1 - d0);
  return (v) => r0 + (v - d0) * k;
}

/** The text of a tick value: short, no float noise. */
export function tickText(v) {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(0).replace("e+", "e");
  return String(+v.toPrecision(4));
}

// ---------------------------------------------------------------- drawing

export const COLORS = {learned: "#d62728", linear: "#1f77b4", cosine: "#2ca02c", grey: "#7f7f7f",
                       ink: "#222", axis: "#888", grid: "#e6e6e6"};

/** A plot area inside a canvas of css size (w, h): margins for the tick labels; returns the
 * box and the x / y maps for the given domains. */
export function frame(ctx, {w, h, x: [x0, x1], y: [y0, y1], font, title, xLabel, yLabel,
                            xTicks, yTicks, yText = tickText}) {
  const size = font;
  const left = size * 3.6, right = size * 1.8, top = title ? size * 2 : size * 0.8;
  const bottom = size * (xLabel ? 3.2 : 2);
  const box = {left, top, right: w - right, bottom: h - bottom};
  const sx = linear([x0, x1], [box.left, box.right]);
  const sy = linear([y0, y1], [box.bottom, box.top]);
  ctx.save();
  ctx.font = `${size}px sans-serif`;
  ctx.fillStyle = COLORS.ink;
  ctx.strokeStyle = COLORS.grid;
  ctx.lineWidth = 1;
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const v of xTicks ?? niceTicks(x0, x1, Math.max(2, Math.floor((box.right - box.left) / (size * 6))))) {
    const x = sx(v);
    ctx.beginPath(); ctx.moveTo(x, box.top); ctx.lineTo(x, box.bottom); ctx.stroke();
    ctx.fillText(tickText(v), x, box.bottom + size * 0.3);
  }
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const v of yTicks ?? niceTicks(y0, y1, Math.max(2, Math.floor((box.bottom - box.top) / (size * 2.5))))) {
    const y = sy(v);
    ctx.beginPath(); ctx.moveTo(box.left, y); ctx.lineTo(box.right, y); ctx.stroke();
    ctx.fillText(yText(v), box.left - size * 0.3, y);
  }
  ctx.strokeStyle = COLORS.axis;
  ctx.strokeRect(box.left, box.top, box.right - box.left, box.bottom - box.top);
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  if (title) ctx.fillText(title, (box.left + box.right) / 2, size * 0.4);
  if (xLabel) ctx.fillText(xLabel, (box.left + box.right) / 2, box.bottom + size * 1.6);
  if (yLabel) {
    ctx.translate(size * 0.2, (box.top + box.bottom) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText(yLabel, 0, 0);
  }
  ctx.restore();
  return {box, sx, sy};
}

/** A line through points (xs[i], ys[i]) in plot coordinates, clipped to the box. */
export function line(ctx, {box, sx, sy}, xs, ys, color, width = 2, dash = []) {
  ctx.save();
  ctx.beginPath();
  ctx.rect(box.left, box.top, box.right - box.left, box.bottom - box.top);
  ctx.clip();
  ctx.strokeStyle = color;
  ctx.lineWidth = width;
  ctx.setLineDash(dash);
  ctx.beginPath();
  let started = false;
  for (let i = 0; i < xs.length; i++) {
    const y = ys[i];
    if (!Number.isFinite(y)) { started = false; continue; }
    if (started) ctx.lineTo(sx(xs[i]), sy(y));
    else { ctx.moveTo(sx(xs[i]), sy(y)); started = true; }
  }
  ctx.stroke();
  ctx.restore();
}

/** Round markers at points [x, y]: filled, or white with a coloured ring. */
export function dots(ctx, {sx, sy}, points, color, radius, filled = true) {
  ctx.save();
  ctx.lineWidth = Math.max(1.5, radius / 3);
  ctx.strokeStyle = color;
  ctx.fillStyle = filled ? color : "#fff";
  for (const [x, y] of points) {
    ctx.beginPath();
    ctx.arc(sx(x), sy(y), radius, 0, 2 * Math.PI);
    ctx.fill();
    ctx.stroke();
  }
  ctx.restore();
}

/** A five-pointed star at a point (where the run is now). */
export function star(ctx, {sx, sy}, [x, y], radius, color = "#000") {
  ctx.save();
  ctx.beginPath();
  for (let i = 0; i < 10; i++) {
    const r = i % 2 ? radius * 0.45 : radius;
    const a = -Math.PI / 2 + (i * Math.PI) / 5;
    ctx.lineTo(sx(x) + r * Math.cos(a), sy(y) + r * Math.sin(a));
  }
  ctx.closePath();
  ctx.fillStyle = color;
  ctx.strokeStyle = "#fff";
  ctx.lineWidth = 2;
  ctx.fill();
  ctx.stroke();
  ctx.restore();
}

/** A legend: [label, colour] pairs in a row from (x, y). */
export function legend(ctx, items, x, y, font) {
  ctx.save();
  ctx.font = `${font}px sans-serif`;
  ctx.textBaseline = "middle";
  ctx.textAlign = "left";
  for (const [label, color] of items) {
    ctx.fillStyle = color;
    ctx.fillRect(x, y - font * 0.15, font * 1.2, font * 0.3);
    ctx.fillStyle = COLORS.ink;
    ctx.fillText(label, x + font * 1.5, y);
    x += font * 2 + ctx.measureText(label).width + font;
  }
  ctx.restore();
}
