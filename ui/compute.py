"""What a page needs to run a network itself: onnxruntime-web (ui/static/vendor/, run by the
worker ui/static/compute/graph_worker.js through ui/static/lib/eps.js) and the dataset's ONNX
graphs (explorer/export.py), both served by the app, never a CDN.

`graph_config(dataset, name)` is the config `openGraph(config)` takes (eps.js) for one shipped
graph (`GRAPHS`: the VDM's eps-network, the VAE's and the HVAE's decoders); `page_compute(dataset)`
is the VDM's (`openEps(config)`), with T. Each is None when that graph cannot be offered
(missing, damaged, or exported from other weights than the ones the app serves): the page then
asks the server, as before. A problem of one graph keeps only that one from the page. URLs are
relative to the page, as `ui.page.static_url` gives them. Serving a graph means
`gr.set_static_paths` on that one file (not the folder: the weights beside it need not be
served); Gradio checks its static paths on every `/gradio_api/file=` request, so a graph is
servable once its config has been made.

With more than one thread, onnxruntime-web needs SharedArrayBuffer, which a browser gives only a
cross-origin isolated page: `CrossOriginIsolation` makes every response of the app say so
(`python app.py` and the tests launch through `app.launch`). A page that is not isolated (the app
inside another site's iframe, as a Space's page shows it; a browser without `credentialless`)
runs the graphs on one thread, as before.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import gradio as gr

from explorer.checkpoint import CheckpointError, read_record
from explorer.data import DATASETS
from explorer.export import MANIFEST, check_exports
from explorer.paths import pretrained_dir

from .page import static_url

VENDOR = "vendor/onnxruntime-web"
EPS_GRAPH = "vdm_eps"
# the graphs a page may run (explorer/export.py `graphs`), with the name its messages use
GRAPHS = {"vdm_eps": "eps network", "vae_decoder": "VAE decoder",
          "hvae_decoder": "HVAE decoder"}


@functools.cache
def _serve(path: Path) -> None:
    """Let `/gradio_api/file=<path>` serve this one file (once: Gradio's list only grows)."""
    gr.set_static_paths(paths=[path])


class CrossOriginIsolation:
    """ASGI middleware: every HTTP response of the app carries COOP `same-origin` and COEP
    `credentialless`, which make the page cross-origin isolated (`self.crossOriginIsolated`),
    so its workers may share memory between threads (graph_worker.js then runs a graph on
    several). `credentialless` rather than `require-corp`: a resource from another site (none
    is needed; a Space may add some) still loads, without cookies, instead of being blocked."""

    HEADERS = ((b"cross-origin-opener-policy", b"same-origin"),
               (b"cross-origin-embedder-policy", b"credentialless"))

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        names = {name for name, _ in self.HEADERS}

        async def send_isolated(message):
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": [*kept, *self.HEADERS]}
            await send(message)

        await self.app(scope, receive, send_isolated)


def runtime() -> dict:
    """The URLs of onnxruntime-web's ES module and its WebAssembly runtime (ort's
    `env.wasm.wasmPaths`: the Emscripten loader `mjs` and the binary `wasm`)."""
    return {"ort": static_url(f"{VENDOR}/ort.wasm.min.mjs"),
            "wasm": {"mjs": static_url(f"{VENDOR}/ort-wasm-simd-threaded.mjs"),
                     "wasm": static_url(f"{VENDOR}/ort-wasm-simd-threaded.wasm")}}


def _about(problem: str, name: str) -> bool:
    """Whether a `check_exports` problem is one of graph `name` (its file, not a longer name
    that ends like it: hvae_decoder.onnx is not vae_decoder.onnx) or of the manifest."""
    return MANIFEST in problem or re.search(rf"(?<![\w-]){re.escape(name)}\.onnx\b",
                                            problem) is not None


def _checked(dataset: str, name: str, root: Path | str | None) -> tuple[Path, dict] | None:
    """(folder, onnx.json's entry) of graph `name` when nothing is wrong with it, else None."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; valid: {', '.join(DATASETS)}")
    if name not in GRAPHS:
        raise ValueError(f"unknown graph {name!r}; valid: {', '.join(GRAPHS)}")
    folder = (Path(root) if root is not None else pretrained_dir()) / dataset
    try:
        if any(_about(p, name) for p in check_exports(dataset, folder)):
            return None
        entry = json.loads((folder / MANIFEST).read_text())["graphs"].get(name)
    except CheckpointError:
        return None
    return None if entry is None else (folder, entry)


def graph_config(dataset: str, name: str, root: Path | str | None = None) -> dict | None:
    """The config of graph `name` of `dataset` for the page: the runtime's URLs (`runtime()`)
    and `graph`: {name, label, url, sha256, inputs, outputs, shapes} as onnx.json records it
    (shapes: of the example inputs it was exported with; the batch axis is free). None when
    that graph is missing, damaged or stale (`check_exports`), or a record it is checked
    against is missing. It hashes the dataset's graphs (~8 MB): make it once per dataset, not
    per request.

    `root` is the pretrained folder (default: `pretrained_dir()`, the one STORE loaded from).
    The weights a graph is compared with are read where explorer.export reads them:
    `pretrained_dir()`, whatever `root` is."""
    checked = _checked(dataset, name, root)
    return None if checked is None else _config(dataset, name, *checked)


def _config(dataset: str, name: str, folder: Path, entry: dict) -> dict:
    """The page's config of a checked graph (`graph_config`); Gradio may serve its file now."""
    path = (folder / entry["file"]).resolve()
    _serve(path)
    return {**runtime(), "dataset": dataset,
            "graph": {"name": name, "label": GRAPHS[name],
                      "url": f"gradio_api/file={path.as_posix()}", "sha256": entry["sha256"],
                      "inputs": entry["inputs"], "outputs": entry["outputs"],
                      "shapes": entry.get("shapes", {})}}


def page_compute(dataset: str, root: Path | str | None = None) -> dict | None:
    """The config of the VDM's eps-network eps_theta(x_t, t) for the page (`openEps(config)`):
    `graph_config(dataset, "vdm_eps")` (x_t (B, 1, 28, 28) float32, t (B,) int64 in 1..T ->
    eps (B, 1, 28, 28)) with `graph.T` from the VDM's record; None when that graph cannot be
    offered (a stale VAE decoder does not stop the VDM)."""
    checked = _checked(dataset, EPS_GRAPH, root)
    if checked is None:
        return None
    folder, entry = checked
    try:
        T = read_record(folder / entry["from"])["config"]["T"]
    except CheckpointError:
        return None
    config = _config(dataset, EPS_GRAPH, folder, entry)
    return {**config, "graph": {**config["graph"], "T": T}}
