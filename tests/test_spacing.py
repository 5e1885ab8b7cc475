"""Which timesteps a sampler visits (`spaced_timesteps`, `Sampler.set_timesteps`): even in t, or
Karras et al.'s spacing, sigma_i^(1/rho) even with sigma_t = exp(-lambda_t / 2). Checked against
the closed forms on a schedule whose log-SNR is linear in t (as the VDM's learned one nearly is)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from explorer.samplers import (SAMPLERS, TIMESTEP_SPACINGS, DDIMSampler, make_sampler,
                               sampler_from_config, spaced_timesteps)
from explorer.sampling import sample_progressive
from explorer.schedules import DiscreteSchedule, make_schedule
from explorer.trajectory import Trajectory
from test_samplers import F64, GaussianEps, _exact_flow, _gen, _one_thread  # noqa: F401 (autouse)

T = 1000


@pytest.fixture(scope="module")
def vdm_like():
    """log SNR falls linearly from 12.3 at t = 1 to -5.2 at t = T, as the shipped VDMs' does."""
    return DiscreteSchedule(-torch.linspace(12.3, -5.2, T, dtype=F64), name="linear-logsnr")


def _sigma(schedule, t):
    return math.exp(-0.5 * float(schedule.log_snr[t]))


@pytest.mark.parametrize("spacing", TIMESTEP_SPACINGS)
@pytest.mark.parametrize("n, t_start", [(1, None), (2, None), (50, None), (999, None),
                                        (1000, None), (7, 300), (300, 300), (1, 1), (2, 2)])
def test_spaced_timesteps_are_the_ones_a_sampler_sets(vdm_like, spacing, n, t_start):
    """The grid the UI reads without building a sampler (`spaced_timesteps`) is the one
    set_timesteps sets: n distinct steps, descending, from t_start (default T) to 1, and a
    Trajectory's grid is its sampler's."""
    sampler = make_sampler("ddpm", vdm_like, timestep_spacing=spacing)
    sampler.set_timesteps(n, t_start)
    grid = spaced_timesteps(vdm_like, n, t_start, spacing)
    assert list(grid) == sampler.timesteps.tolist()
    assert grid[0] == (t_start or T) and len(set(grid)) == n
    assert (grid[-1] == 1) == (n >= 2 or t_start == 1)
    assert all(a > b for a, b in zip(grid, grid[1:]))
    run = Trajectory.start("ddim", n, seed=0, t_start=t_start, timestep_spacing=spacing)
    assert run.timesteps(vdm_like) == grid == tuple(run.make_sampler(vdm_like).timesteps.tolist())


@pytest.mark.parametrize("rho", [1.0, 2.0, 7.0])
def test_karras_steps_are_even_in_sigma_to_the_one_over_rho(vdm_like, rho):
    """Between its ends, each step is the integer t nearest the target sigma_i^(1/rho) =
    sigma_T^(1/rho) + i / (n - 1) (sigma_1^(1/rho) - sigma_T^(1/rho)): the target lies between
    the sigmas of the neighbours t - 1 and t + 1."""
    n = 20
    grid = spaced_timesteps(vdm_like, n, spacing="karras", rho=rho)
    lo, hi = _sigma(vdm_like, 1) ** (1 / rho), _sigma(vdm_like, T) ** (1 / rho)
    for i, t in enumerate(grid[1:-1], start=1):
        target = (hi + i / (n - 1) * (lo - hi)) ** rho
        assert _sigma(vdm_like, t - 1) <= target <= _sigma(vdm_like, t + 1), (i, t, target)


def test_a_large_rho_is_even_in_log_snr_and_a_small_one_crowds_the_noisy_end(vdm_like):
    """rho -> infinity makes log sigma, so lambda, even: with lambda linear in t that is even in
    t. A smaller rho moves every inner step towards T (more steps where x_t is mostly noise)."""
    even = spaced_timesteps(vdm_like, 50)
    assert np.abs(np.subtract(spaced_timesteps(vdm_like, 50, spacing="karras", rho=1e6),
                              even)).max() <= 1
    grids = [np.array(spaced_timesteps(vdm_like, 50, spacing="karras", rho=rho))
             for rho in (7.0, 3.0, 2.0, 1.0)]
    for wide, crowded in zip(grids, grids[1:]):
        assert np.all(crowded[1:-1] >= wide[1:-1]) and np.any(crowded > wide)
    assert np.sum(grids[2] > T // 2) > 25 == np.sum(np.array(even) > T // 2)


def test_karras_ddim_still_solves_the_probability_flow():
    """Any partition of [0, T] serves the ODE solver: with Karras steps DDIM (eta = 0) on the
    Gaussian data's exact denoiser converges to the exact flow, its error halving as the steps
    double (first order)."""
    schedule = make_schedule("linear", T)
    x_T = torch.randn(64, 1, 2, 2, dtype=F64, generator=_gen(3))
    sampler = DDIMSampler(schedule, eta=0.0, clip_sample=False, timestep_spacing="karras")
    errors = []
    for steps in (100, 200, 400):
        sampler.set_timesteps(steps)
        errors.append(max(float((s.x_prev - _exact_flow(schedule, x_T, s.t_prev)).abs().max())
                          for s in sample_progressive(GaussianEps(schedule), sampler, x_T=x_T)))
    assert all(0.4 * coarse < fine < 0.6 * coarse for coarse, fine in zip(errors, errors[1:])), errors


@pytest.mark.parametrize("name", SAMPLERS)
def test_the_spacing_is_part_of_a_samplers_config(vdm_like, name):
    sampler = make_sampler(name, vdm_like, timestep_spacing="karras", rho=3.0)
    rebuilt = sampler_from_config(json.loads(json.dumps(sampler.config)), vdm_like)
    assert rebuilt.config == sampler.config
    assert (rebuilt.timestep_spacing, rebuilt.rho) == ("karras", 3.0)
    rebuilt.set_timesteps(10)
    sampler.set_timesteps(10)
    assert torch.equal(rebuilt.timesteps, sampler.timesteps)
    assert make_sampler(name, vdm_like).timestep_spacing == "linspace"   # a bare sampler's
    with pytest.raises(ValueError, match="linspace"):
        make_sampler(name, vdm_like, timestep_spacing="leading")
    with pytest.raises(ValueError, match="rho"):
        make_sampler(name, vdm_like, timestep_spacing="karras", rho=0.0)
    with pytest.raises(ValueError, match="karras"):
        Trajectory.start(name, 10, timestep_spacing="even")
