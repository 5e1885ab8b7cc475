"""The server-side compute of each interaction, timed in-process on the explorer package alone
(no gradio, no figures, no PNG: the HTTP rows add those).

    ctx = Context.load("fashion-mnist")           # models with fallbacks, gallery, fixed inputs
    result = MEASUREMENTS["scrub"].run(ctx, n=2)  # one Result row
    results = run_all(ctx, quick=True)

Each measurement is a `Measurement` in MEASUREMENTS (its key is what `--profile` and `--only`
take); t-SNE's cached row reads the fitted map that the cold row leaves in `ctx.cache`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from bench.stats import Result, percentile, time_calls
from explorer.checkpoint import CheckpointError, load_checkpoint
from explorer.data import DATASETS, ImageSet, load_gallery, to_float, to_uint8
from explorer.diffusion import q_sample
from explorer.latent import interpolate, project
from explorer.paths import checkpoint_stem
from explorer.samplers import SAMPLERS, make_sampler
from explorer.sampling import sample, step_generator
from explorer.trajectory import Trajectory

SECTION = "compute"
ENCODE_BATCH = 250                  # as the app encodes its gallery
PERPLEXITY = 30.0                   # the app's default t-SNE perplexity


# ---------------------------------------------------------------- what the measurements run on

@dataclass
class Context:
    """Models (with the dataset they came from), the gallery and fixed inputs A, B."""
    dataset: str
    gallery: ImageSet
    models: dict[str, torch.nn.Module]
    sources: dict[str, str]                       # model name -> dataset it was loaded from
    notes: list[str] = field(default_factory=list)
    cache: dict = field(default_factory=dict)     # results shared between rows (latents, maps)

    @classmethod
    def load(cls, dataset: str, names: tuple[str, ...] = ("vdm", "vae")) -> "Context":
        """The dataset's gallery and models; a model missing there is taken from another
        dataset (the rows say so), one missing everywhere is left out (its rows are skipped)."""
        gallery = load_gallery(dataset)
        models, sources, notes = {}, {}, []
        for name in names:
            for source in [dataset, *(d for d in DATASETS if d != dataset)]:
                try:
                    model, _ = load_checkpoint(checkpoint_stem(source, name))
                except CheckpointError:
                    continue
                models[name], sources[name] = model.requires_grad_(False), source
                if source != dataset:
                    notes.append(f"no {name} for {dataset} in pretrained/: the {name} rows use "
                                 f"the {source} {name} (same architecture family, 28x28 input)")
                break
            else:
                notes.append(f"no {name} checkpoint in pretrained/: its rows are skipped")
        return cls(dataset, gallery, models, sources, notes)

    def pair(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Images A (gallery 0) and B (the first of another class), each (1, 1, 28, 28)."""
        labels = self.gallery.labels
        others = np.flatnonzero(labels != labels[0])
        b = int(others[0]) if len(others) else min(1, len(labels) - 1)
        return to_float(self.gallery.images[[0]]), to_float(self.gallery.images[[b]])

    def model_note(self, name: str) -> str:
        source = self.sources.get(name)
        if source in (None, self.dataset):
            return ""
        return f"{source} {name} (none for {self.dataset})"


@dataclass(frozen=True)
class Measurement:
    """One row: `calls(ctx, n)` returns the seconds of n calls (and a note); `unit` is how the
    row shows them; n_full / n_quick are the default counts."""
    key: str
    label: str
    needs: tuple[str, ...]
    calls: Callable[["Context", int], tuple[list[float], str]]
    n_full: int
    n_quick: int
    unit: str = "ms"
    target_s: float | None = None             # upper bound in seconds

    def run(self, ctx: Context, n: int | None = None, quick: bool = False) -> Result:
        key = f"{SECTION}.{self.key}"
        scale = 1e3 if self.unit == "ms" else 1.0
        target = None if self.target_s is None else self.target_s * scale
        missing = [m for m in self.needs if m not in ctx.models]
        if missing:
            return Result.skipped(key, SECTION, self.label, self.unit,
                                  f"no {', '.join(missing)} checkpoint", target)
        n = n if n is not None else (self.n_quick if quick else self.n_full)
        seconds, note = self.calls(ctx, n)
        notes = [s for s in (", ".join(ctx.model_note(m) for m in self.needs if ctx.model_note(m)),
                             note) if s]
        return Result.from_seconds(key, SECTION, self.label, seconds, self.unit, target,
                                   "; ".join(notes))


