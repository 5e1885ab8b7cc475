"""The forward process of a diffusion model on a gallery image, a preview of the road's end:

    x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps       (q(x_t | x_0))

under the linear and cosine schedules. `create_forward_tab(demo, dataset)`; the VDM tab itself
is built on this frame later.
"""

from __future__ import annotations

import gradio as gr
import numpy as np
import plotly.graph_objects as go
import torch

from explorer.data import to_float, to_uint8
from explorer.diffusion import q_sample
from explorer.schedules import make_schedule

from .common import PIXEL, caption, friendly, upscale
from .store import STORE, gallery_image

T = 1000
SCHEDULES = {name: make_schedule(name, T) for name in ("linear", "cosine")}


def forward_noise(dataset: str, index: int, t: int, schedule: str, seed: int) -> np.ndarray:
    """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps for one gallery image."""
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}; valid: {', '.join(SCHEDULES)}")
    size = len(STORE.gallery(dataset))
    x0 = to_float(gallery_image(dataset, int(np.clip(index, 0, size - 1)))[None])
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(int(seed)))
    x_t = q_sample(SCHEDULES[schedule], x0, int(np.clip(t, 0, T)), eps)
    return upscale(to_uint8(x_t.clamp(-1, 1))[0], PIXEL)


def schedule_plot(t: int) -> go.Figure:
    fig = go.Figure()
    for name, s in SCHEDULES.items():
        fig.add_scatter(x=np.arange(T + 1), y=s.alpha_bar.numpy(), name=f"alpha_bar ({name})")
    fig.add_vline(x=int(t), line_dash="dash")
    fig.update_layout(height=300, margin=dict(l=40, r=10, t=30, b=40), font=dict(size=16),
                      xaxis_title="t", yaxis_title="alpha_bar_t")
    return fig


def create_forward_tab(demo: gr.Blocks, dataset: gr.Radio) -> None:
    caption("The forward process of a diffusion model adds Gaussian noise in one shot: "
            "$x_t = \\sqrt{\\bar\\alpha_t}\\,x_0 + \\sqrt{1-\\bar\\alpha_t}\\,\\epsilon$, "
            "$\\epsilon \\sim \\mathcal{N}(0, I)$. It is the encoder of a hierarchical VAE that "
            "nobody trains.")
    with gr.Row():
        schedule = gr.Radio(list(SCHEDULES), value="cosine", label="schedule")
        index = gr.Number(value=0, precision=0, label="gallery image")
        seed = gr.Number(value=0, precision=0, label="noise seed")
    t = gr.Slider(0, T, value=250, step=1, label="t", elem_id="forward-t")
    with gr.Row():
        image = gr.Image(format="png", label="x_t ~ q(x_t | x_0)", height=300,
                         elem_id="forward-image", elem_classes="pixelated")
        plot = gr.Plot(label="alpha_bar_t")
    inputs = [dataset, index, t, schedule, seed]
    gr.on([demo.load, t.change, dataset.change, schedule.change, index.change, seed.change],
          friendly(forward_noise), inputs, image, api_name="forward_noise",
          show_progress="hidden")
    gr.on([demo.load, t.change], schedule_plot, t, plot, api_name="schedule_plot",
          show_progress="hidden")
