"""The forward scrub painted in the page: as the VDM tab's t slider moves, the page itself mixes

    x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps

and paints the picture and the pixel histogram at once, instead of waiting for the server.

The server sends the session's x_0 and eps and the schedule's two root tables once per image,
schedule and seed (`vdm_views.scrub_data`, into the hidden textbox #vdm-scrub-data). Its own
reply (/vdm_scrub, with the same pixels and the same histogram) comes once the move ends, on
Gradio's release event: the slider fires it when a pointer lets go, and this script fires it
when t has rested after a key, or was set by a scene link. That reply is what the download
button saves and what API callers get. Its PNG is named x_t-<t>-<hash>.png and the histogram's
title names t, so when a reply is for another t than the slider's (a drag outran the server),
the page paints over it again.

The arithmetic follows the server's exactly: float32 products and sum as numpy does them, the
clamp and the round-half-to-even of `explorer.likelihood.to_bin_index`, the nearest-neighbour
upscale with a grey frame of `ui.common.compose`, and np.histogram's density on 40 bins over
[-4, 4]. tests/test_browser.py checks the painted pixels against the server's PNG.
"""

# A block of the page script (bridge.py puts it inside its function): defines scrubMoved(),
# for every input event of the t slider, scrubCheck(), for the page's half-second timer, and
# watch(), which re-asserts the picture and histogram when a server reply for another t lands.
JS = r"""
  const scrub = {raw: null, data: null, url: null};
  const scrubData = () => {
    const box = document.querySelector("#vdm-scrub-data textarea, #vdm-scrub-data input");
    const raw = box ? box.value : "";
    if (raw !== scrub.raw) {
      scrub.raw = raw;
      try { scrub.data = raw ? JSON.parse(raw) : null; } catch (e) { scrub.data = null; }
    }
    return scrub.data;
  };
  const range = () => document.querySelector("#vdm-t input[type=range]");
  const sliderT = () => {
    const el = range();
    return el ? Math.round(+el.value) : null;
  };
  const roundHalfEven = (v) => {
    const f = Math.floor(v), r = v - f;
    return r > 0.5 || (r === 0.5 && f % 2 !== 0) ? f + 1 : f;
  };
  // x_t as numpy computes it: float32 (a * x_0) + float32 (b * eps), rounded to float32
  const mix = (d, t) => {
    const a = Math.fround(d.a[t]), b = Math.fround(d.b[t]);
    const x = new Float32Array(d.x0.length);
    for (let i = 0; i < x.length; i++) {
      x[i] = Math.fround(a * d.x0[i]) + Math.fround(b * d.eps[i]);
    }
    return x;
  };
  const render = (d, x) => {                   // the PNG data URL of compose([[x_t]], pixel)
    const side = 28, cell = side * d.pixel, full = cell + 2 * d.gap;
    const small = document.createElement("canvas");
    small.width = small.height = side;
    const pixels = small.getContext("2d").createImageData(side, side);
    for (let i = 0; i < side * side; i++) {
      const clamped = Math.min(1, Math.max(-1, x[i]));
      const k = roundHalfEven(Math.fround(Math.fround(clamped + 1) * 127.5));
      pixels.data.set([k, k, k, 255], 4 * i);
    }
    small.getContext("2d").putImageData(pixels, 0, 0);
    const big = document.createElement("canvas");
    big.width = big.height = full;
    const ctx = big.getContext("2d");
    ctx.fillStyle = `rgb(${d.background},${d.background},${d.background})`;
    ctx.fillRect(0, 0, full, full);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(small, d.gap, d.gap, cell, cell);
    return big.toDataURL("image/png");
  };
  const density = (d, x) => {                 // np.histogram(clip(x, lo, hi), density=True)
    const [lo, hi, n] = d.bins, width = (hi - lo) / n, counts = new Array(n).fill(0);
    for (let i = 0; i < x.length; i++) {
      const v = Math.min(hi, Math.max(lo, x[i]));
      counts[Math.min(n - 1, Math.floor((v - lo) / width))] += 1;
    }
    return counts.map(c => Math.round(c / (x.length * width) * 1e4) / 1e4);
  };
  const paintPicture = (d, t, x) => {
    const img = document.querySelector("#vdm-xt img");
    if (!img) return;
    scrub.url = render(d, x);
    img.dataset.scrubT = String(t);
    img.src = scrub.url;
  };
  const paintHistogram = (d, t, x) => {
    const gd = document.querySelector("#vdm-hist .js-plotly-plot");
    if (!gd || !gd.data || !window.Plotly) return;
    window.Plotly.update(gd, {y: [density(d, x)]},
                         {"title.text": `pixel values of x_t (t = ${t}) against N(0, 1)`}, [0]);
  };
  const histogramT = () => {
    const gd = document.querySelector("#vdm-hist .js-plotly-plot");
    const text = gd && gd.layout && gd.layout.title ? gd.layout.title.text || "" : "";
    const m = /\(t = (\d+)\)/.exec(text);
    return m ? +m[1] : null;
  };
  const pictureT = () => {
    const img = document.querySelector("#vdm-xt img");
    if (!img || !img.src) return null;
    if (img.src === scrub.url) return +img.dataset.scrubT;
    const m = /x_t-(\d+)-[0-9a-f]+\.png/.exec(decodeURIComponent(img.src));
    return m ? +m[1] : null;
  };
  // fn after the frame that shows the picture just painted (its PNG decoded), so slower work
  // (the histogram, the curves' cursor: Plotly redraws) never holds that frame back
  const afterPaint = (fn) => {
    const img = document.querySelector("#vdm-xt img");
    const decoded = img && scrub.url && img.src === scrub.url && img.decode
      ? img.decode().catch(() => {}) : Promise.resolve();
    decoded.then(() => requestAnimationFrame(() => setTimeout(fn, 0)));
  };
  // paint what the slider says: the picture now, the histogram once that frame is painted
  // (skipped when t has moved on by then: a drag redraws the histogram only when it rests)
  const paintScrub = () => {
    const d = scrubData(), t = sliderT();
    if (!d || t === null || !(t in d.a)) return;
    const x = mix(d, t);
    if (pictureT() !== t) paintPicture(d, t, x);
    if (histogramT() !== t) afterPaint(() => { if (sliderT() === t) paintHistogram(d, t, x); });
  };
  // the server's reply at the slider's t is asked for by Gradio's release event: the slider
  // fires it when a pointer lets go; after a key (or a scene link, which sets t without any
  // input event) the page fires it itself, once t has rested for a moment
  let pointerDown = false, confirmTimer = null, askedT = null;
  const release = (el) => {   // Gradio's release of el's slider (a pointerup let through at once)
    const ev = new PointerEvent("pointerup", {bubbles: true});
    ev.scrubReady = true;
    el.dispatchEvent(ev);
  };
  const confirmSoon = (ms) => {
    clearTimeout(confirmTimer);
    confirmTimer = setTimeout(() => {
      const el = range();
      if (!el || pointerDown) return;
      askedT = sliderT();
      release(el);
    }, ms);
  };
  const onSlider = (ev) => ev.target && ev.target.closest && ev.target.closest("#vdm-t");
  document.addEventListener("pointerdown", (ev) => { if (onSlider(ev)) pointerDown = true; }, true);
  // a pointer let go on the slider: Gradio's release (its request, ~100 ms of page script) waits
  // until the frame with the new picture is painted, so a quick click shows x_t at once too
  document.addEventListener("pointerup", (ev) => {
    pointerDown = false;
    if (!onSlider(ev) || ev.scrubReady) return;
    ev.stopImmediatePropagation();
    const target = ev.target;
    afterPaint(() => release(target));
  }, true);
  const scrubMoved = () => {                  // every input event of the t slider
    paintScrub();
    if (!pointerDown) confirmSoon(150);
  };
  const scrubCheck = () => {                  // twice a second: t set from outside the page
    const t = sliderT(), shown = pictureT();
    if (t === null || shown === null || shown === t || pointerDown) return;
    paintScrub();
    if (askedT !== t) confirmSoon(0);           // once per t: a failed reply is not retried
  };
  // a server reply for an older t landed: paint over it (a reply for the slider's t stays)
  let pending = false;
  const reassert = () => {
    if (pending) return;
    pending = true;
    queueMicrotask(() => { pending = false; paintScrub(); });
  };
  const watch = () => {
    for (const id of ["vdm-xt", "vdm-hist"]) {
      const el = document.getElementById(id);
      if (!el || el.__scrubWatched) continue;
      el.__scrubWatched = true;
      new MutationObserver(reassert).observe(el, {subtree: true, childList: true,
                                                  attributes: true, attributeFilter: ["src"]});
    }
  };
  // for tests: what the page would paint at t (null before the server sent the scrub's data)
  window.latentExplorerScrub = (t) => {
    const d = scrubData();
    if (!d || !(t in d.a)) return null;
    const x = mix(d, t);
    return {picture: render(d, x), histogram: density(d, x)};
  };
"""
