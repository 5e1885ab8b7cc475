"""What the hierarchical-VAE tab computes; plain functions of simple values, each also an API
endpoint. Layers are numbered l = 1..L bottom-up as in the model (z_1 next to x, z_L on top).

    q(z_1|x) q(z_2|z_1) ... q(z_L|z_{L-1}),    p(z_L) p(z_{L-1}|z_L) ... p(z_1|z_2) p(x|z_1)
    -ELBO = reconstruction + consistency_1 + ... + consistency_{L-1} + prior matching

x depends on z_1 alone (the chain is Markov), so to see what layer k encodes we keep the layers
above k at the encoder's means, draw z_k, and let the layers below follow from p(z_l|z_{l+1}).
"""

from __future__ import annotations

import math

import gradio as gr
import numpy as np
import torch

from explorer.data import to_float, to_uint8
from explorer.latent import PATHS, interpolate as latent_path
from explorer.models.hvae import active_units as hvae_active_units

from .. import maps
from ..common import (PIXEL, check_float, check_int, check_seed, compose, interpolation_gif, strip,
                     terms_table)
from ..plots import layer_plot, norm_plot
from ..store import STORE, chosen, default_pair, resolve_input

SAMPLES_MAX, FRAMES_MAX = 12, 16
LAYER_MAX = 8                               # the sliders' static bound; the model's L is checked
BELOW = ("prior mean", "sampled")           # the layers under a resampled layer k
ACTIVE_THRESHOLD = 0.01                     # as HVAE.active_units
BATCH = 250


def _model(dataset: str):
    return STORE.model(dataset, "hvae")


def _layer(model, layer) -> int:
    """Layer number l in 1..L -> list index l - 1."""
    return check_int("layer", layer, 1, model.num_layers) - 1


def _means(model, dataset: str, index, image, names=("index", "image")
           ) -> tuple[np.ndarray, torch.Tensor, list]:
    """Pixels, float input and the encoder's chain of means (LayerLatent per layer, z = mean)."""
    pixels = resolve_input(dataset, index, image, names)
    x = to_float(pixels[None])
    return pixels, x, model.encode(x, use_mean=True)


def gallery_latents(dataset: str, progress: gr.Progress | None = None) -> list[np.ndarray]:
    """Per layer, the encoder means of every gallery image, flattened: [(N, dim_l)], cached."""
    @torch.no_grad()
    def compute() -> list[np.ndarray]:
        model, images = _model(dataset), STORE.gallery(dataset).images
        parts = []
        for start in range(0, len(images), BATCH):
            if progress is not None:
                progress((start, len(images)), desc=f"encoding the {dataset} gallery",
                         unit="images")
            latents = model.encode(to_float(images[start:start + BATCH]), use_mean=True)
            parts.append([q.mean.flatten(1).numpy() for q in latents])
        return [np.concatenate(layer) for layer in zip(*parts)]
    _model(dataset)
    return STORE.cached(("hvae", dataset, "means"), compute)


def active_units(dataset: str, progress: gr.Progress | None = None) -> list[int]:
    """Per layer, the dims whose encoder mean varies over the gallery: Var_x(E_q[z_l]) > 0.01
    (Burda et al. 2016), as HVAE.active_units counts them."""
    return hvae_active_units(gallery_latents(dataset, progress), ACTIVE_THRESHOLD)


@torch.no_grad()
def encode(dataset: str, index, image, seed: int = 0, progress=gr.Progress()):
    """Latents per layer, the reconstruction mean p(x|z_1 = encoder mean), the -ELBO split as
    the model writes it (one seeded draw of z_{1:L} ~ q), and active units per layer.

    Returns (x | reconstruction image, latents plot, terms table, terms JSON)."""
    model = _model(dataset)
    seed = check_seed(seed)
    pixels, x, latents = _means(model, dataset, index, image)
    recon = to_uint8(model.likelihood_params(latents[0].z)[0].clamp(-1, 1))[0]
    terms = model.elbo(x, torch.Generator().manual_seed(seed)).mean()
    units = active_units(dataset, progress)
    dims = x[0].numel()
    shapes = model.config.latent_shapes
    L = model.num_layers
    names = {"reconstruction": "reconstruction  -log p(x|z_1)",
             "prior_matching": f"prior matching  KL(q(z_{L}|z_{L - 1}) || p(z_{L}))",
             "total": "total (-ELBO)"}
    for l in range(1, model.num_layers):
        names[f"consistency_{l}"] = f"consistency of layer {l}"
    table = terms_table({names[k]: v for k, v in terms.items()}, dims)
    table += "\n\n| layer | shape | dims | active units |\n|---|---|---:|---:|\n" + "\n".join(
        f"| z_{l + 1} | {tuple(shapes[l])} | {model.latent_dims[l]} | {units[l]} |"
        for l in range(model.num_layers))
    info = {"dataset": dataset, "num_layers": model.num_layers,
            "latent_shapes": [list(s) for s in shapes], "nats": terms,
            "bits_per_dim": {k: v / (dims * math.log(2)) for k, v in terms.items()},
            "active_units": units, "latent_dims": model.latent_dims,
            "means": [q.mean[0].flatten().tolist() for q in latents]}
    plot = layer_plot([q.mean[0].numpy() for q in latents],
                      [torch.exp(0.5 * q.logvar[0]).numpy() for q in latents], shapes)
    return compose([[pixels, recon]], PIXEL, ["x", "mean p(x | z_1)"]), plot, table, info


