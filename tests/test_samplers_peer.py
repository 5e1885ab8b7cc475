"""DDPM and DDIM (explorer/samplers/ddpm.py, ddim.py) checked against a peer library: diffusers'
DDPMScheduler ("fixed_small") and DDIMScheduler (eta 0 and 1), step by step and over whole runs,
given the same model output and the same noise (DPM-Solver++ and Heun: tests/test_solvers.py).

Conventions between the two (named, since they decide the comparison):
- a timestep t here is index t - 1 there (our tables run over t = 0..T with abar_0 = 1, the data);
  our last step goes to t = 0, theirs to index -1, where both take abar = 1 (DDIM's
  `set_alpha_to_one`, DDPM's `one`), so x_0 = x0_hat's mean there and no noise is added (Ho et
  al. Algorithm 2, z = 0 at t = 1);
- diffusers builds alpha_bar from `trained_betas` as a float32 running product, which loses
  1 - alpha_bar at small t (2.8 % off for t <= 10); it is handed our float64 table;
- its DDIMScheduler steps to t - T // n, not to the next point of its own grid (an open diffusers
  issue), so each step is given the n for which T // n is our step's actual gap: the fraction
  T / gap (on uneven, Karras, grids no integer n gives every gap);
- our eps_hat re-derived from the clipped x0_hat (improved-diffusion's DDIM) is its
  `use_clipped_model_output=True` (Song et al. eq. 12 then uses the eps that x0_hat implies);
- both draw the noise with torch.randn from one generator in the same order (x_T, then each
  step), so a run seeded alike draws the same noise.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DDPMScheduler

from explorer.samplers import DDIMSampler, DDPMSampler
from explorer.sampling import sample_progressive
from explorer.schedules import make_schedule

F64 = torch.float64
T = 1000
M = torch.tensor([[0.3, -0.5], [0.0, 0.6]], dtype=F64).reshape(1, 1, 2, 2)   # data mean m
V = torch.tensor([[0.04, 0.1], [0.25, 1.0]], dtype=F64).reshape(1, 1, 2, 2)  # data variance v


def model_of(schedule):
    """eps_hat(x_t, t): the exact E[eps | x_t] for x_0 ~ N(m, v) per pixel, off by a fixed
    smooth error (a model that is not perfect, so x0_hat leaves [-1, 1] at times)."""
    def eps(x_t, t):
        ab = schedule.alpha_bar[t.cpu()].to(x_t).reshape(-1, 1, 1, 1)
        exact = (1 - ab).sqrt() * (x_t - ab.sqrt() * M) / (ab * V + 1 - ab)
        return exact + 0.1 * torch.sin(3.0 * x_t)
    return eps


def betas(schedule) -> np.ndarray:
    alpha_bar = schedule.alpha_bar[1:].numpy()
    return 1.0 - alpha_bar / np.concatenate([[1.0], alpha_bar[:-1]])


def ddpm_peer(schedule, timesteps, clip):
    theirs = DDPMScheduler(num_train_timesteps=T, trained_betas=betas(schedule),
                           variance_type="fixed_small", clip_sample=clip)
    theirs.alphas_cumprod = schedule.alpha_bar[1:].clone()             # float64, ours
    theirs.set_timesteps(timesteps=[t - 1 for t in timesteps])
    return theirs


def ddim_peer(schedule, clip):
    theirs = DDIMScheduler(num_train_timesteps=T, trained_betas=betas(schedule),
                           clip_sample=clip, set_alpha_to_one=True)
    theirs.alphas_cumprod = schedule.alpha_bar[1:].clone()
    return theirs


def close(a, b) -> bool:
    return float((a - b).abs().max()) <= 1e-9 * max(1.0, float(a.abs().max()))


@pytest.mark.parametrize("name", ["linear", "cosine"])
@pytest.mark.parametrize("steps, spacing, clip", [(10, "linspace", True), (50, "karras", True),
                                                  (1000, "linspace", False)])
def test_ddpm_runs_are_diffusers_runs(name, steps, spacing, clip):
    """A whole DDPM run from one x_T with one seed: every x_{t_prev} is diffusers' (fixed_small)."""
    schedule = make_schedule(name, T)
    eps = model_of(schedule)
    ours = DDPMSampler(schedule, variance_type="fixed_small", clip_sample=clip,
                       timestep_spacing=spacing)
    ours.set_timesteps(steps)
    timesteps = ours.timesteps.tolist()
    theirs = ddpm_peer(schedule, timesteps, clip)
    mine = list(sample_progressive(eps, ours, (3, 1, 2, 2), dtype=F64,
                                   generator=torch.Generator().manual_seed(steps)))
    g = torch.Generator().manual_seed(steps)
    x = torch.randn((3, 1, 2, 2), generator=g, dtype=F64)
    assert torch.equal(x, mine[0].x_t)
    for step, t in zip(mine, timesteps):
        out = theirs.step(eps(x, torch.tensor([t])), t - 1, x, generator=g)
        x = out.prev_sample
        assert close(step.pred_x0, out.pred_original_sample), t
        assert close(step.x_prev, x), t


@pytest.mark.parametrize("name", ["linear", "cosine"])
@pytest.mark.parametrize("eta", [0.0, 1.0])
@pytest.mark.parametrize("steps, spacing, clip", [(10, "linspace", True), (20, "karras", True),
                                                  (7, "linspace", False)])
def test_ddim_steps_are_diffusers_steps(name, eta, steps, spacing, clip):
    """Every step of a run, given the same x_t, model output and noise, is diffusers' DDIM step
    to the same t_prev (eta 0: deterministic; eta 1: DDPM's fixed_small variance); the whole run
    agrees too, as each step is fed the x_t the run before it reached."""
    schedule = make_schedule(name, T)
    eps = model_of(schedule)
    ours = DDIMSampler(schedule, eta=eta, clip_sample=clip, timestep_spacing=spacing)
    ours.set_timesteps(steps)
    theirs = ddim_peer(schedule, clip)
    g = torch.Generator().manual_seed(steps)
    x = torch.randn((3, 1, 2, 2), generator=g, dtype=F64)
    for t in ours.timesteps.tolist():
        theirs.num_inference_steps = Fraction(T, t - ours.previous_timestep(t))   # T // n = gap
        replay = torch.Generator().set_state(g.get_state())   # draws this z again
        z = torch.randn(x.shape, generator=g, dtype=F64)
        model_output = eps(x, torch.tensor([t]))
        peer = theirs.step(model_output, t - 1, x, eta=eta, use_clipped_model_output=True,
                           variance_noise=z)
        mine = ours.step(model_output, t, x, generator=replay)
        assert close(mine.pred_original_sample, peer.pred_original_sample), t
        assert close(mine.prev_sample, peer.prev_sample), t
        x = mine.prev_sample
