"""2-D maps of the gallery's latents (PCA, t-SNE), fitted once per (model, dataset, method,
perplexity) and shared by every session; new points (uploads, drawings, interpolation paths)
are placed on a fitted map with `Projection.transform` without moving it."""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr
import numpy as np

from explorer.latent import PROJECTIONS, Projection, project

from .common import check_float
from .plots import latent_map
from .store import STORE

METHODS = [("PCA", "pca"), ("t-SNE", "tsne")]
PERPLEXITY = (2.0, 100.0)


def map_key(key: tuple, method: str, perplexity: float) -> tuple:
    """Cache key of a fitted map: PCA does not depend on the perplexity."""
    if method not in PROJECTIONS:
        raise ValueError(f"unknown projection {method!r}; valid: {', '.join(PROJECTIONS)}")
    perplexity = check_float("perplexity", perplexity, *PERPLEXITY)
    return (*key, "map", method, 0.0 if method == "pca" else perplexity)


def fitted(key: tuple, latents: Callable[[], np.ndarray], method: str, perplexity: float,
           progress: gr.Progress | None = None) -> Projection:
    """The fitted map of latents() (N, D), from the cache or computed now (t-SNE: seconds)."""
    full_key = map_key(key, method, perplexity)

    def compute() -> Projection:
        points = latents()
        if progress is not None:
            what = "PCA" if method == "pca" else f"t-SNE of {len(points)} points (a few seconds)"
            progress(0.6, desc=f"fitting {what}")
        return project(points, method, perplexity=perplexity, seed=0)
    return STORE.cached(full_key, compute)


def is_fitted(key: tuple, method: str, perplexity: float) -> bool:
    try:
        return STORE.is_cached(map_key(key, method, perplexity))
    except ValueError:
        return False


def map_figure(projection: Projection, dataset: str, title: str,
               marks: dict[str, np.ndarray], paths: dict[str, np.ndarray]):
    """The map with marks (name -> latent (D,)) placed by transform; `paths` (name -> latents
    (F, D)) are drawn on PCA maps only (a t-SNE transform of a path is not a faithful path)."""
    gallery = STORE.gallery(dataset)
    placed = {}
    if marks:
        names = list(marks)
        xy = projection.transform(np.stack([marks[n].reshape(-1) for n in names]))
        placed = dict(zip(names, xy))
    drawn = ({name: projection.transform(z.reshape(len(z), -1)) for name, z in paths.items()}
             if projection.method == "pca" else {})
    label = "PCA" if projection.method == "pca" else "t-SNE"
    return latent_map(projection.points, gallery.labels, gallery.class_names,
                      f"{title} ({label})", placed, drawn)