def _decode_from(model, zs: list, k: int, temperature: float, below: str,
                 generator: torch.Generator, n: int) -> torch.Tensor:
    """Images (n, 1, 28, 28): layers above list index k fixed to zs, z_k drawn at `temperature`
    from p(z_k|z_{k+1}) (N(0, I) on top), layers below at their prior mean or drawn likewise."""
    fixed = [None] * (k + 1) + [z.expand(n, *z.shape[1:]) for z in zs[k + 1:]]
    drawn = model.decode(fixed, temperature, generator, n=n)
    if below == "sampled" or k == 0:
        return drawn.x_mean
    keep = [None] * k + drawn.zs[k:]
    return model.decode(keep, 0.0, n=n).x_mean                           # z_{<k}: prior means


@torch.no_grad()
def resample(dataset: str, index, image, layer: int = 1, temperature: float = 1.0,
             n: int = 8, seed: int = 0, below: str = "prior mean") -> np.ndarray:
    """What layer k encodes: n images with z_{>k} = the encoder means of x, z_k ~ p(z_k|z_{k+1})
    at temperature T (seeded), z_{<k} at their prior means (or drawn). A labelled strip:
    x, its reconstruction, then the n draws."""
    model = _model(dataset)
    k = _layer(model, layer)
    temperature = check_float("temperature", temperature, 0.0, 3.0)
    n, seed = check_int("n", n, 1, SAMPLES_MAX), check_seed(seed)
    if below not in BELOW:
        raise ValueError(f"below must be one of {', '.join(BELOW)}, got {below!r}")
    pixels, _, latents = _means(model, dataset, index, image)
    zs = [q.z for q in latents]
    images = _decode_from(model, zs, k, temperature, below, torch.Generator().manual_seed(seed), n)
    recon = to_uint8(model.decode(zs, 0.0).x_mean)[0]
    frames = [pixels, recon, *to_uint8(images)]
    return strip(frames, ["x", "recon", *[f"draw {i + 1}" for i in range(n)]],
                 row_label=f"z_{k + 1}")


@torch.no_grad()
def layer_endpoints(model, dataset, index_a, image_a, index_b, image_b, k: int):
    """The interpolation's ends at list index k: pixels of A and B (uint8 (28, 28)) and the
    encoder means of their z_{k+1}, (C, H, W) each."""
    pa, _, latents_a = _means(model, dataset, index_a, image_a, ("index_a", "image_a"))
    pb, _, latents_b = _means(model, dataset, index_b, image_b, ("index_b", "image_b"))
    return pa, pb, latents_a[k].z[0], latents_b[k].z[0]


def _layer_paths(model, dataset, index_a, image_a, index_b, image_b, k, frames):
    _, _, za, zb = layer_endpoints(model, dataset, index_a, image_a, index_b, image_b, k)
    return {m: latent_path(za, zb, frames, m) for m in PATHS}            # (F, C, H, W)


@torch.no_grad()
def decode_at(model, k: int, z: torch.Tensor) -> torch.Tensor:
    """mean p(x|z_1) (F, 1, 28, 28) with layer list index k at z (F, C, H, W) and the layers
    below it at their prior means (the layers above do not reach x)."""
    fixed = [None] * k + [z] + [None] * (model.num_layers - k - 1)
    return model.decode(fixed, 0.0).x_mean


