"""Latent Explorer: `python app.py` serves the app on http://127.0.0.1:7860.

For now one view: the forward process q(x_t | x_0) on a held-out gallery image, under the
linear and cosine schedules. The VAE, HVAE and VDM tabs compose on top of this frame once their
pretrained models ship.
"""

from __future__ import annotations

import argparse

import gradio as gr
import numpy as np
import plotly.graph_objects as go
import torch

from explorer.data import DATASETS, load_gallery, to_float, to_uint8
from explorer.diffusion import q_sample
from explorer.schedules import make_schedule

T = 1000
SCHEDULES = {name: make_schedule(name, T) for name in ("linear", "cosine")}
GALLERIES = {name: load_gallery(name) for name in DATASETS}
PIXEL = 10  # each 28x28 pixel drawn as a PIXEL x PIXEL block (nearest neighbour)


def upscale(image: np.ndarray) -> np.ndarray:
    """uint8 (28, 28) -> (28 PIXEL, 28 PIXEL), nearest neighbour, readable from the back row."""
    return np.kron(image, np.ones((PIXEL, PIXEL), dtype=np.uint8))


def forward_noise(dataset: str, index: int, t: int, schedule: str, seed: int) -> np.ndarray:
    """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps for one gallery image."""
    gallery = GALLERIES[dataset]
    index = int(np.clip(index, 0, len(gallery) - 1))
    x0 = to_float(gallery.images[index:index + 1])
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(int(seed)))
    x_t = q_sample(SCHEDULES[schedule], x0, int(np.clip(t, 0, T)), eps)
    return upscale(to_uint8(x_t.clamp(-1, 1))[0])


def schedule_plot(t: int) -> go.Figure:
    fig = go.Figure()
    for name, s in SCHEDULES.items():
        fig.add_scatter(x=np.arange(T + 1), y=s.alpha_bar.numpy(), name=f"alpha_bar ({name})")
    fig.add_vline(x=int(t), line_dash="dash")
    fig.update_layout(height=300, margin=dict(l=40, r=10, t=30, b=40),
                      xaxis_title="t", yaxis_title="alpha_bar_t")
    return fig


with gr.Blocks(title="Latent Explorer") as demo:
    gr.Markdown("# Latent Explorer\nThe forward process of a diffusion model: "
                "$x_t = \\sqrt{\\bar\\alpha_t}\\,x_0 + \\sqrt{1-\\bar\\alpha_t}\\,\\epsilon$.")
    with gr.Row():
        dataset = gr.Radio(list(DATASETS), value="fashion-mnist", label="dataset")
        schedule = gr.Radio(list(SCHEDULES), value="cosine", label="schedule")
        index = gr.Number(value=0, precision=0, label="gallery image")
        seed = gr.Number(value=0, precision=0, label="noise seed")
    t = gr.Slider(0, T, value=250, step=1, label="t")
    with gr.Row():
        image = gr.Image(format="png", label="x_t ~ q(x_t | x_0)", height=300)
        plot = gr.Plot(label="alpha_bar_t")
    inputs = [dataset, index, t, schedule, seed]
    gr.on([demo.load, t.change, dataset.change, schedule.change, index.change, seed.change],
          forward_noise, inputs, image, api_name="forward_noise", show_progress="hidden")
    gr.on([demo.load, t.change], schedule_plot, t, plot, api_name="schedule_plot",
          show_progress="hidden")


def main() -> None:
    parser = argparse.ArgumentParser(description="Latent Explorer")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument("--share", action="store_true")
    args = parser.parse_args()
    demo.launch(server_name=args.host, server_port=args.port, share=args.share)


if __name__ == "__main__":
    main()
