"""What the VAE tab computes; plain functions of simple values (dataset name, gallery index,
image path, ints, floats), so each is also an API endpoint. Models are read, never changed.

    q(z|x) = N(mu(x), diag sigma^2(x)),  z = mu + sigma * eps,  p(z) = N(0, I)
    -ELBO(x) = -log p(x|z) + KL(q(z|x) || p(z))
"""

from __future__ import annotations

import math

import gradio as gr
import numpy as np
import torch

from explorer.data import to_float, to_uint8
from explorer.latent import PATHS, interpolate as latent_path, lerp

from .. import maps
from ..common import (PIXEL, check_float, check_int, check_seed, compose, interpolation_gif,
                     strip, terms_table, upscale)
from ..plots import manifold_plot, norm_plot, posterior_plot
from ..store import STORE, chosen, default_pair, resolve_input

K_MAX, FRAMES_MAX, SAMPLES_MAX, GRID_MAX = 16, 16, 48, 25
BATCH = 250


def _x(dataset: str, index, image, names=("index", "image")) -> tuple[np.ndarray, torch.Tensor]:
    """The input as uint8 (28, 28) and as the model's float (1, 1, 28, 28)."""
    pixels = resolve_input(dataset, index, image, names)
    return pixels, to_float(pixels[None])


@torch.no_grad()
def encode(dataset: str, index, image, k: int = 8, seed: int = 0):
    """Encoder view of one image: mu(x), sigma(x); K decoded draws z = mu + sigma * eps; the
    reconstruction mean p(x|z = mu); the one-sample -ELBO terms (eps seeded) in nats, bits/dim.

    Returns (x | reconstruction image, posterior plot, K samples strip, terms table, terms JSON)."""
    model = STORE.model(dataset, "vae")
    k, seed = check_int("K", k, 1, K_MAX), check_seed(seed)
    pixels, x = _x(dataset, index, image)
    mu, logvar = model.encode(x)                                          # (1, D) each
    sigma = torch.exp(0.5 * logvar)
    eps = torch.randn((k, mu.shape[1]), generator=torch.Generator().manual_seed(seed))
    samples = to_uint8(model.decode_mean(mu + sigma * eps))                # (K, 28, 28)
    recon = to_uint8(model.decode_mean(mu))[0]
    terms = model.elbo(x, torch.Generator().manual_seed(seed)).mean()
    nats = {"reconstruction": terms["reconstruction"], "kl": terms["kl"], "total": terms["total"]}
    dims = x[0].numel()
    table = terms_table({"reconstruction  -log p(x|z)": nats["reconstruction"],
                         "KL(q(z|x) || p(z))": nats["kl"], "total (-ELBO)": nats["total"]}, dims)
    info = {"dataset": dataset, "index": None if image is not None else int(index),
            "latent_dim": int(mu.shape[1]), "mu": mu[0].tolist(), "sigma": sigma[0].tolist(),
            "nats": nats, "bits_per_dim": {n: v / (dims * math.log(2)) for n, v in nats.items()}}
    pair = compose([[pixels, recon]], PIXEL, ["x", "mean p(x | z = mu)"])
    film = strip(list(samples), [f"z_{i + 1}" for i in range(k)])
    return pair, posterior_plot(mu[0].numpy(), sigma[0].numpy()), film, table, info


@torch.no_grad()
def sample(dataset: str, n: int = 16, temperature: float = 1.0, seed: int = 0) -> np.ndarray:
    """n prior samples: z ~ N(0, T^2 I) (seeded), each decoded to the mean of p(x|z); a grid."""
    model = STORE.model(dataset, "vae")
    n, seed = check_int("n", n, 1, SAMPLES_MAX), check_seed(seed)
    temperature = check_float("temperature", temperature, 0.0, 3.0)
    images = to_uint8(model.sample(n, temperature, torch.Generator().manual_seed(seed)))
    cols = min(n, 8)
    rows = [list(images[i:i + cols]) for i in range(0, n, cols)]
    rows[-1] += [np.zeros((28, 28), np.uint8)] * (cols - len(rows[-1]))    # pad the last row
    return compose(rows)


@torch.no_grad()
def endpoints(model, dataset, index_a, image_a, index_b, image_b):
    """The interpolation's ends: pixels of A and B (uint8 (28, 28)) and their latent means
    mu(A), mu(B) (D,)."""
    pa, xa = _x(dataset, index_a, image_a, ("index_a", "image_a"))
    pb, xb = _x(dataset, index_b, image_b, ("index_b", "image_b"))
    return pa, pb, model.encode(xa)[0][0], model.encode(xb)[0][0]


def _path_latents(model, dataset, index_a, image_a, index_b, image_b, frames):
    """Pixels of A and B and the latent means along lerp and slerp: {path: (F, D)}."""
    pa, pb, mu_a, mu_b = endpoints(model, dataset, index_a, image_a, index_b, image_b)
    return pa, pb, {m: latent_path(mu_a, mu_b, frames, m) for m in PATHS}


