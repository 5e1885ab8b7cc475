"""What the 2-D playground computes for its page and its API: the view's data (points, the noise
that pushes them through q(x_t | x_0), the schedule's tables), the field at a t (the network's
eps_hat beside the exact eps* on a grid, their gap, the exact density), trajectories of seeded
points (DDPM beside DDIM eta = 0, the learned field beside the exact one), and the downloads.

Arrays go to the page as base64 float32 (ui/page.py MANIFEST["float32"]); every formula comes
from explorer/ (explorer.diffusion, explorer.samplers, explorer.sampling, explorer.toy.exact).
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from explorer.samplers import make_sampler
from explorer.sampling import sample_progressive, step_generator
from explorer.toy.data import BOX, MAX_POINTS  # noqa: F401  (the view's config)
from explorer.toy.exact import ExactDenoiser, density_grid, eps_error_by_t, grid_points
from explorer.toy.export import save_toy
from explorer.validate import check_int, check_seed

from ..common import csv_file, data_file
from ..page import float32_b64
from .lab import Lab, digest

GRID = (5, 41)                    # arrows a side: the field's grid (25 by default)
DENSITY = 64                      # cells a side of the exact density q(x_t)
TRAJECTORY_POINTS = (1, 2000)
TRAJECTORY_STEPS = (2, 1000)
SAMPLERS = (("ddpm", "DDPM (stochastic)"), ("ddim", "DDIM, eta = 0 (the probability-flow ODE)"))
FIELDS = ("learned", "exact")
NOISE_SEED = 4242                 # eps of the points' q(x_t) cloud (fixed: the scrub is smooth)


def noise_of(points: np.ndarray) -> np.ndarray:
    """The eps that pushes each data point through q(x_t | x_0) as t is scrubbed (N, 2)."""
    g = torch.Generator().manual_seed(NOISE_SEED)
    return torch.randn(points.shape, generator=g).numpy().astype(np.float32)


def tables(lab: Lab) -> dict:
    """sqrt(alpha_bar_t) and sqrt(1 - alpha_bar_t), t = 0..T, and log SNR(t), t = 1..T: what the
    page mixes x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps with (explorer.diffusion.mix)."""
    s = lab.net.schedule
    return {"T": s.T, "a": float32_b64(s.sqrt_alpha_bar.numpy()),
            "b": float32_b64(s.sqrt_one_minus_alpha_bar.numpy()),
            "log_snr": float32_b64(s.log_snr[1:].numpy())}


def view_data(lab: Lab, scene_t: int | None = None) -> dict:
    """The view's value: which lab, its data, the noise of the q(x_t) cloud and the tables."""
    return {"key": lab.key, "lab": lab.id, "data": lab.settings.data, "n": int(len(lab.points)),
            "points": float32_b64(lab.points), "eps": float32_b64(noise_of(lab.points)),
            "digest": digest(lab.points), "tables": tables(lab), "box": BOX,
            "settings": {"schedule": lab.settings.schedule, "steps": lab.settings.steps},
            "scene_t": scene_t}


# ---------------------------------------------------------------- the field at t

def field(lab: Lab, t: int, grid: int = 25, which: str = "eps") -> dict:
    """At step t (1..T), on a grid x grid of cell centres `points` (grid^2, 2): eps_hat of the
    network `learned` and the exact eps* `exact` (or the scores, -eps / sqrt(1 - alpha_bar_t)),
    float32 (grid^2, 2); the gap |eps_hat - eps*| (grid^2,); and `mse`, E||eps - eps_hat||^2
    beside E||eps - eps*||^2 at t (the loss at this t, and its floor)."""
    grid = check_int("grid", grid, *GRID)
    if which not in ("eps", "score"):
        raise ValueError(f"unknown field {which!r}; valid: 'eps', 'score'")
    s = lab.net.schedule
    t = check_int("t", t, 1, s.T)
    x = grid_points(grid).to(torch.float32)                          # (grid^2, 2)
    steps = torch.full((x.shape[0],), t, dtype=torch.long)
    exact = ExactDenoiser(lab.points, s)
    with torch.no_grad():
        learned = lab.net.predict_noise(x, steps).double()
        optimal = exact(x, steps).double()
    gap = (learned - optimal).norm(dim=1)
    scale = 1.0 if which == "eps" else -1.0 / float(s.sqrt_one_minus_alpha_bar[t])
    g = torch.Generator().manual_seed(t)
    with torch.no_grad():
        errors = [float(eps_error_by_t(m, lab.points, s, [t], 2048, g)[0])
                  for m in (lab.net.predict_noise, exact)]
    return {"t": t, "grid": grid, "which": which, "points": x.numpy(),
            "learned": (learned * scale).numpy().astype(np.float32),
            "exact": (optimal * scale).numpy().astype(np.float32),
            "gap": gap.numpy().astype(np.float32), "gap_mean": float(gap.mean()),
            "mse": {"learned": errors[0], "exact": errors[1]}}


