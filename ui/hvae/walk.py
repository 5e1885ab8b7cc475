"""The HVAE tab's latent walk at layer k (ui/static/views/walk.js; ui/vae/walk.py tells how the
walk is shared between page and server): z_k walks from A's encoder mean to B's, the layers
below follow at their prior means, as in ui/hvae/views.py interpolate.
"""

from __future__ import annotations

import torch

from explorer.validate import check_int

from ..store import STORE
from ..vae.walk import CONFIG as VAE_CONFIG
from ..vae.walk import STEPS, failed, frames_reply, message, path_latents, read_latent
from . import views

CONFIG = {**VAE_CONFIG, "model": "hvae"}


def view_data(dataset: str, index_a, image_a, index_b, image_b, layer: int = 1) -> dict:
    """The HVAE walk's value at layer k: A, B, the encoder means of their z_k (the ends of
    interpolate) and hvae_decoder.onnx's config."""
    model = STORE.model(dataset, "hvae")
    k = check_int("layer", layer, 1, model.num_layers) - 1
    pa, pb, za, zb = views.layer_endpoints(model, dataset, index_a, image_a, index_b, image_b, k)
    return message("hvae", dataset, pa, pb, za, zb, "hvae_decoder",
                   model.config.latent_shapes, layer=k + 1)


@torch.no_grad()
def frames(asked: dict) -> dict:
    """The HVAE walk's frames at stop k, decoded by the server: {"k", "lerp", "slerp"} (uint8,
    base64) of mean p(x|z_1) with z_layer at the path latents between the page's {"za", "zb"}
    ({"dataset", "layer", "k"} too), or {"error"}."""
    try:
        if not isinstance(asked, dict):
            raise ValueError('frames needs an object like {"dataset", "layer", "za", "zb", "k"}')
        model = STORE.model(asked.get("dataset"), "hvae")
        layer = check_int("layer", asked.get("layer"), 1, model.num_layers) - 1
        shape = tuple(model.config.latent_shapes[layer])
        za, zb = (read_latent(asked.get(n), shape, n) for n in ("za", "zb"))
        k = check_int("k", asked.get("k"), 0, STEPS - 1)
        return frames_reply(views.decode_at(model, layer, path_latents(za, zb, k)), k)
    except Exception as e:          # noqa: BLE001 (told to the page, which shows it)
        return failed(e)
