// The worker that paints the reverse run's canvases (views/run.js), when the browser can hand
// them over (canvas.transferControlToOffscreen): each frame the page sends what to draw (a
// frame of lib/runpaint.js scenes, a few KB of pictures) and the worker paints it; the browser
// takes the worker's canvases to the screen without the page's main thread. Messages:
//   {type: "init", canvases: {panel, film, steps} (OffscreenCanvas, transferred), config}
//   {type: "draw", frame}             paint it (no answer)
//   {type: "read", id}  -> {id, cells}  the panel's pictures as painted (tests, benchmarks)
//   a failure           -> {error: "what went wrong"}

import {paintFrame, readCells} from "../lib/runpaint.js";

let canvases = null, config = null, layout = null, ratio = 1;
const memo = {};

self.onmessage = ({data}) => {
  try {
    if (data.type === "init") {
      ({canvases, config} = data);
    } else if (data.type === "draw") {
      layout = paintFrame(canvases, data.frame, memo, config);
      ratio = data.frame.ratio;
    } else if (data.type === "read") {
      self.postMessage({id: data.id, cells: readCells(canvases.panel, layout, ratio)});
    } else {
      throw new Error(`unknown request ${JSON.stringify(data.type)}; valid: init, draw, read`);
    }
  } catch (error) {
    self.postMessage({id: data.id, error: String(error?.message ?? error)});
  }
};