def field_message(lab: Lab, out: dict) -> dict:
    """`field` as the page receives it: its arrays in base64 float32, with the exact density
    q(x_t) on a DENSITY grid for the contours."""
    return {"t": out["t"], "grid": out["grid"], "which": out["which"], "lab": lab.id,
            **{k: float32_b64(out[k]) for k in ("learned", "exact", "gap")},
            "gap_mean": out["gap_mean"], "mse": out["mse"], "iteration": lab.iteration,
            "density": float32_b64(density_grid(lab.points, lab.net.schedule, out["t"], DENSITY)),
            "density_side": DENSITY}


# ---------------------------------------------------------------- trajectories

def trajectories(lab: Lab, n: int = 200, steps: int = 100, seed: int = 0) -> dict:
    """n points from x_T ~ N(0, I) (drawn from `seed`) to x_0, with DDPM and with DDIM
    (eta = 0) over `steps` even steps, each with the learned field and the exact one: the same
    x_T and the same per-step noise for both fields (step_generator(seed, k)). Each run is
    (steps + 1, n, 2): x_T first, x_0 last."""
    n = check_int("points", n, *TRAJECTORY_POINTS)
    steps = check_int("steps", steps, *TRAJECTORY_STEPS)
    seed = check_seed(seed)
    s = lab.net.schedule
    x_T = torch.randn((n, 2), generator=step_generator(seed, -1))
    exact = ExactDenoiser(lab.points, s)
    runs, timesteps = {}, None
    for name, _ in SAMPLERS:
        for which, eps_model in (("learned", lab.net.predict_noise), ("exact", exact)):
            kwargs = {"eta": 0.0} if name == "ddim" else {}
            sampler = make_sampler(name, s, clip_sample=False, **kwargs)
            sampler.set_timesteps(steps)
            xs = [x_T]
            for step in sample_progressive(eps_model, sampler, x_T=x_T,
                                           generator=lambda k: step_generator(seed, k)):
                xs.append(step.x_prev)
            runs[f"{name}-{which}"] = torch.stack(xs).numpy().astype(np.float32)
            timesteps = sampler.timesteps.tolist()
    return {"n": n, "steps": steps, "seed": seed, "timesteps": timesteps, "lab": lab.id,
            "runs": runs}


def trajectories_message(result: dict) -> dict:
    """`trajectories` as the page receives it (the runs in base64 float32)."""
    return {**{k: v for k, v in result.items() if k != "runs"},
            "runs": {k: float32_b64(v) for k, v in result["runs"].items()}}


def trajectories_summary(result: dict, points: np.ndarray) -> dict:
    """For the API: where each run's x_0 ended, as the mean distance to the nearest training
    point (the exact field memorises: its points land on the training set)."""
    data = torch.as_tensor(points, dtype=torch.float64)
    out = {}
    for name, run in result["runs"].items():
        x0 = torch.as_tensor(run[-1], dtype=torch.float64)
        out[name] = round(float(torch.cdist(x0, data).min(dim=1).values.mean()), 5)
    return {"n": result["n"], "steps": result["steps"], "seed": result["seed"],
            "mean_distance_to_nearest_training_point": out}


# ---------------------------------------------------------------- downloads

def points_csv(lab: Lab) -> str:
    """The training points and the latest samples, one row each (kind, x, y)."""
    rows = [("data", f"{x:.6g}", f"{y:.6g}") for x, y in lab.points.tolist()]
    if lab.cloud is not None:
        rows += [(f"sample (iteration {lab.cloud_at})", f"{x:.6g}", f"{y:.6g}")
                 for x, y in lab.cloud.tolist()]
    return csv_file(("kind", "x", "y"), rows, name=f"playground-{lab.settings.data}")


