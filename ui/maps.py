"""2-D maps of the gallery's latents (PCA, t-SNE), fitted once per (model, dataset, method,
perplexity) and shared by every session; new points (uploads, drawings, interpolation paths)
are placed on a fitted map with `Projection.transform` without moving it. Every map comes with a
CSV of the coordinates it plots (`coordinates_csv`), for slides and for other tools."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr
import numpy as np

from explorer.latent import PROJECTIONS, Projection, project

from .common import caption, check_float, csv_file, csv_text, file_out
from .plots import FastFigure, latent_map, map_overlays
from .store import STORE

METHODS = [("PCA", "pca"), ("t-SNE", "tsne")]
# a t-SNE fit takes seconds and its map ~9 MB: the perplexity is one of these (a slider's stops)
PERPLEXITY = (5, 50, 5)                                  # minimum, maximum, step
CSV_HEADER = ("index", "label", "class_name", "x", "y")


def map_key(key: tuple, method: str, perplexity: float) -> tuple:
    """Cache key of a fitted map: PCA does not depend on the perplexity."""
    if method not in PROJECTIONS:
        raise ValueError(f"unknown projection {method!r}; valid: {', '.join(PROJECTIONS)}")
    low, high, step = PERPLEXITY
    perplexity = check_float("perplexity", perplexity, low, high)
    if method != "pca" and (perplexity - low) % step:
        raise ValueError(f"perplexity: {perplexity:g} is not valid; valid: one of "
                         f"{', '.join(str(p) for p in range(low, high + 1, step))}")
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
    return STORE.cached(full_key, compute, "maps")


def points_digest(array: np.ndarray) -> str:
    """A cache key for an array's values (a fitted map's points are computed once, then only
    read: their digest names what was drawn or written from them)."""
    return hashlib.sha1(np.ascontiguousarray(array)).hexdigest()


def coordinates_csv(points: np.ndarray, labels: np.ndarray, class_names, marks=None,
                    paths=None, name: str = "map") -> str:
    """A CSV of a map's coordinates, columns index,label,class_name,x,y: one row per gallery point
    (points (N, 2), gallery order), then one per mark (name -> (2,); label = its name, index and
    class_name empty) and per point of a path (name -> (F, 2); label "<name> <j>", j = 0..F-1).
    Returns its path."""
    head = STORE.cached(("map-csv", points_digest(points), points_digest(labels),
                         tuple(class_names)), lambda: csv_text(
        (i, int(c), str(class_names[int(c)]), float(x), float(y))
        for i, (c, (x, y)) in enumerate(zip(labels.tolist(), points.tolist()))), "map-csv")
    rows = [("", mark, "", float(xy[0]), float(xy[1])) for mark, xy in (marks or {}).items()]
    rows += [("", f"{path} {j}", "", float(x), float(y))
             for path, xy in (paths or {}).items() for j, (x, y) in enumerate(xy.tolist())]
    return csv_file(CSV_HEADER, rows, name, head=head)


def map_views(projection: Projection, dataset: str, title: str, marks: dict[str, np.ndarray],
              paths: dict[str, np.ndarray], name: str = "map", at: dict | None = None):
    """The map with marks (name -> latent (D,)) placed by transform; a mark that is a gallery
    image (`at`: name -> its gallery index, or None) sits on its own fitted point instead (the
    same place on PCA; on t-SNE it spares openTSNE's transform, ~0.3 s). `paths` (name ->
    latents (F, D)) are drawn on PCA maps only (a t-SNE transform of a path is not a faithful
    path). Returns (the figure, a CSV of the points it draws: see coordinates_csv)."""
    gallery = STORE.gallery(dataset)
    known = {n: i for n, i in (at or {}).items() if n in marks and i is not None}
    placed = {n: projection.points[int(i)] for n, i in known.items()}
    others = [n for n in marks if n not in known]
    if others:
        xy = projection.transform(np.stack([marks[n].reshape(-1) for n in others]))
        placed.update(zip(others, xy))
    placed = {n: placed[n] for n in marks}                           # A before B
    drawn = ({path: projection.transform(z.reshape(len(z), -1)) for path, z in paths.items()}
             if projection.method == "pca" else {})
    label = "PCA" if projection.method == "pca" else "t-SNE"
    title = f"{title} ({label})"
    # the gallery's points drawn and validated once per fitted map; A, B and paths on top
    base = STORE.cached(("map-figure", dataset, title, points_digest(projection.points)),
                        lambda: FastFigure(
        latent_map(projection.points, gallery.labels, gallery.class_names, title)), "map-figures")
    figure = base.emit(extra=map_overlays(placed, drawn))
    return figure, coordinates_csv(projection.points, gallery.labels, gallery.class_names,
                                   placed, drawn, f"{name}-{projection.method}")


# ---------------------------------------------------------------- layout (VAE and HVAE tabs)

@dataclass
class MapPanel:
    """The map section's components; leading is what `create_map_panel`'s leading() made (None
    without one). A click on a point and the point under the mouse reach the server through the
    page view (its 'pick' and 'hover' events: ui/panel.py)."""
    leading: gr.components.Component | None
    method: gr.Radio
    perplexity: gr.Slider
    compute: gr.Button
    plot: gr.Plot
    hovered: gr.Image
    csv: gr.File


def create_map_panel(prefix: str,
                     leading: Callable[[], gr.components.Component] | None = None) -> MapPanel:
    """Lay out a map section: its controls (`leading()` first, e.g. a layer slider), the map
    beside the point under the mouse, the CSV download; elem_ids are `<prefix>-...`."""
    with gr.Row():
        first = leading() if leading is not None else None
        method = gr.Radio(METHODS, value="pca", label="projection", elem_id=f"{prefix}-method")
        perplexity = gr.Slider(PERPLEXITY[0], PERPLEXITY[1], value=30, step=PERPLEXITY[2],
                               label="t-SNE perplexity",
                               elem_id=f"{prefix}-perplexity")
        compute = gr.Button("compute map", variant="primary", elem_id=f"{prefix}-compute")
    with gr.Row(equal_height=False):
        plot = gr.Plot(label="latent map", elem_id=f"{prefix}-map", scale=3)
        hovered = gr.Image(label="point under the mouse", format="png", interactive=False,
                           height=280, scale=1, elem_id=f"{prefix}-hovered",
                           elem_classes="pixelated")
    with gr.Row(equal_height=True):
        csv = file_out(f"{prefix}-map-csv", "CSV of the map")
        caption("For slides or another plotting tool: the map's coordinates (index, label, "
                "class name, x, y), with A, B and (on PCA) the paths.")
    return MapPanel(first, method, perplexity, compute, plot, hovered, csv)
