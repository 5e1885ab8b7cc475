"""Plotly figures of the tabs. Points of the gallery carry `customdata` = their gallery index, so
the page script in bridge.py can send a click or hover on them back to Python."""

from __future__ import annotations

import base64
import functools
import io
import json
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots
from gradio.components.plot import PlotData
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
    for trace in map_overlays(marks, paths):
        fig.add_trace(trace)
    return _layout(fig, title, height, hovermode="closest", clickmode="event",
                   legend=dict(itemsizing="constant"))


def map_overlays(marks: dict[str, np.ndarray] | None = None,
                 paths: dict[str, np.ndarray] | None = None) -> list[dict]:
    """The traces `latent_map` draws for `marks` and `paths`, as plain plotly JSON (to go on a
    cached map with FastFigure.emit(extra=...) without validating a figure again)."""
    out = []
    for name, xy in (paths or {}).items():
        out.append({"type": "scatter", "x": xy[:, 0].tolist(), "y": xy[:, 1].tolist(),
                    "mode": "lines+markers", "name": name, "hoverinfo": "name",
                    "line": {"width": 3, "color": "black",
                             "dash": "dot" if name.startswith("slerp") else "solid"},
                    "marker": {"size": 6, "color": "black"}})
    for name, xy in (marks or {}).items():
        color = MARK_COLORS.get(name)
        out.append({"type": "scatter", "x": [float(xy[0])], "y": [float(xy[1])],
                    "mode": "markers+text", "name": name, "text": [name],
                    "textposition": "top center", "hoverinfo": "name",
                    "textfont": {"size": 22, **({"color": color} if color else {})},
                    "marker": {"size": 22, "symbol": "star", "color": color or "black",
                               "line": {"width": 2, "color": "white"}}})
    return out


def posterior_plot(mu: np.ndarray, sigma: np.ndarray) -> go.Figure:
    """Bars mu_j(x) with error bars +- sigma_j(x) per latent dimension j."""
    dims = np.arange(1, len(mu) + 1)
    fig = go.Figure(go.Bar(x=dims, y=mu, name="mu(x)", marker_color="#1f77b4",
                           error_y=dict(type="data", array=sigma, thickness=2, width=3,
                                        color="#d62728")))
    fig.add_hline(y=0, line_color="gray")
    return _layout(fig, "q(z|x) = N(mu, sigma^2): bars mu_j, whiskers +- sigma_j", 360,
                   xaxis_title="latent dimension j", yaxis_title="z_j", showlegend=False)


def norm_plot(paths: dict[str, np.ndarray], reference: float) -> PlotData:
    """||z|| along each path; the dashed line is sqrt(D), where N(0, I) puts almost all mass."""
    frames = {len(norms) for norms in paths.values()}
    if len(frames) != 1:
        raise ValueError("every path needs the same number of frames")
    base = _norm_base(tuple(paths), float(reference), frames.pop())
    return base.emit({i: {"y": np.asarray(norms, dtype=float).tolist()}
                      for i, norms in enumerate(paths.values())})


@functools.lru_cache(maxsize=64)
def _norm_base(names: tuple[str, ...], reference: float, frames: int) -> FastFigure:
    fig = go.Figure()
    w = np.linspace(0, 1, frames)
    for name in names:
        fig.add_trace(go.Scatter(x=w, y=np.zeros(frames), mode="lines+markers", name=name,
                                 line=dict(width=3, dash="dot" if name == "slerp" else "solid")))
    fig.add_hline(y=reference, line_dash="dash", line_color="gray",
                  annotation_text="sqrt(D): typical ||z|| under N(0, I)")
    return FastFigure(_layout(fig, "||z|| along the path", 340, xaxis_title="w (0 = A, 1 = B)",
                              yaxis_title="||z||"))


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


# ---------------------------------------------------------------- fast re-emission

