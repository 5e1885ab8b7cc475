"""What the VDM tab computes (the reverse run itself lives in vdm_reverse.py); plain functions of
simple values, so each is also an API endpoint. Models are read, never changed.

    q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I),  x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps
    -ELBO(x) = -log p(x_0 | x_1) + KL(q(x_T | x_0) || p(x_T)) + sum_{t=2..T} L_t
    p(x_T) = N(m, S), x_T = m + S^(1/2) z: N(0, I) (z = x_T), or fitted to the data (explorer.priors)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import gradio as gr
import numpy as np
import torch

from explorer.data import to_float, to_uint8
from explorer.diffusion import denoising_sum, q_sample
from explorer.latent import Projection, project
from explorer.latent import interpolate as latent_path
from explorer.samplers import DEFAULT_TIMESTEP_SPACING, SAMPLERS, make_sampler
from explorer.sampling import ddim_decode, ddim_invert, sample, step_generator
from explorer.schedules import DiscreteSchedule, make_schedule

from ..common import (GIF_HOLD_MS, GIF_MS, PIXEL, check_int, check_seed, compose, gif_file,
                      interpolation_gif, png_file, strip, terms_table)
from ..maps import coordinates_csv
from ..page import float32_b64
from ..plots import histogram_plot, loss_plot, schedule_cursor, schedule_figure, xt_map
from ..store import STORE, resolve_input

SCHEDULE_CHOICES = ("learned", "linear", "cosine")
FRAMES_MAX, DENOISE_SEEDS, LOSS_CHUNK = 12, 4, 50
SCRUB_GIF_FRAMES = (2, 200)                  # frames of the scrub's GIF
INVERT_STEPS = (5, 100)
LOSS_POINTS = (20, 999)


# ---------------------------------------------------------------- schedules

def model_T(dataset: str) -> int:
    """T of the dataset's VDM (1000 when it is missing: the fixed schedules still show)."""
    try:
        return STORE.model(dataset, "vdm").T
    except Exception:
        return 1000


def schedules(dataset: str) -> dict[str, DiscreteSchedule]:
    """The VDM's learned schedule (when the model is there) beside linear and cosine, same T;
    tabulated once per dataset."""
    def compute() -> dict[str, DiscreteSchedule]:
        T = model_T(dataset)
        out = {}
        if (dataset, "vdm") in STORE.models:
            out["learned"] = STORE.model(dataset, "vdm").schedule
        out.update({name: make_schedule(name, T) for name in ("linear", "cosine")})
        return out
    return STORE.cached(("vdm", dataset, "schedules"), compute)


def schedule_of(dataset: str, name: str) -> DiscreteSchedule:
    if name not in SCHEDULE_CHOICES:
        raise ValueError(f"unknown schedule {name!r}; valid: {', '.join(SCHEDULE_CHOICES)}")
    table = schedules(dataset)
    if name not in table:                                        # the VDM is missing
        STORE.model(dataset, "vdm")                              # raises ModelMissing, named
    return table[name]


# ---------------------------------------------------------------- forward process

@dataclass(frozen=True)
class Scrub:
    """A forward-process scrub: x_0 and one fixed eps, so moving t only mixes them."""
    dataset: str
    schedule: str
    x0: np.ndarray            # (28, 28) float32 in [-1, 1]
    eps: np.ndarray           # (28, 28) float32, eps ~ N(0, I) drawn from the seed


def prepare_scrub(dataset: str, index, image, schedule: str = "cosine", seed: int = 0) -> Scrub:
    """Encode nothing, draw once: the image as x_0 and eps from the seed."""
    schedule_of(dataset, schedule)                               # a bad name fails here
    x0 = to_float(resolve_input(dataset, index, image)[None])[0, 0].numpy()
    eps = torch.randn((28, 28), generator=step_generator(check_seed(seed), -1)).numpy()
    return Scrub(dataset, schedule, x0, eps)


def mix(state: Scrub, t) -> np.ndarray:
    """x_t of the scrub at step t (or at each of an array of steps): q_sample in float32."""
    return q_sample(schedule_of(state.dataset, state.schedule), state.x0, t, state.eps)


def scrub(state: Scrub, t: int):
    """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps from the scrub's x_0 and eps
    (no model call): (x_t image, pixel histogram against N(0, 1), numbers)."""
    s = schedule_of(state.dataset, state.schedule)
    t = check_int("t", t, 0, s.T)
    x_t = mix(state, t)                                                  # (28, 28)
    numbers = {"t": t, "T": s.T, "schedule": state.schedule,
               "alpha_bar": float(s.alpha_bar[t]), "log_snr": float(s.log_snr[t]),
               "snr": float(s.snr[t]), "mean": float(x_t.mean()), "std": float(x_t.std())}
    image = to_uint8(torch.from_numpy(x_t).clamp(-1, 1)[None])[0]
    return compose([[image]], PIXEL), histogram_plot(x_t, t), numbers


