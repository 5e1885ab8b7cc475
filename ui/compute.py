"""What a page needs to run a network itself: onnxruntime-web (ui/static/vendor/, run by the
worker ui/static/compute/eps_worker.js through ui/static/lib/eps.js) and the dataset's ONNX
graph (explorer/export.py), both served by the app, never a CDN.

`page_compute(dataset)` is the config `openEps(config)` takes (eps.js), or None when the graph
cannot be offered (missing, damaged, or exported from other weights than the ones the app
serves): the page then asks the server, as before. URLs are relative to the page, as
`ui.page.static_url` gives them. Serving a graph means `gr.set_static_paths` on that one file
(not the folder: the weights beside it need not be served); Gradio checks its static paths on
every `/gradio_api/file=` request, so a graph is servable once its config has been made.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import gradio as gr

from explorer.checkpoint import CheckpointError, read_record
from explorer.data import DATASETS
from explorer.export import MANIFEST, check_exports
from explorer.paths import pretrained_dir

from .page import static_url

VENDOR = "vendor/onnxruntime-web"
EPS_GRAPH = "vdm_eps"


@functools.cache
def _serve(path: Path) -> None:
    """Let `/gradio_api/file=<path>` serve this one file (once: Gradio's list only grows)."""
    gr.set_static_paths(paths=[path])


def runtime() -> dict:
    """The URLs of onnxruntime-web's ES module and its WebAssembly runtime (ort's
    `env.wasm.wasmPaths`: the Emscripten loader `mjs` and the binary `wasm`)."""
    return {"ort": static_url(f"{VENDOR}/ort.wasm.min.mjs"),
            "wasm": {"mjs": static_url(f"{VENDOR}/ort-wasm-simd-threaded.mjs"),
                     "wasm": static_url(f"{VENDOR}/ort-wasm-simd-threaded.wasm")}}


def page_compute(dataset: str, root: Path | str | None = None) -> dict | None:
    """The config of the VDM's eps-network eps_theta(x_t, t) for the page: the runtime's URLs
    (`runtime()`) and `graph`: {url, sha256, inputs, outputs, T} of
    pretrained/<dataset>/vdm_eps.onnx (x_t (B, 1, 28, 28) float32, t (B,) int64 in 1..T ->
    eps (B, 1, 28, 28)) as onnx.json records it, T from the VDM's record. None when that graph
    is missing, damaged or stale (`check_exports`), or a record it is checked against is
    missing. It hashes the dataset's graphs (~8 MB): make it once per dataset, not per request.

    `root` is the pretrained folder (default: `pretrained_dir()`, the one STORE loaded from).
    The weights a graph is compared with are read where explorer.export reads them:
    `pretrained_dir()`, whatever `root` is."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; valid: {', '.join(DATASETS)}")
    folder = (Path(root) if root is not None else pretrained_dir()) / dataset
    # every graph of the dataset is checked; only problems of this one (or of the manifest
    # itself) keep it from the page: a stale VAE decoder does not stop the VDM
    try:
        problems = check_exports(dataset, folder)
        if any(f"{EPS_GRAPH}.onnx" in p or MANIFEST in p for p in problems):
            return None
        entry = json.loads((folder / MANIFEST).read_text())["graphs"].get(EPS_GRAPH)
        if entry is None:
            return None
        T = read_record(folder / entry["from"])["config"]["T"]
    except CheckpointError:
        return None
    path = (folder / entry["file"]).resolve()
    _serve(path)
    return {**runtime(), "dataset": dataset,
            "graph": {"url": f"gradio_api/file={path.as_posix()}", "sha256": entry["sha256"],
                      "inputs": entry["inputs"], "outputs": entry["outputs"], "T": T}}