class FastFigure:
    """A plotly figure validated once (building a go.Figure takes ~100 ms here) and re-emitted
    with new values in about a millisecond, for slider paths: `emit(traces, layout)` patches trace
    i with traces[i] and the layout's top-level keys, and returns what gr.Plot shows."""

    def __init__(self, fig: go.Figure):
        self.base = json.loads(fig.to_json())

    def emit(self, traces: dict[int, dict] | None = None, layout: dict | None = None,
             extra: Sequence[dict] = ()) -> PlotData:
        """`extra`: more traces drawn on top, as plain plotly JSON dicts (not validated)."""
        traces = traces or {}
        data = [dict(tr, **traces[i]) if i in traces else tr
                for i, tr in enumerate(self.base["data"])] + list(extra)
        return PlotData(type="plotly", plot=json.dumps(
            {"data": data, "layout": dict(self.base["layout"], **(layout or {}))}))

    def title(self, text: str) -> dict:
        """A layout patch that changes only the title's text."""
        return {"title": dict(self.base["layout"].get("title", {}), text=text)}


# ---------------------------------------------------------------- the VDM tab

SCHEDULE_COLORS = {"learned": "#d62728", "linear": "#1f77b4", "cosine": "#2ca02c"}
HISTOGRAM_BINS = (-4.0, 4.0, 40)          # x_t's pixel histogram: [low, high, bins]
_BINS = np.linspace(*HISTOGRAM_BINS[:2], HISTOGRAM_BINS[2] + 1)
_GRID = np.linspace(-4, 4, 161)


@functools.lru_cache(maxsize=1)
def _histogram_base() -> FastFigure:
    centres = (_BINS[:-1] + _BINS[1:]) / 2
    normal = np.exp(-_GRID ** 2 / 2) / np.sqrt(2 * np.pi)
    fig = go.Figure([go.Bar(x=centres, y=np.zeros_like(centres), width=_BINS[1] - _BINS[0],
                            name="pixels of x_t", marker_color="#7f7f7f"),
                     go.Scatter(x=_GRID, y=normal, name="N(0, 1)", mode="lines",
                                line=dict(color="#d62728", width=3))])
    return FastFigure(_layout(fig, "", 320, xaxis=dict(range=[-4, 4], title="pixel value"),
                              yaxis=dict(range=[0, 3], title="density"), bargap=0,
                              legend=dict(x=0.99, xanchor="right", y=0.99)))


def histogram_plot(x_t: np.ndarray, t: int) -> PlotData:
    """The density histogram of x_t's pixels against the N(0, 1) density they approach."""
    counts, _ = np.histogram(np.clip(x_t, -4, 4), bins=_BINS, density=True)
    base = _histogram_base()
    return base.emit({0: {"y": counts.round(4).tolist()}},
                     base.title(f"pixel values of x_t (t = {t}) against N(0, 1)"))


