"""The 2-D playground's layout: the data and the model (Gradio controls), the training view
(Train / Pause / Stop, the loss and its floor, the sample cloud, the forward process and the
field at a scrubbed t: ui/static/views/toy.js) and the reverse-process view (trajectories of
seeded points, DDPM beside DDIM: ui/static/views/toypaths.js), with their downloads.
"""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from explorer.schedules import SCHEDULES
from explorer.toy.data import MAX_POINTS, SET_NAMES, SETS

from ..common import caption, file_out, seed_box
from ..page import view
from . import lab, live, views

DRAWN = ("your points (click on the data plot)", "drawn")


@dataclass
class ApiPorts:
    """Hidden inputs and outputs of the public API where the page has views of its own."""
    t: gr.Slider
    grid: gr.Slider
    which: gr.Radio
    points: gr.Textbox
    n: gr.Slider
    steps: gr.Slider
    seed: gr.Number
    numbers: gr.JSON


@dataclass
class PlaygroundTab:
    data: gr.Radio
    size: gr.Slider
    seed: gr.Number
    schedule: gr.Radio
    width: gr.Slider
    depth: gr.Slider
    lr: gr.Number
    iterations: gr.Slider
    batch: gr.Slider
    toy: gr.HTML
    paths: gr.HTML
    state: gr.State
    training_gif: gr.Button
    points_csv: gr.Button
    model_zip: gr.Button
    files: gr.File
    paths_files: gr.File
    api: ApiPorts


def _intro() -> None:
    gr.Markdown("## 2-D playground: train a diffusion model in front of you")
    caption("In two dimensions the whole VDM story fits on one plot. Pick a data set (or draw "
            "your own points), press **Train**: a small MLP learns to predict the noise, "
            "$\\hat\\epsilon_\\theta(x_t, t)$, under the VDM loss, and its samples (red) take "
            "the shape of the data (grey) as you watch. For a finite set of points the best "
            "possible denoiser is known in closed form: given $x_t$, the posterior over the "
            "training points is $p(x_0 = x_i | x_t) \\propto \\mathcal{N}(x_t; \\sqrt{\\bar\\alpha_t}"
            "\\,x_i, (1-\\bar\\alpha_t) I)$, and $\\epsilon^* = (x_t - \\sqrt{\\bar\\alpha_t}\\,"
            "\\mathbb{E}[x_0|x_t]) / \\sqrt{1-\\bar\\alpha_t}$ (Tweedie). Its loss is the dashed "
            "floor under the training curve; its field is drawn beside the network's.")


def _controls(dataset_default: str = "moons") -> dict:
    with gr.Row():
        data = gr.Radio([(SET_NAMES[s], s) for s in SETS] + [DRAWN], value=dataset_default,
                        label="data", elem_id="toy-data", scale=3)
        size = gr.Slider(16, MAX_POINTS, value=lab.Settings.size, step=1, label="points",
                         elem_id="toy-size", scale=2)
        seed = seed_box(label="seed (data, weights, batches)", elem_id="toy-seed")
    with gr.Row():
        schedule = gr.Radio(list(SCHEDULES), value=lab.Settings.schedule,
                            label="noise schedule", elem_id="toy-schedule")
        width = gr.Slider(16, 512, value=lab.Settings.width, step=16, label="MLP width",
                          elem_id="toy-width")
        depth = gr.Slider(1, 6, value=lab.Settings.depth, step=1, label="hidden layers",
                          elem_id="toy-depth")
        lr = gr.Number(lab.Settings.lr, label="learning rate", minimum=1e-5, maximum=0.1,
                       elem_id="toy-lr")
        iterations = gr.Slider(100, 20_000, value=lab.Settings.steps, step=100,
                               label="iterations", elem_id="toy-iterations")
        batch = gr.Slider(64, 4096, value=lab.Settings.batch, step=64, label="batch",
                          elem_id="toy-batch")
    return dict(data=data, size=size, seed=seed, schedule=schedule, width=width, depth=depth,
                lr=lr, iterations=iterations, batch=batch)


def _api_ports() -> ApiPorts:
    with gr.Group(visible=False):
        return ApiPorts(
            t=gr.Slider(1, 1000, value=250, step=1, label="t", elem_id="toy-t"),
            grid=gr.Slider(*views.GRID, value=25, step=1, label="grid", elem_id="toy-grid"),
            which=gr.Radio(["eps", "score"], value="eps", label="field", elem_id="toy-which"),
            points=gr.Textbox("", label="drawn points (JSON: [[x, y], ...])",
                              elem_id="toy-points"),
            n=gr.Slider(*views.TRAJECTORY_POINTS, value=200, step=1, label="trajectory points",
                        elem_id="toy-n"),
            steps=gr.Slider(*views.TRAJECTORY_STEPS, value=100, step=1,
                            label="trajectory steps", elem_id="toy-steps"),
            seed=seed_box(label="trajectory seed", elem_id="toy-paths-seed"),
            numbers=gr.JSON(elem_id="toy-numbers"))


def create() -> PlaygroundTab:
    _intro()
    controls = _controls()
    toy = view("toy", "toy-view", config={"box": views.BOX, "limit_s": lab.TRAIN_LIMIT_S,
                                          "grid": 25, "grids": list(views.GRID),
                                          "max_points": views.MAX_POINTS},
               server_functions=live.SERVER_FUNCTIONS)
    with gr.Row(equal_height=True, elem_classes="le-downloads"):
        training_gif = gr.Button("training as GIF", elem_id="toy-training-gif-btn")
        points_csv = gr.Button("points as CSV", elem_id="toy-points-csv-btn")
        model_zip = gr.Button("model (safetensors + JSON)", elem_id="toy-model-btn")
    files = file_out("toy-file", "download", visible=False)
    gr.Markdown("## Reverse process: seeded points from noise to data")
    caption("Seeded points start at $x_T \\sim \\mathcal{N}(0, I)$ and follow the reverse "
            "process to $x_0$: **DDPM** draws fresh noise every step, **DDIM** with $\\eta = 0$ "
            "follows the probability-flow ODE. Red: the trained network's field; black: the "
            "exact denoiser's, with the same $x_T$ and the same noise. The exact field brings "
            "every point back onto a training point: it has memorised the data, which is the "
            "best a denoiser can do for a finite set; a network that generalises does not.")
    paths = view("toypaths", "toy-paths-view",
                 config={"box": views.BOX, "n": list(views.TRAJECTORY_POINTS),
                         "steps": list(views.TRAJECTORY_STEPS), "samplers": dict(views.SAMPLERS)},
                 server_functions=live.SERVER_FUNCTIONS)
    paths_files = file_out("toy-paths-file", "download", visible=False)
    return PlaygroundTab(**controls, toy=toy, paths=paths, state=gr.State(None),
                         training_gif=training_gif, points_csv=points_csv, model_zip=model_zip,
                         files=files, paths_files=paths_files, api=_api_ports())