@torch.no_grad()
def interpolate(dataset: str, index_a, image_a, index_b, image_b, layer: int = 1,
                frames: int = 8):
    """lerp and slerp of z_k between the encoder means of A and B; the layers below follow at
    their prior means. Returns (lerp strip, slerp strip, ||z_k|| plot, GIF: slerp | lerp side
    by side, A -> B -> A, 2F - 2 frames for F frames)."""
    model = _model(dataset)
    k = _layer(model, layer)
    frames = check_int("frames", frames, 2, FRAMES_MAX)
    paths = _layer_paths(model, dataset, index_a, image_a, index_b, image_b, k, frames)
    labels = [f"{w:.2f}" for w in np.linspace(0, 1, frames)]
    decoded = {m: to_uint8(decode_at(model, k, z)) for m, z in paths.items()}   # (F, 28, 28)
    strips = [strip(list(images), labels, row_label=f"{m} z_{k + 1}")
              for m, images in decoded.items()]
    norms = {m: z.flatten(1).norm(dim=1).numpy() for m, z in paths.items()}
    gif = interpolation_gif([decoded["slerp"], decoded["lerp"]],
                            [f"slerp z_{k + 1}", f"lerp z_{k + 1}"], labels,
                            f"hvae-interpolation-z{k + 1}")
    return (*strips, norm_plot(norms, math.sqrt(model.latent_dims[k])), gif)


@torch.no_grad()
def project(dataset: str, layer: int = 1, method: str = "pca", perplexity: float = 30.0,
            index_a=None, image_a=None, index_b=None, image_b=None, frames: int = 8,
            progress=gr.Progress()):
    """The gallery's encoder means at layer k on a 2-D map, coloured by class; A and B placed
    on it, and on PCA the lerp / slerp paths of z_k between them. Returns (the map, a CSV of
    its coordinates: maps.coordinates_csv)."""
    model = _model(dataset)
    k = _layer(model, layer)
    projection = maps.fitted(("hvae", dataset, k),
                             lambda: gallery_latents(dataset, progress)[k], method, perplexity,
                             progress)
    marks, paths = {}, {}
    if chosen(index_a, image_a) and chosen(index_b, image_b):
        frames = check_int("frames", frames, 2, FRAMES_MAX)
        paths = _layer_paths(model, dataset, index_a, image_a, index_b, image_b, k, frames)
        marks = {"A": paths["lerp"][0].numpy(), "B": paths["lerp"][-1].numpy()}
        paths = {f"{m} path": z.flatten(1).numpy() for m, z in paths.items()}
    at = {"A": index_a if image_a is None else None, "B": index_b if image_b is None else None}
    return maps.map_views(projection, dataset, f"HVAE layer z_{k + 1}", marks, paths,
                          f"hvae-map-{dataset}-z{k + 1}", at)


@torch.no_grad()
def ancestral(dataset: str, n: int = 8, temperature: float = 1.0, seed: int = 0) -> np.ndarray:
    """Ancestral sampling z_L ~ N(0, T^2 I), z_{l-1} ~ p(z_{l-1}|z_l), ..., x = mean p(x|z_1),
    shown level by level: row l decodes z_l with every layer below at its prior mean, so the
    rows go from what the top layer alone fixes to the final samples."""
    model = _model(dataset)
    n, seed = check_int("n", n, 1, SAMPLES_MAX), check_seed(seed)
    temperature = check_float("temperature", temperature, 0.0, 3.0)
    L = model.num_layers
    zs = model.decode([None] * L, temperature, torch.Generator().manual_seed(seed), n=n).zs
    rows, labels = [], []
    for k in reversed(range(L)):
        images = model.decode([None] * k + zs[k:], 0.0).x_mean
        rows.append(list(to_uint8(images)))
        labels.append(f"z_{k + 1}" + (" -> x" if k == 0 else ""))
    return compose(rows, row_labels=labels)


def layer_bounds(dataset: str, to_first_layer: bool = False) -> tuple:
    """Updates of the three layer sliders: maximum = the model's L (and back to layer 1)."""
    try:
        L = _model(dataset).num_layers
    except Exception:
        return tuple(gr.skip() for _ in range(3))
    value = {"value": 1} if to_first_layer else {}
    return tuple(gr.update(maximum=L, **value) for _ in range(3))


def warm_up(dataset: str) -> None:
    """Fill the caches a first visitor would wait for (gallery latents, PCA map of layer 1);
    a missing model or gallery is skipped (its tab says so)."""
    try:
        a, b = default_pair(dataset)
        project(dataset, 1, "pca", 30, a, None, b, None, 8, None)
    except Exception:
        pass