def schedule_figure(schedules: dict, every: int = 5) -> FastFigure:
    """alpha_bar_t, SNR(t) (log axis) and log-SNR(t) of each schedule, with a cursor to move
    (`schedule_cursor`)."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=("alpha_bar_t", "SNR(t)", "log-SNR(t)"),
                        horizontal_spacing=0.08)
    for name, s in schedules.items():
        ts = np.arange(1, s.T + 1, every)
        for col, table in enumerate((s.alpha_bar, s.snr, s.log_snr), start=1):
            fig.add_trace(go.Scatter(x=ts, y=table.numpy()[ts], mode="lines", name=name,
                                     legendgroup=name, showlegend=col == 1,
                                     line=dict(width=3, color=SCHEDULE_COLORS.get(name))),
                          row=1, col=col)
    fig.update_yaxes(type="log", exponentformat="power", row=1, col=2)
    for col in (1, 2, 3):
        fig.add_vline(x=0, line_dash="dash", line_color="black", row=1, col=col)
        fig.update_xaxes(title="t", row=1, col=col)
    return FastFigure(_layout(fig, "", 340, legend=dict(orientation="h", y=-0.25)))


def schedule_cursor(figure: FastFigure, t: int) -> PlotData:
    shapes = [dict(s, x0=t, x1=t) for s in figure.base["layout"]["shapes"]]
    return figure.emit(layout={"shapes": shapes,
                               **figure.title(f"noise schedules, cursor at t = {t}")})


def loss_plot(ts: np.ndarray, l_t: np.ndarray, nats: dict[str, float]) -> go.Figure:
    """L_t against t (log axis), with the reconstruction and prior terms named in the title."""
    bpd = 1 / (28 * 28 * np.log(2))
    fig = go.Figure(go.Scatter(x=ts, y=np.maximum(l_t, 1e-6), mode="lines+markers",
                               marker=dict(size=4), line=dict(width=2, color="#1f77b4"),
                               name="L_t", hovertemplate="t = %{x}<br>L_t = %{y:.4f} nats"))
    title = (f"L_t = KL(q(x_(t-1) | x_t, x_0) || p(x_(t-1) | x_t)) per step; "
             f"-ELBO = {nats['reconstruction'] * bpd:.3f} (rec.) + {nats['prior'] * bpd:.3f} "
             f"(prior) + {nats['diffusion'] * bpd:.3f} (denoising) = {nats['total'] * bpd:.3f} "
             "bits/dim")
    fig.update_yaxes(type="log", title="L_t (nats)", exponentformat="power")
    return _layout(fig, title, 380, xaxis_title="t", showlegend=False,
                   title_font=dict(size=14))


# the samplers' names in the page (the reverse run's choices, this plot's lines)
SAMPLER_NAMES = {"ddpm": "DDPM", "ddim": "DDIM", "dpmpp2m": "DPM-Solver++(2M)",
                 "dpmpp2m_sde": "DPM-Solver++(2M) SDE", "heun": "Heun (2nd order)"}


def sampler_quality_plot(samples: dict[str, dict]) -> go.Figure | None:
    """Sample distance against network evaluations (NFE), one line per sampler and timestep
    spacing, from a VDM record's scores (those saying how they were drawn: sampler, nfe), the
    train-vs-test floor dashed; None when the record has no such scores."""
    lines: dict[str, list[tuple[int, float]]] = {}
    floors = []
    for key, score in samples.items():
        if not {"sampler", "nfe", "frechet_distance"} <= score.keys():
            continue
        name = SAMPLER_NAMES.get(score["sampler"], score["sampler"])
        if score["sampler"] == "ddim":
            name += " (eta 0)"                              # as explorer.report draws it
        if score.get("timestep_spacing") == "linspace":
            name += ", even in t"
        lines.setdefault(name, []).append((score["nfe"], score["frechet_distance"]))
        floors.append(score["floor"])
    if not lines:
        return None
    fig = go.Figure()
    for i, (name, points) in enumerate(lines.items()):
        nfe, fd = zip(*sorted(points))
        fig.add_trace(go.Scatter(x=nfe, y=fd, mode="lines+markers", name=name,
                                 marker=dict(size=9), line=dict(width=2, color=COLORS[i]),
                                 hovertemplate=name + "<br>%{x} evaluations: %{y:.1f}"
                                               "<extra></extra>"))
    floor = min(floors)
    fig.add_hline(y=floor, line=dict(dash="dash", color="#555"))
    # on a log axis an annotation's y is log10 of the value (add_hline's own label is misplaced)
    fig.add_annotation(x=1, xref="paper", y=np.log10(floor), yref="y", xanchor="right",
                       yanchor="top", showarrow=False,
                       text=f"floor {floor:.1f} (train vs test images)")
    fig.update_xaxes(type="log", title="network evaluations per sample (NFE)")
    values = [fd for points in lines.values() for _, fd in points]
    fig.update_yaxes(type="log", title="distance to test images (log)",
                     range=[np.log10(0.6 * floor), np.log10(1.25 * max(values))])
    return _layout(fig, "Sample quality against cost: lower is better", 500,
                   legend=dict(orientation="h", y=-0.25))


def xt_map(points: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
           limits: np.ndarray, title: str) -> go.Figure:
    """The gallery's x_t on fixed PCA axes (a latent_map whose axes do not move with t)."""
    fig = latent_map(points, labels, class_names, title, height=560, webgl=False)
    fig.update_traces(marker=dict(size=5))
    fig.update_xaxes(range=[-limits[0], limits[0]], title="PC 1 of x_0")
    fig.update_yaxes(range=[-limits[1], limits[1]], title="PC 2 of x_0")
    return fig