def scrub_view_data(dataset: str, index, image, schedule: str = "cosine", seed: int = 0,
                    scene_t: int | None = None) -> dict:
    """What the page's scrub view mixes and draws (ui/static/views/scrub.js), its value: x_0
    and eps as float32, the schedule they go with, every schedule's sqrt(alpha_bar_t) and
    sqrt(1 - alpha_bar_t) for t = 0..T (float32, the values the mix uses) and the t a scene link
    asks for (the page keeps its own t otherwise)."""
    state = prepare_scrub(dataset, index, image, schedule, seed)
    return {"dataset": dataset, "schedule": schedule, "x0": float32_b64(state.x0),
            "eps": float32_b64(state.eps), "scene_t": scene_t, **schedule_tables(dataset)}


def schedule_tables(dataset: str) -> dict:
    """{"T", "tables": {name: {"a": sqrt(alpha_bar_t), "b": sqrt(1 - alpha_bar_t)}}} of every
    schedule, t = 0..T, float32 in base64; computed once per dataset."""
    def compute() -> dict:
        return {"T": model_T(dataset),
                "tables": {name: {"a": float32_b64(s.sqrt_alpha_bar.numpy()),
                                  "b": float32_b64(s.sqrt_one_minus_alpha_bar.numpy())}
                           for name, s in schedules(dataset).items()}}
    return STORE.cached(("vdm", dataset, "schedule-tables"), compute)


def scrub_png(dataset: str, index, image, schedule: str = "cosine", seed: int = 0,
              t: int = 0) -> str:
    """x_t at step t as a PNG file, for slides: the pixels the page paints at that t."""
    picture = scrub(prepare_scrub(dataset, index, image, schedule, seed), t)[0]
    return png_file(picture, name=f"x_t-{schedule}")


def scrub_frames(state: Scrub, n: int = 40) -> tuple[list[int], np.ndarray]:
    """The scrub at n evenly spaced t from 0 to T (distinct: n <= T + 1), mixing the scrub's
    x_0 and eps as `scrub` does (no model call). Returns (ts, uint8 x_t images (n, 28, 28))."""
    s = schedule_of(state.dataset, state.schedule)
    n = check_int("frames", n, SCRUB_GIF_FRAMES[0], min(SCRUB_GIF_FRAMES[1], s.T + 1))
    ts = np.linspace(0, s.T, n).round().astype(int)                        # (n,) distinct
    return ts.tolist(), to_uint8(torch.from_numpy(mix(state, ts)).clamp(-1, 1)[:, None])