# ---------------------------------------------------------------- the diffusion rows

def _scrub(ctx: Context, n: int):
    """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps at a new t each call, to uint8."""
    vdm = ctx.models["vdm"]
    s, (x0, _) = vdm.schedule, ctx.pair()
    eps = torch.randn(x0.shape, generator=step_generator(0, -1))
    ts = np.random.default_rng(0).permutation(np.linspace(0, s.T, max(n, 2)).round().astype(int))
    seconds = time_calls(lambda i: to_uint8(q_sample(s, x0, int(ts[i]), eps).clamp(-1, 1)), n, 3)
    return seconds, "q_sample + clamp + to_uint8, one 28x28 image, t differs each call"


def _reverse_step(ctx: Context, n: int):
    """Trajectory.advance on a DDIM-1000 run (the app's Step button)."""
    vdm = ctx.models["vdm"]
    run = Trajectory.start("ddim", 1000, eta=0.0, seed=0)
    seconds = time_calls(lambda i: run.advance(vdm.predict_noise, vdm.schedule), min(n, 998), 2)
    return seconds, "Trajectory.advance, DDIM with 1000 steps (network call + step + bookkeeping)"


def _forward_pass(ctx: Context, n: int):
    vdm = ctx.models["vdm"]
    x = torch.randn(1, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        seconds = time_calls(lambda i: vdm.predict_noise(x, torch.full((1,), 500 + i % 400)), n, 3)
    return seconds, "bare eps_theta(x_t, t) for one image: the floor under every sampler step"


def _sampler_run(name: str, steps: int, batch: int, grid: bool = False):
    def calls(ctx: Context, n: int):
        vdm = ctx.models["vdm"]
        sampler = make_sampler(name, vdm.schedule, **({"eta": 0.0} if name == "ddim" else {}))
        sampler.set_timesteps(steps)

        def once(i: int):
            x = sample(vdm.predict_noise, sampler, shape=(batch, 1, 28, 28),
                       generator=torch.Generator().manual_seed(1000 + i))
            images = to_uint8(x.clamp(-1, 1))                                    # (B, 28, 28)
            if grid:
                side = int(round(batch ** 0.5))
                images.reshape(side, side, 28, 28).transpose(0, 2, 1, 3).reshape(side * 28, -1)
        warmup = 1 if steps <= 50 else 0                      # DDPM-1000 warms up on its own
        note = (f"explorer.sampling.sample, {name.upper()}-{steps}, batch {batch}"
                f"{', tiled into a 4x4 grid' if grid else ''}")
        return time_calls(once, n, warmup), note
    return calls


# ---------------------------------------------------------------- the VAE and latent-map rows

def _vae_path(method: str):
    def calls(ctx: Context, n: int):
        vae = ctx.models["vae"]
        a, b = ctx.pair()
        x = torch.cat([a, b])                                                    # (2, 1, 28, 28)

        @torch.no_grad()
        def once(i: int):
            mu = vae.encode(x)[0]                                                # (2, D)
            z = interpolate(mu[0], mu[1], 10, method)                            # (10, D)
            to_uint8(vae.decode_mean(z))
        return time_calls(once, n, 2), f"encode A and B, 10-frame {method} of mu, decode 10 frames"
    return calls


def gallery_latents(ctx: Context) -> np.ndarray:
    """mu(x) of every gallery image, (N, D), batches of ENCODE_BATCH (computed once per ctx)."""
    if "latents" not in ctx.cache:
        _encode_gallery(ctx, 1)
    return ctx.cache["latents"]


def _encode_gallery(ctx: Context, n: int):
    vae, images = ctx.models["vae"], ctx.gallery.images

    @torch.no_grad()
    def once(i: int):
        ctx.cache["latents"] = np.concatenate([
            vae.encode(to_float(images[s:s + ENCODE_BATCH]))[0].numpy()
            for s in range(0, len(images), ENCODE_BATCH)])
    return time_calls(once, n, 1), (f"VAE encoder over the {ctx.dataset} gallery's "
                                    f"{len(images)} images, batches of {ENCODE_BATCH}")


def _pca(ctx: Context, n: int):
    latents = gallery_latents(ctx)
    return time_calls(lambda i: project(latents, "pca"), n, 1), \
        f"explorer.latent.project(pca) of {latents.shape[0]} x {latents.shape[1]} latents"


def _tsne_cold(ctx: Context, n: int):
    latents = gallery_latents(ctx)
    start = time.perf_counter()
    import openTSNE  # noqa: F401  (its first import is slow: timed apart)
    imported = time.perf_counter() - start

    def once(i: int):
        ctx.cache["tsne"] = project(latents, "tsne", perplexity=PERPLEXITY, seed=0)
    return time_calls(once, n, 0), (
        f"openTSNE fit of {latents.shape[0]} x {latents.shape[1]} latents, perplexity "
        f"{PERPLEXITY:g}, n_jobs=1 (as the app)" + (
            f"; not counted: importing openTSNE, {imported:.1f} s here, which the app's first "
            "t-SNE pays too" if imported > 0.05 else ""))


def _fitted_tsne(ctx: Context):
    if "tsne" not in ctx.cache:
        _tsne_cold(ctx, 1)
    return ctx.cache["tsne"]


def _tsne_cached(ctx: Context, n: int):
    key = ("vae", ctx.dataset, "map", "tsne", PERPLEXITY)
    cache = {key: _fitted_tsne(ctx)}
    seconds = time_calls(lambda i: np.array(cache[key].points, dtype=np.float64), n, 3)
    return seconds, ("what a repeat costs the app before its figure: the fitted Projection from "
                     "a dict cache + a copy of its (N, 2) points")


def _tsne_place(ctx: Context, n: int):
    projection, (a, b) = _fitted_tsne(ctx), ctx.pair()
    with torch.no_grad():
        marks = ctx.models["vae"].encode(torch.cat([a, b]))[0].numpy()         # (2, D)
    return time_calls(lambda i: projection.transform(marks), n, 1), \
        ("Projection.transform of A and B onto the fitted t-SNE map (openTSNE optimises the "
         "new points): the app does this on every repeat with A or B chosen")


MEASUREMENTS: dict[str, Measurement] = {m.key: m for m in [
    Measurement("scrub", "q(x_t|x_0) scrub, one t", ("vdm",), _scrub, 200, 50, "ms", 0.020),
    Measurement("reverse_step", "one reverse step", ("vdm",), _reverse_step, 100, 20, "ms", 0.025),
    Measurement("forward_pass", "one network forward pass (reference)", ("vdm",), _forward_pass,
                100, 20, "ms"),
    Measurement("ddim50", "DDIM-50, one image", ("vdm",), _sampler_run("ddim", 50, 1), 50, 3,
                "s", 1.0),
    Measurement("grid_ddim20", "4x4 grid at DDIM-20", ("vdm",),
                _sampler_run("ddim", 20, 16, grid=True), 50, 3, "s", 1.0),
    Measurement("ddpm1000", "DDPM-1000, one image", ("vdm",), _sampler_run("ddpm", 1000, 1), 5, 1,
                "s"),
    Measurement("lerp10", "10-frame lerp interpolation (VAE)", ("vae",), _vae_path("lerp"), 100, 20,
                "ms", 0.100),
    Measurement("slerp10", "10-frame slerp interpolation (VAE)", ("vae",), _vae_path("slerp"), 100,
                20, "ms", 0.100),
    Measurement("encode_gallery", "encode the gallery (VAE)", ("vae",), _encode_gallery, 20, 2,
                "ms"),
    Measurement("pca", "PCA of the gallery's latents", ("vae",), _pca, 50, 10, "ms", 0.100),
    Measurement("tsne_cold", "t-SNE of the gallery's latents, cold", ("vae",), _tsne_cold, 3, 1,
                "s", 5.0),
    Measurement("tsne_cached", "t-SNE, cached (repeat)", ("vae",), _tsne_cached, 1000, 100, "ms",
                0.050),
    Measurement("tsne_place", "t-SNE: place A and B on the fitted map (reference)", ("vae",),
                _tsne_place, 20, 3, "ms"),
]}


# ---------------------------------------------------------------- sampler overhead

# (sampler, steps) whose loop overhead is measured: the app's DDIM-50, and the solvers at about
# 20 network evaluations (Heun's 10 steps are 19)
OVERHEAD_RUNS = (("ddim", 50), ("dpmpp2m", 20), ("dpmpp2m_sde", 20), ("heun", 10))


def overhead(ctx: Context, reps: int, name: str = "ddim", steps: int = 50) -> Result:
    """Time of sample() with sampler `name` over `steps` steps on one image, over the time of
    the same bare predict_noise calls (its `nfe`, at its timesteps), interleaved `reps` times;
    the ratio of the medians. For an app sampler, the app's Trajectory.run loop in the note."""
    key = "overhead.ddim50" if (name, steps) == ("ddim", 50) else f"overhead.{name}{steps}"
    label = f"sample(), {name.upper()}-{steps}, one image"
    if "vdm" not in ctx.models:
        return Result.skipped(key, "overhead", label, "x", "no vdm checkpoint", 1.05)
    vdm = ctx.models["vdm"]
    sampler = make_sampler(name, vdm.schedule)
    sampler.set_timesteps(steps)
    ts = [torch.full((1,), int(t)) for t in sampler.timesteps]
    x = torch.randn(1, 1, 28, 28, generator=torch.Generator().manual_seed(0))

    @torch.no_grad()
    def bare(i):
        for t in ts:
            vdm.predict_noise(x, t)

    def loop(i):
        sample(vdm.predict_noise, sampler, shape=(1, 1, 28, 28),
               generator=torch.Generator().manual_seed(i))

    def trajectory(i):
        for _ in Trajectory.start(name, steps, seed=i).run(vdm.predict_noise, vdm.schedule):
            pass

    order = [("bare", bare), ("loop", loop)] + ([("trajectory", trajectory)]
                                                 if name in SAMPLERS else [])
    times: dict[str, list[float]] = {k: [] for k, _ in order}
    for _, fn in order:                                                   # warm up
        fn(0)
    for r in range(reps):
        for k, fn in (order if r % 2 == 0 else order[::-1]):          # no side always first
            times[k].append(time_calls(lambda i: fn(r), 1, 0)[0])
    med = {k: percentile(v, 50) for k, v in times.items()}
    note = (f"median {med['loop'] * 1e3:.0f} ms against {med['bare'] * 1e3:.0f} ms for "
            f"{len(ts)} bare forward passes, interleaved x{reps}")
    if "trajectory" in med:
        note += f"; the app's Trajectory.run loop: {med['trajectory'] / med['bare']:.3f}x"
    note = "; ".join(s for s in (ctx.model_note("vdm"), note) if s)
    return Result(key, "overhead", label, "x", med["loop"] / med["bare"], None, reps, 1.05, note)


def run_all(ctx: Context, quick: bool = False, only: set[str] | None = None,
            log: Callable[[str], None] = lambda s: None) -> list[Result]:
    """Every measurement (or those in `only`) and the overhead ratio, in table order."""
    results = []
    for key, m in MEASUREMENTS.items():
        if only and key not in only:
            continue
        log(f"compute: {m.label}")
        results.append(m.run(ctx, quick=quick))
    if not only or "overhead" in only:
        for name, steps in OVERHEAD_RUNS:
            log(f"compute: sampler overhead ratio, {name}-{steps}")
            results.append(overhead(ctx, 3 if quick else 15, name, steps))
    return results
