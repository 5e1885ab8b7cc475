// The worker that paints the reverse run's canvases (views/run.js), when the browser can hand
// them over (canvas.transferControlToOffscreen): each frame the page sends what to draw (a
// frame of lib/runpaint.js scenes, a few KB of pictures) and the worker paints it; the browser
// takes the worker's canvases to the screen without the page's main thread. Messages:
//   {type: "init", canvases: {panel, film, steps} (OffscreenCanvas, transferred), config}
//   {type: "draw", frame}             paint it (no answer)
//   {type: "read", id}  -> {id, cells}  the panel's pictures as painted (tests, benchmarks)
//   a failure           -> {error: "what went wrong"}

import {canvasPainter} from "../lib/runpaint.js";

let painter = null;

self.onmessage = ({data}) => {
  try {
    if (data.type === "init") {
      painter = canvasPainter(data.canvases, data.config);
    } else if (data.type === "draw") {
      painter.draw(data.frame);
    } else if (data.type === "read") {
      self.postMessage({id: data.id, cells: painter.read()});
    } else {
      throw new Error(`unknown request ${JSON.stringify(data.type)}; valid: init, draw, read`);
    }
  } catch (error) {
    self.postMessage({id: data.id, error: String(error?.message ?? error)});
  }
};