def scrub_gif(dataset: str, index, image, schedule: str = "cosine", seed: int = 0,
              frames: int = 40) -> str:
    """A GIF of the forward process for slides: image A dissolving, x_t at `frames` evenly
    spaced t from 0 to T with the eps drawn from `seed` (the scrub's own x_t), the first and
    last frames held. Returns the GIF's path (exactly `frames` frames, the first at t = 0)."""
    state = prepare_scrub(dataset, index, image, schedule, seed)
    ts, images = scrub_frames(state, frames)
    durations = [GIF_HOLD_MS] + [GIF_MS // 2] * (len(ts) - 2) + [GIF_HOLD_MS]   # ends held
    return gif_file([[x] for x in images], [[f"t = {t}"] for t in ts], PIXEL, durations,
                    f"vdm-forward-{schedule}")


def forward(dataset: str, index, image, schedule: str = "cosine", seed: int = 0, t: int = 250):
    """q(x_t | x_0) for one image at step t with the noise eps drawn from `seed`. Returns (x_t
    image, pixel histogram against N(0, 1), numbers: alpha_bar_t, SNR, log-SNR, ...)."""
    return scrub(prepare_scrub(dataset, index, image, schedule, seed), t)


def midpoint_t(dataset: str) -> int:
    """The step where the VDM's own schedule reaches SNR = 1 (alpha_bar_t = 1/2): x_t half signal,
    half noise (T / 2 when the model is missing)."""
    try:
        return int(STORE.model(dataset, "vdm").schedule.log_snr[1:].abs().argmin()) + 1
    except Exception:
        return model_T(dataset) // 2


def curves(dataset: str, t: int = 250):
    """alpha_bar_t, SNR(t) and log-SNR(t) of the learned, linear and cosine schedules, cursor at t."""
    figure = STORE.cached(("vdm", dataset, "curves"), lambda: schedule_figure(schedules(dataset)))
    return schedule_cursor(figure, check_int("t", t, 0, model_T(dataset)))


# ---------------------------------------------------------------- noise and denoise

@torch.no_grad()
def noise_and_denoise(dataset: str, index, image, t: int = 500, steps: int = 50,
                      sampler: str = "ddim", seed: int = 0, progress=gr.Progress()):
    """Noise the image to x_t ~ q(x_t | x_0) with DENOISE_SEEDS noises, then run the reverse
    process from t back to 0: what survives. Returns (grid: x_0 | x_t | x0_hat per row, numbers)."""
    model = STORE.model(dataset, "vdm")
    t = check_int("t", t, 1, model.T)
    steps = min(check_int("steps", steps, 1, model.T), t)
    seed = check_seed(seed)
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; valid: {', '.join(SAMPLERS)}")
    pixels = resolve_input(dataset, index, image)
    x0 = to_float(pixels[None]).repeat(DENOISE_SEEDS, 1, 1, 1)             # (S, 1, 28, 28)
    eps = torch.randn(x0.shape, generator=step_generator(seed, -1))
    x_t = q_sample(model.schedule, x0, t, eps)
    s = make_sampler(sampler, model.schedule, timestep_spacing=DEFAULT_TIMESTEP_SPACING)
    s.set_timesteps(steps, t_start=t)
    if progress is not None:
        progress(0.1, desc=f"{steps} {sampler.upper()} steps from t = {t}")
    out = sample(model.predict_noise, s, x_T=x_t, generator=step_generator(seed, 0)).clamp(-1, 1)
    rows = [[pixels, xt, xh] for xt, xh in zip(to_uint8(x_t.clamp(-1, 1)), to_uint8(out))]
    mse = ((out - x0) ** 2).flatten(1).mean(1)                              # (S,)
    psnr = [float(10 * math.log10(4.0 / max(m, 1e-12))) for m in mse.tolist()]
    abar = float(model.schedule.alpha_bar[t])
    grid = compose(rows, col_labels=["x_0", f"x_t, t = {t}, abar = {abar:.2f}", "denoised"],
                   row_labels=[f"eps {i + 1}" for i in range(DENOISE_SEEDS)])
    return grid, {"t": t, "steps": steps, "sampler": sampler, "timesteps": s.timesteps.tolist(),
                  "psnr_db": psnr,
                  "alpha_bar": abar}


# ---------------------------------------------------------------- interpolation

@torch.no_grad()
def interpolate(dataset: str, index_a, image_a, index_b, image_b, frames: int = 8,
                steps: int = 50, progress=gr.Progress()):
    """Slerp between the DDIM-inverted x_T of A and B, each frame decoded by deterministic
    DDIM (eta = 0), beside the pixel cross-fade. The slerp runs between the standard normal z
    behind each x_T (x_T = m + S^(1/2) z under the prior; z = x_T for N(0, I)). Returns (slerp
    strip, cross-fade strip, numbers with the round-trip error of decode(invert(x)) and ||z||, a
    GIF of the decoded slerp A -> B -> A: 2F - 2 frames for F frames)."""
    model = STORE.model(dataset, "vdm")
    frames = check_int("frames", frames, 2, FRAMES_MAX)
    steps = check_int("steps", steps, *INVERT_STEPS)
    pa = resolve_input(dataset, index_a, image_a, ("index_a", "image_a"))
    pb = resolve_input(dataset, index_b, image_b, ("index_b", "image_b"))
    x0 = to_float(np.stack([pa, pb]))                                        # (2, 1, 28, 28)
    if progress is not None:
        progress(0.05, desc=f"DDIM inversion of A and B ({steps} steps)")
    x_T = ddim_invert(model.predict_noise, model.schedule, x0, steps)        # (2, 1, 28, 28)
    z = model.prior_to_standard(x_T)                                         # (2, 1, 28, 28)
    path = latent_path(z[0].flatten(), z[1].flatten(), frames, "slerp")      # (F, 784)
    path = model.prior_from_standard(path.reshape(-1, 1, 28, 28))            # (F, 1, 28, 28)
    if progress is not None:
        progress(0.5, desc=f"decoding {frames} frames ({steps} DDIM steps)")
    decoded = ddim_decode(model.predict_noise, model.schedule, path, steps)
    w = torch.linspace(0, 1, frames)
    labels = [f"{v:.2f}" for v in w.tolist()]
    fade = (1 - w[:, None, None, None]) * x0[:1] + w[:, None, None, None] * x0[1:]
    mse = ((decoded[[0, -1]] - x0) ** 2).flatten(1).mean(1).clamp_min(1e-12)
    roundtrip = (10 * torch.log10(4.0 / mse)).tolist()                      # PSNR, range 2
    images = to_uint8(decoded.clamp(-1, 1))                                  # (F, 28, 28)
    gif = interpolation_gif([images], ["slerp x_T"], labels, "vdm-interpolation", PIXEL)
    return (strip(list(images), labels, row_label="slerp x_T"),
            strip(list(to_uint8(fade)), labels, row_label="pixels"),
            {"frames": frames, "steps": steps, "roundtrip_psnr_db": roundtrip,
             "z_norms": z.flatten(1).norm(dim=1).tolist(), "sqrt_D": 28.0}, gif)


# ---------------------------------------------------------------- the loss over time

@torch.no_grad()
def loss_over_time(dataset: str, index, image, points: int = 100, seed: int = 0,
                   progress=gr.Progress()):
    """The image's -ELBO term by term: the denoising terms L_t at `points` evenly spaced t in
    2..T (all T - 1 of them at points = T - 1; otherwise their sum is estimated as (T - 1) times
    their mean), the reconstruction and the prior term. Returns (L_t plot, terms table, numbers)."""
    model = STORE.model(dataset, "vdm")
    points = check_int("points", points, LOSS_POINTS[0], model.T - 1)
    seed = check_seed(seed)
    x0 = to_float(resolve_input(dataset, index, image)[None])                # (1, 1, 28, 28)
    ts = torch.linspace(2, model.T, points, dtype=torch.float64).round().long().unique()
    gen = step_generator(seed, 0)
    values = []
    for start in range(0, len(ts), LOSS_CHUNK):
        if progress is not None:
            progress((start, len(ts)), desc="L_t, one network call per t", unit="t")
        chunk = ts[start:start + LOSS_CHUNK]
        values.append(model.diffusion_terms(x0.expand(len(chunk), -1, -1, -1), chunk, gen))
    l_t = torch.cat(values)                                                  # (P,) nats
    recon, prior = model.endpoint_terms(x0, gen)
    nats = {"reconstruction": float(recon), "prior": float(prior),
            "diffusion": denoising_sum(l_t, model.T)}
    nats["total"] = sum(nats.values())
    table = terms_table({"reconstruction  -log p(x_0 | x_1)": nats["reconstruction"],
                         "prior matching  KL(q(x_T | x_0) || p(x_T))": nats["prior"],
                         f"denoising  sum of L_t, t = 2..{model.T}": nats["diffusion"],
                         "total (-ELBO)": nats["total"]})
    dims = 28 * 28 * math.log(2)
    info = {"points": len(ts), "exact": len(ts) == model.T - 1, "nats": nats,
            "bits_per_dim": {k: v / dims for k, v in nats.items()},
            "t": ts.tolist(), "L_t": l_t.tolist()}
    return loss_plot(ts.numpy(), l_t.numpy(), nats), table, info


# ---------------------------------------------------------------- the gallery dissolving

def _gallery_pixels(dataset: str) -> tuple[np.ndarray, np.ndarray, Projection, np.ndarray]:
    """(x_0 (N, 784), one fixed eps (N, 784), the PCA map fitted at t = 0, axis limits), cached."""
    def compute():
        x0 = to_float(STORE.gallery(dataset).images).flatten(1).numpy().astype(np.float64)
        rng = np.random.default_rng(0)
        eps = rng.standard_normal(x0.shape)
        pca = project(x0, "pca", seed=0)
        both = np.concatenate([pca.points, pca.transform(eps)])
        lim = np.abs(both).max(axis=0) * 1.05
        return x0, eps, pca, lim
    return STORE.cached(("vdm", dataset, "gallery-pixels"), compute)


def dissolve(dataset: str, t: int = 0, schedule: str = "learned"):
    """The gallery's x_t (one fixed eps per image) on the PCA map of its x_0, axes fixed: as t
    grows every class shrinks by sqrt(alpha_bar_t) into the same N(0, (1 - alpha_bar_t) I) cloud.
    Returns (the map, a CSV of its points: index, label, class_name, x, y)."""
    s = schedule_of(dataset, schedule)
    t = check_int("t", t, 0, s.T)
    x0, eps, pca, lim = _gallery_pixels(dataset)
    x_t = q_sample(s, x0, t, eps)                                            # (N, 784)
    gallery = STORE.gallery(dataset)
    points = pca.transform(x_t)                                              # (N, 2)
    figure = xt_map(points, gallery.labels, gallery.class_names, lim,
                    f"gallery x_t at t = {t} ({schedule}), on the PCA axes of x_0; "
                    f"alpha_bar_t = {float(s.alpha_bar[t]):.3f}")
    return figure, coordinates_csv(points, gallery.labels, gallery.class_names,
                                   name=f"vdm-gallery-xt-{schedule}-t{t}")


def warm_up(dataset: str) -> None:
    """Schedules (and the scrub view's tables of them) and the gallery's PCA axes ahead of the
    first visitor."""
    try:
        schedule_tables(dataset)
        _gallery_pixels(dataset)
    except Exception:
        pass
