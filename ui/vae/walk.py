"""The latent walk from A to B (ui/static/views/walk.js), the server's side: the page moves w
with a slider or Play and paints A | lerp(w) | slerp(w) | pixels (1 - w) A + w B | B itself.
Once per choice of A and B the server sends what the walk needs (`view_data`: the endpoint
latents and both pictures, compact arrays, and the decoder graph's config); the page computes
the path latents (ui/static/lib/walk.js, explorer.latent's formulas) and decodes them in a
worker, so a drag asks nothing of the server. Where the page cannot decode (?compute=server,
the switch off, no WebAssembly or workers, no usable graph) `frames` does, a server function
of the view: one stop's two frames a call.

The walk stops at w_k = k / (STEPS - 1) rounded to float32 (`walk_w`), on both sides alike.
This module holds what the VAE and the HVAE walks share; ui/hvae/walk.py is the HVAE's.
"""

from __future__ import annotations

import base64
import math

import numpy as np
import torch

from explorer.data import to_float, to_uint8
from explorer.latent import PATHS, path
from explorer.validate import check_int

from ..common import BACKGROUND
from ..compute import graph_config
from ..page import float32_b64, uint8_b64
from ..store import STORE
from . import views

STEPS = 101                      # stops of the walk: w = 0, 0.01, ..., 1
LATENT_LIMIT = 1e4               # |z| a page may send to be decoded (the encoders give < 100)
CONFIG = {"model": "vae", "steps": STEPS, "start": STEPS // 2, "background": BACKGROUND}


def walk_w(k: int) -> torch.Tensor:
    """w at stop k, float32 (0-dim): k / (STEPS - 1) rounded once, as the page rounds it."""
    k = check_int("k", k, 0, STEPS - 1)
    return torch.tensor(k / (STEPS - 1), dtype=torch.float32)


def path_latents(za: torch.Tensor, zb: torch.Tensor, k: int) -> torch.Tensor:
    """The latents of both paths at stop k, stacked in PATHS order (lerp, slerp): (2, *za.shape)."""
    w = walk_w(k)
    return torch.stack([path(m)(za, zb, w) for m in PATHS])


def message(model: str, dataset: str, pa: np.ndarray, pb: np.ndarray, za: torch.Tensor,
            zb: torch.Tensor, graph: str, shapes: list, layer: int | None = None) -> dict:
    """The view's value: A and B as the model reads them (float32 in [-1, 1], 784 each), the
    endpoint latents (float32), their shape, every latent input's shape of the decoder
    (`shapes`), the HVAE's layer (1-based; None for the VAE) and the decoder graph's config
    (None: the server decodes)."""
    return {"model": model, "dataset": dataset, "steps": STEPS,
            "xa": float32_b64(to_float(pa[None]).numpy()),
            "xb": float32_b64(to_float(pb[None]).numpy()),
            "za": float32_b64(za.numpy()), "zb": float32_b64(zb.numpy()),
            "shape": list(za.shape), "shapes": [list(s) for s in shapes], "layer": layer,
            "compute": STORE.cached(("page-compute", dataset, graph),
                                    lambda: graph_config(dataset, graph))}


def read_latent(text, shape: tuple[int, ...], name: str) -> torch.Tensor:
    """A latent the page sent back (base64 float32, MANIFEST["float32"]) as a tensor of `shape`;
    a ValueError when it is not one (its size, a non-finite or huge value)."""
    size = math.prod(shape)
    if not isinstance(text, str) or len(text) > 4 * ((4 * size + 2) // 3):
        raise ValueError(f"{name} must be base64 of {size} float32 numbers")
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raise ValueError(f"{name} is not base64") from None
    if len(raw) != 4 * size:
        raise ValueError(f"{name} has {len(raw)} bytes, not {4 * size} (float32 of shape {shape})")
    z = torch.from_numpy(np.frombuffer(raw, "<f4").copy()).reshape(shape)
    if not torch.isfinite(z).all() or z.abs().max() > LATENT_LIMIT:
        raise ValueError(f"{name} must be finite numbers within ±{LATENT_LIMIT:g}")
    return z


def frames_reply(decoded: torch.Tensor, k: int) -> dict:
    """What `frames` answers: stop k and its frames (2, 1, 28, 28) as uint8 base64, by path."""
    images = to_uint8(decoded)
    return {"k": k, **{m: uint8_b64(images[i]) for i, m in enumerate(PATHS)}}


def failed(error: Exception) -> dict:
    """What the view shows when the server cannot decode (a bad request, a model missing)."""
    return {"error": str(error) or type(error).__name__}


# ---------------------------------------------------------------- the VAE's walk

def view_data(dataset: str, index_a, image_a, index_b, image_b) -> dict:
    """The VAE walk's value: A, B, mu(A), mu(B) (the ends of ui/vae/views.py interpolate) and
    vae_decoder.onnx's config."""
    model = STORE.model(dataset, "vae")
    pa, pb, mu_a, mu_b = views.endpoints(model, dataset, index_a, image_a, index_b, image_b)
    return message("vae", dataset, pa, pb, mu_a, mu_b, "vae_decoder", [tuple(mu_a.shape)])


@torch.no_grad()
def frames(asked: dict) -> dict:
    """The VAE walk's frames at stop k, decoded by the server: {"k", "lerp", "slerp"} (uint8,
    base64) of mean p(x|z) at the path latents between the page's {"za", "zb"} ({"dataset",
    "k"} too), or {"error"}."""
    try:
        if not isinstance(asked, dict):
            raise ValueError('frames needs an object like {"dataset", "za", "zb", "k"}')
        model = STORE.model(asked.get("dataset"), "vae")
        shape = (model.config.latent_dim,)
        za, zb = (read_latent(asked.get(n), shape, n) for n in ("za", "zb"))
        k = check_int("k", asked.get("k"), 0, STEPS - 1)
        return frames_reply(model.decode_mean(path_latents(za, zb, k)), k)
    except Exception as e:          # noqa: BLE001 (told to the page, which falls back to a message)
        return failed(e)