@torch.no_grad()
def interpolate(dataset: str, index_a, image_a, index_b, image_b, frames: int = 8):
    """Decoded lerp and slerp between mu(A) and mu(B), the pixel cross-fade (1-w) A + w B, and
    ||z|| along both paths. Returns (lerp strip, slerp strip, cross-fade strip, norm plot, GIF:
    slerp | lerp | pixels side by side, A -> B -> A, 2F - 2 frames for F frames)."""
    model = STORE.model(dataset, "vae")
    frames = check_int("frames", frames, 2, FRAMES_MAX)
    pa, pb, paths = _path_latents(model, dataset, index_a, image_a, index_b, image_b, frames)
    w = torch.linspace(0, 1, frames)
    labels = [f"{v:.2f}" for v in w.tolist()]
    decoded = {m: to_uint8(model.decode_mean(z)) for m, z in paths.items()}      # (F, 28, 28)
    fade = to_uint8(lerp(to_float(pa[None])[0], to_float(pb[None])[0], w))   # (F, 28, 28)
    strips = [strip(list(images), labels, row_label=m) for m, images in decoded.items()]
    strips.append(strip(list(fade), labels, row_label="pixels"))
    norms = {m: z.norm(dim=1).numpy() for m, z in paths.items()}
    return (*strips, norm_plot(norms, math.sqrt(paths["lerp"].shape[1])),
            interpolation_gif([decoded["slerp"], decoded["lerp"], fade],
                              ["slerp", "lerp", "pixels"], labels, "vae-interpolation"))



def gallery_means(dataset: str, name: str = "vae",
                  progress: gr.Progress | None = None) -> np.ndarray:
    """mu(x) of every gallery image, (N, D), cached per (model, dataset)."""
    @torch.no_grad()
    def compute() -> np.ndarray:
        model, images = STORE.model(dataset, name), STORE.gallery(dataset).images
        out = []
        for start in range(0, len(images), BATCH):
            if progress is not None:
                progress((start, len(images)), desc=f"encoding the {dataset} gallery",
                         unit="images")
            out.append(model.encode(to_float(images[start:start + BATCH]))[0].numpy())
        return np.concatenate(out)
    STORE.model(dataset, name)                                  # a missing model fails first
    return STORE.cached((name, dataset, "means"), compute)


@torch.no_grad()
def project(dataset: str, method: str = "pca", perplexity: float = 30.0, index_a=None,
            image_a=None, index_b=None, image_b=None, frames: int = 8,
            progress=gr.Progress()):
    """The gallery's mu(x) on a 2-D map coloured by class; A and B placed on it (transform),
    and on PCA the current lerp / slerp paths between them. Returns (the map, a CSV of its
    coordinates: maps.coordinates_csv)."""
    model = STORE.model(dataset, "vae")
    projection = maps.fitted(("vae", dataset), lambda: gallery_means(dataset, "vae", progress),
                             method, perplexity, progress)
    marks, paths = {}, {}
    if chosen(index_a, image_a):
        if chosen(index_b, image_b):
            frames = check_int("frames", frames, 2, FRAMES_MAX)
            _, _, paths = _path_latents(model, dataset, index_a, image_a, index_b, image_b, frames)
            marks = {"A": paths["lerp"][0].numpy(), "B": paths["lerp"][-1].numpy()}
            paths = {f"{m} path": z.numpy() for m, z in paths.items()}
        else:
            marks = {"A": model.encode(_x(dataset, index_a, image_a,
                                         ("index_a", "image_a"))[1])[0][0].numpy()}
    at = {"A": index_a if image_a is None else None, "B": index_b if image_b is None else None}
    return maps.map_views(projection, dataset, "VAE latent means mu(x)", marks, paths,
                          f"vae-map-{dataset}", at)


@torch.no_grad()
def manifold(dataset: str, n: int = 15, extent: float = 3.0, progress=gr.Progress()):
    """The 2-D VAE's decoded grid: cell (i, j) shows mean p(x|z) at z = (z_1, z_2) on an n x n
    grid of [-extent, extent]^2, with the gallery's mu(x) over it."""
    model = STORE.model(dataset, "vae2d")
    n = check_int("grid size", n, 2, GRID_MAX)
    extent = check_float("extent", extent, 0.5, 6.0)
    centres = extent * (2 * (torch.arange(n) + 0.5) / n - 1)               # cell centres
    z1, z2 = torch.meshgrid(centres, centres.flip(0), indexing="xy")       # top row: z_2 = +e
    z = torch.stack([z1.reshape(-1), z2.reshape(-1)], dim=1)              # (n*n, 2)
    cells = to_uint8(model.decode_mean(z)).reshape(n, n, 28, 28)
    grid = cells.transpose(0, 2, 1, 3).reshape(n * 28, n * 28)
    gallery = STORE.gallery(dataset)
    points = gallery_means(dataset, "vae2d", progress)
    return manifold_plot(upscale(grid, 2), extent, points, gallery.labels, gallery.class_names)


def warm_up(dataset: str) -> None:
    """Fill the caches a first visitor would wait for (gallery latents, PCA map, first plots);
    a missing model or gallery is skipped (its tab says so)."""
    try:
        a, b = default_pair(dataset)
        project(dataset, "pca", 30, a, None, b, None, 8, None)
        interpolate(dataset, a, None, b, None, 8)
        manifold(dataset, 15, 3.0, None)
    except Exception:
        pass
