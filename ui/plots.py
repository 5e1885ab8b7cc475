"""Plotly figures of the tabs. Points of the gallery carry `customdata` = their gallery index, so
the page script in bridge.py can send a click or hover on them back to Python."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots
from PIL import Image

COLORS = qualitative.D3                      # 10 classes, 10 colours
FONT = dict(size=16)
MARK_COLORS = {"A": "#d62728", "B": "#1f77b4"}


def _layout(fig: go.Figure, title: str, height: int = 420, **kwargs) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0.01), height=height, font=FONT,
                      margin=dict(l=50, r=20, t=50, b=45), template="plotly_white", **kwargs)
    return fig


def latent_map(points: np.ndarray, labels: np.ndarray, class_names: Sequence[str], title: str,
               marks: dict[str, np.ndarray] | None = None,
               paths: dict[str, np.ndarray] | None = None, height: int = 600,
               webgl: bool = True) -> go.Figure:
    """A 2-D map of the gallery, one trace per class (legend = class names); `marks` are named
    single points (A, B) and `paths` named polylines (lerp, slerp) drawn over it.

    WebGL draws thousands of points fast, but a page gets only ~16 WebGL contexts (each such
    plot takes 3, the sketchpads take some): secondary maps use SVG (webgl=False)."""
    fig = go.Figure()
    index = np.arange(len(labels))
    scatter = go.Scattergl if webgl else go.Scatter
    for c, name in enumerate(class_names):
        sel = labels == c
        fig.add_trace(scatter(
            x=points[sel, 0], y=points[sel, 1], mode="markers", name=name,
            marker=dict(size=7, color=COLORS[c % len(COLORS)], opacity=0.75),
            customdata=index[sel], hovertext=[f"{name} #{i}" for i in index[sel]],
            hoverinfo="text"))
    for name, xy in (paths or {}).items():
        fig.add_trace(go.Scatter(x=xy[:, 0], y=xy[:, 1], mode="lines+markers", name=name,
                                 line=dict(width=3, color="black",
                                           dash="dot" if name.startswith("slerp") else "solid"),
                                 marker=dict(size=6, color="black"), hoverinfo="name"))
    for name, xy in (marks or {}).items():
        fig.add_trace(go.Scatter(
            x=[xy[0]], y=[xy[1]], mode="markers+text", name=name, text=[name],
            textposition="top center", textfont=dict(size=22, color=MARK_COLORS.get(name)),
            marker=dict(size=22, symbol="star", color=MARK_COLORS.get(name, "black"),
                        line=dict(width=2, color="white")), hoverinfo="name"))
    return _layout(fig, title, height, hovermode="closest", clickmode="event",
                   legend=dict(itemsizing="constant"))


def posterior_plot(mu: np.ndarray, sigma: np.ndarray) -> go.Figure:
    """Bars mu_j(x) with error bars +- sigma_j(x) per latent dimension j."""
    dims = np.arange(1, len(mu) + 1)
    fig = go.Figure(go.Bar(x=dims, y=mu, name="mu(x)", marker_color="#1f77b4",
                           error_y=dict(type="data", array=sigma, thickness=2, width=3,
                                        color="#d62728")))
    fig.add_hline(y=0, line_color="gray")
    return _layout(fig, "q(z|x) = N(mu, sigma^2): bars mu_j, whiskers +- sigma_j", 360,
                   xaxis_title="latent dimension j", yaxis_title="z_j", showlegend=False)


def norm_plot(paths: dict[str, np.ndarray], reference: float) -> go.Figure:
    """||z|| along each path; the dashed line is sqrt(D), where N(0, I) puts almost all mass."""
    fig = go.Figure()
    for name, norms in paths.items():
        w = np.linspace(0, 1, len(norms))
        fig.add_trace(go.Scatter(x=w, y=norms, mode="lines+markers", name=name,
                                 line=dict(width=3, dash="dot" if name == "slerp" else "solid")))
    fig.add_hline(y=reference, line_dash="dash", line_color="gray",
                  annotation_text="sqrt(D): typical ||z|| under N(0, I)")
    return _layout(fig, "||z|| along the path", 340, xaxis_title="w (0 = A, 1 = B)",
                   yaxis_title="||z||")


def png_data_uri(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def manifold_plot(grid_image: np.ndarray, extent: float, points: np.ndarray, labels: np.ndarray,
                  class_names: Sequence[str]) -> go.Figure:
    """The 2-D VAE's decoded grid over [-extent, extent]^2 with the gallery's mu(x) on top."""
    fig = latent_map(points, labels, class_names,
                     "2-D VAE: decoded grid x = mean p(x|z) and the gallery's mu(x)", height=720,
                     webgl=False)
    fig.add_layout_image(dict(source=png_data_uri(grid_image), xref="x", yref="y",
                              x=-extent, y=extent, sizex=2 * extent, sizey=2 * extent,
                              sizing="stretch", layer="below", opacity=1.0))
    fig.update_traces(marker=dict(size=5, opacity=0.5), selector=dict(mode="markers"))
    fig.update_xaxes(range=[-extent, extent], title="z_1", showgrid=False, zeroline=False,
                     constrain="domain")
    fig.update_yaxes(range=[-extent, extent], title="z_2", showgrid=False, zeroline=False,
                     scaleanchor="x")
    return fig


def layer_plot(means: list[np.ndarray], sigmas: list[np.ndarray],
               shapes: Sequence[Sequence[int]]) -> go.Figure:
    """One row per HVAE layer (top layer first): a spatial layer's mean as its channels side by
    side (heatmaps), a vector layer's mean as bars with +- sigma whiskers."""
    n = len(means)
    titles = [f"z_{l} mean, shape {tuple(shapes[l - 1])}" for l in range(n, 0, -1)]
    fig = make_subplots(rows=n, cols=1, subplot_titles=titles, vertical_spacing=0.12)
    for row, l in enumerate(range(n, 0, -1), start=1):
        mean, sigma, (c, h, w) = means[l - 1], sigmas[l - 1], shapes[l - 1]
        if h > 1:                                       # channels side by side, 1-cell gaps
            maps = mean.reshape(c, h, w)
            tiled = np.full((h, c * (w + 1) - 1), np.nan)
            for k in range(c):
                tiled[:, k * (w + 1):k * (w + 1) + w] = maps[k]
            lim = float(np.nanmax(np.abs(tiled))) or 1.0
            fig.add_trace(go.Heatmap(z=tiled[::-1], colorscale="RdBu", zmid=0, zmin=-lim,
                                     zmax=lim, showscale=False, hoverinfo="z"), row=row, col=1)
            fig.update_xaxes(showticklabels=False, row=row, col=1)
            fig.update_yaxes(showticklabels=False, row=row, col=1)
        else:
            dims = np.arange(1, c + 1)
            fig.add_trace(go.Bar(x=dims, y=mean.reshape(-1), marker_color="#1f77b4",
                                 error_y=dict(type="data", array=sigma.reshape(-1),
                                              color="#d62728")), row=row, col=1)
    return _layout(fig, "q(z_l | z_(l-1)): the encoder's latents, layer by layer", 240 * n + 80,
                   showlegend=False)
