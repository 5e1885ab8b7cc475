// Pure helpers of the 2-D playground's views (views/toy.js, views/toypaths.js), covered by
// node --test: the square plot of the plane, arrows of a field scaled alike in both panels,
// isolines of a density on a grid (marching squares), a colour map, the loss curve's range.

/** Maps between the plane [-box, box]^2 and a square canvas of `size` css pixels (y up). */
export function plane(box, size, margin = 0) {
  const k = (size - 2 * margin) / (2 * box);
  return {
    box, size, margin,
    sx: (x) => margin + (x + box) * k,
    sy: (y) => margin + (box - y) * k,
    fromCanvas: (px, py) => [(px - margin) / k - box, box - (py - margin) / k],
    scale: k,
  };
}

/** The q-th quantile (0..1, nearest rank) of |v_i| for vectors stored as [x0, y0, x1, y1, ...]. */
export function normQuantile(vectors, q = 0.95) {
  const norms = [];
  for (let i = 0; i + 1 < vectors.length; i += 2) {
    const n = Math.hypot(vectors[i], vectors[i + 1]);
    if (Number.isFinite(n)) norms.push(n);
  }
  if (!norms.length) return 0;
  norms.sort((a, b) => a - b);
  return norms[Math.max(0, Math.min(norms.length - 1, Math.ceil(q * norms.length) - 1))];
}

/** One length scale for several fields drawn side by side: a vector of the fields' 95th
 * percentile norm is drawn `cell` long (so the panels compare), longer ones are capped at
 * 1.5 cells by `arrow`. */
export function arrowScale(fields, cell) {
  const reference = Math.max(...fields.map((f) => normQuantile(f)), 1e-12);
  return cell / reference;
}

/** The segment [x0, y0, x1, y1] in canvas pixels of the arrow of vector v at point p,
 * `scale` pixels a unit, capped at `cap` pixels. */
export function arrow(p, v, scale, cap) {
  let dx = v[0] * scale, dy = -v[1] * scale;                  // canvas y points down
  const length = Math.hypot(dx, dy);
  if (length > cap) { dx *= cap / length; dy *= cap / length; }
  return [p[0], p[1], p[0] + dx, p[1] + dy];
}

/** Marching squares: the segments of the isoline `level` of values on a side x side grid of
 * cell centres (row-major, row 0 at the lowest y), in grid units (column, row) with the
 * crossings linearly interpolated. */
export function isolines(values, side, level) {
  const segments = [];
  const at = (r, c) => values[r * side + c];
  const cross = (a, b) => (level - a) / (b - a);
  for (let r = 0; r + 1 < side; r++) {
    for (let c = 0; c + 1 < side; c++) {
      const v = [at(r, c), at(r, c + 1), at(r + 1, c + 1), at(r + 1, c)];   // corners, anticlockwise
      const corners = [[c, r], [c + 1, r], [c + 1, r + 1], [c, r + 1]];
      const points = [];
      for (let e = 0; e < 4; e++) {
        const a = v[e], b = v[(e + 1) % 4];
        if ((a < level) !== (b < level)) {
          const f = cross(a, b);
          const [x0, y0] = corners[e], [x1, y1] = corners[(e + 1) % 4];
          points.push([x0 + f * (x1 - x0), y0 + f * (y1 - y0)]);
        }
      }
      if (points.length === 2) segments.push([...points[0], ...points[1]]);
      else if (points.length === 4) {       // a saddle: pair the crossings by the centre's side
        const centre = (v[0] + v[1] + v[2] + v[3]) / 4;
        const [p0, p1, p2, p3] = points;
        if ((centre < level) === (v[0] < level)) {
          segments.push([...p0, ...p1], [...p2, ...p3]);
        } else {
          segments.push([...p0, ...p3], [...p1, ...p2]);
        }
      }
    }
  }
  return segments;
}

/** Contour levels of a density: `count` levels spread evenly in log between its maximum / 100
 * and 90 % of the maximum. */
export function densityLevels(values, count = 5) {
  let max = 0;
  for (const v of values) if (v > max) max = v;
  if (!(max > 0)) return [];
  const lo = Math.log(max / 100), hi = Math.log(0.9 * max);
  return Array.from({length: count}, (_, i) => Math.exp(lo + ((hi - lo) * i) / Math.max(1, count - 1)));
}

/** A colour for v in [0, 1]: white -> orange -> dark red (the gap map's scale). */
export function heat(v) {
  const x = Math.max(0, Math.min(1, Number.isFinite(v) ? v : 0));
  const stops = [[255, 255, 255], [253, 174, 97], [215, 48, 39], [103, 0, 13]];
  const f = x * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(f));
  const w = f - i;
  const c = stops[i].map((s, k) => Math.round(s + w * (stops[i + 1][k] - s)));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

/** The y-range of the loss curve: the finite values' 2nd to 98th percentile, padded, with the
 * floor (when known) kept inside. */
export function lossRange(columns, floor = null) {
  const values = [];
  for (const column of columns) for (const v of column) if (Number.isFinite(v)) values.push(v);
  if (Number.isFinite(floor)) values.push(floor);
  if (!values.length) return [0, 1];
  values.sort((a, b) => a - b);
  const q = (p) => values[Math.min(values.length - 1, Math.floor(p * (values.length - 1)))];
  let lo = Math.min(q(0.02), Number.isFinite(floor) ? floor : Infinity);
  let hi = q(0.98);
  if (!(hi > lo)) { hi = lo + 1; }
  const pad = 0.08 * (hi - lo);
  return [lo - pad, hi + pad];
}

/** Append a message's history columns (Float32Arrays from `from` on) to `history` ({name:
 * number[]}); a message from an earlier point cuts the history there first. */
export function appendHistory(history, message, names) {
  const from = message.from ?? 0;
  for (const name of names) {
    const column = history[name] ?? (history[name] = []);
    column.length = Math.min(column.length, from);
    for (const v of message[name] ?? []) column.push(v);
  }
  return history;
}

/** Points [x, y] a drag adds: the pointer's positions at least `spacing` apart (in the plane's
 * units) from the last point kept. */
export function thin(points, spacing) {
  const kept = [];
  for (const p of points) {
    const last = kept[kept.length - 1];
    if (!last || Math.hypot(p[0] - last[0], p[1] - last[1]) >= spacing) kept.push(p);
  }
  return kept;
}