def trajectories_csv(result: dict) -> str:
    """Every point of every run at every step (run, step k, t, point, x, y)."""
    timesteps = [*result["timesteps"], 0]
    rows = []
    for name, run in result["runs"].items():
        for k in range(run.shape[0]):
            rows += [(name, k, timesteps[k], i, f"{x:.6g}", f"{y:.6g}")
                     for i, (x, y) in enumerate(run[k].tolist())]
    return csv_file(("run", "k", "t", "point", "x", "y"), rows, name="playground-trajectories")


def model_zip(lab: Lab) -> str:
    """The trained model as the shipped ones are saved (safetensors weights + JSON config,
    the training settings and its data), zipped."""
    with tempfile.TemporaryDirectory() as folder:
        save_toy(lab.net, lab.points, folder, lab.trainer.config, lab.iteration)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
            for f in sorted(Path(folder).iterdir()):
                z.write(f, f.name)
            z.writestr("training.json", json.dumps(
                {"iteration": lab.iteration, "seconds": round(lab.seconds, 3),
                 "settings": lab.settings.__dict__, "history_columns":
                     ["iteration", "seconds", "reconstruction", "prior", "diffusion", "total"],
                 "history": [list(map(float, h)) for h in lab.history],
                 "exact_diffusion_floor_nats": lab.floor}, indent=1))
    return data_file(buffer.getvalue(), "zip", f"playground-model-{lab.settings.data}")


SIDE_PX = 320
COLORS = {"data": (170, 170, 170), "learned": (214, 39, 40), "exact": (34, 34, 34)}


def scatter(layers, size: int = SIDE_PX, title: str = "") -> Image.Image:
    """Points on a white square over [-BOX, BOX]^2: layers of ((n, 2) array, rgb, radius)."""
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    scale = size / (2 * BOX)
    for points, color, radius in layers:
        for x, y in np.asarray(points, dtype=np.float64).tolist():
            px, py = (x + BOX) * scale, (BOX - y) * scale
            draw.ellipse((px - radius, py - radius, px + radius, py + radius), fill=color)
    if title:
        draw.text((6, 4), title, fill=(0, 0, 0))
    return image


def _gif(images: list[Image.Image], name: str, ms: int = 120) -> str:
    buffer = io.BytesIO()
    images[0].save(buffer, format="GIF", save_all=True, append_images=images[1:], duration=ms,
                   loop=0)
    return data_file(buffer.getvalue(), "gif", name)


def training_gif(lab: Lab) -> str:
    """The sample cloud through training, over the data (grey), one frame per snapshot kept."""
    if not lab.frames:
        raise ValueError("nothing trained yet: press Train first")
    images = [scatter([(lab.points, COLORS["data"], 1.2), (cloud, COLORS["learned"], 1.6)],
                      title=f"iteration {iteration}") for iteration, cloud in lab.frames]
    return _gif(images, f"playground-training-{lab.settings.data}")


def trajectories_gif(result: dict, points: np.ndarray, frames: int = 40) -> str:
    """DDPM | DDIM side by side, the learned field's points (red) over the exact one's (black),
    from x_T to x_0 in up to `frames` frames."""
    steps = result["runs"]["ddpm-learned"].shape[0]
    picks = sorted(set(np.linspace(0, steps - 1, min(frames, steps)).round().astype(int)))
    timesteps = [*result["timesteps"], 0]
    images = []
    for k in picks:
        panels = [scatter([(points, COLORS["data"], 1.0),
                           (result["runs"][f"{name}-exact"][k], COLORS["exact"], 1.5),
                           (result["runs"][f"{name}-learned"][k], COLORS["learned"], 1.5)],
                          title=f"{name.upper()}  t = {timesteps[k]}") for name, _ in SAMPLERS]
        frame = Image.new("RGB", (2 * SIDE_PX + 8, SIDE_PX), (200, 200, 200))
        frame.paste(panels[0], (0, 0))
        frame.paste(panels[1], (SIDE_PX + 8, 0))
        images.append(frame)
    images += [images[-1]] * 8                               # hold x_0
    return _gif(images, "playground-trajectories")
