"""The higher-order solvers of the probability-flow ODE (explorer/samplers/dpmpp.py, heun.py):
checked against a peer library, diffusers' DPMSolverMultistepScheduler and HeunDiscreteScheduler,
step by step, and against the exact flow of Gaussian data, where the order of the method shows
in how the error falls.

Conventions between the two (named, since they decide the comparison):
- a timestep t here is index t - 1 there: our tables run over t = 0..T with abar_0 = 1 (the
  data), theirs over 0..T-1; the last step here goes to t = 0, where sigma = 0, which is theirs
  to `final_sigmas_type="zero"` (and both take that step at first order, x_0 = x0_hat);
- diffusers builds alpha_bar from `trained_betas` as a float32 running product, which loses
  1 - alpha_bar at small t; it is handed our float64 table (its `alphas_cumprod`) instead;
- its step computes in float32 (it casts the sample; its sigma table is set to ours in float64
  here), so a step agrees to float32 rounding; both are fed the same x_t at every step, so that error does not compound;
- Heun there runs in x~ = x_t / sqrt(abar_t) (Karras et al.'s variable, "sigma" their
  sqrt((1 - abar) / abar)); its samples are ours divided by sqrt(abar) at the same timestep.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from diffusers import DPMSolverMultistepScheduler, HeunDiscreteScheduler

from explorer.samplers import (DDIMSampler, DPMSolverPP2MSampler, DPMSolverPP2MSDESampler,
                               HeunSampler, make_sampler, sampler_from_config)
from explorer.sampling import sample_progressive
from explorer.schedules import DiscreteSchedule, make_schedule

F64 = torch.float64
T = 1000
M = torch.tensor([[0.3, -0.5], [0.0, 0.6]], dtype=F64).reshape(1, 1, 2, 2)   # data mean m
V = torch.tensor([[0.04, 0.1], [0.25, 1.0]], dtype=F64).reshape(1, 1, 2, 2)  # data variance v


def schedules() -> dict[str, DiscreteSchedule]:
    """linear, cosine, and a learned-like one (a monotone gamma of another shape)."""
    t = torch.linspace(0, 1, T + 1, dtype=F64)[1:]
    learned = DiscreteSchedule(-9.0 + 18.0 * t + 2.0 * torch.sin(3.0 * t), name="learned-like")
    return {"linear": make_schedule("linear", T), "cosine": make_schedule("cosine", T),
            "learned": learned}


def peer(schedule: DiscreteSchedule, timesteps: list[int],
         algorithm: str = "dpmsolver++") -> DPMSolverMultistepScheduler:
    """diffusers' DPM-Solver++(2M) (ODE, or "sde-dpmsolver++") on our alpha_bar table, at our
    timesteps (their index t - 1)."""
    alpha_bar = schedule.alpha_bar[1:].numpy()
    betas = 1.0 - alpha_bar / np.concatenate([[1.0], alpha_bar[:-1]])
    theirs = DPMSolverMultistepScheduler(num_train_timesteps=T, trained_betas=betas,
                                         algorithm_type=algorithm, solver_order=2,
                                         final_sigmas_type="zero", lower_order_final=True)
    theirs.alphas_cumprod = torch.from_numpy(alpha_bar)                 # float64, ours
    theirs.set_timesteps(timesteps=[t - 1 for t in timesteps])
    ab = schedule.alpha_bar[timesteps]                 # and its sigma table, float64 as well
    theirs.sigmas = torch.cat([((1 - ab) / ab).sqrt(), torch.zeros(1, dtype=F64)])
    return theirs


@pytest.mark.parametrize("name", ["linear", "cosine", "learned"])
@pytest.mark.parametrize("steps, spacing", [(10, "linspace"), (20, "karras"), (7, "linspace"),
                                            (50, "karras")])
def test_dpmpp_2m_steps_are_diffusers_steps(name, steps, spacing):
    """The same x_t and model output at every step of a run give diffusers' x_{t_prev}. The
    model output is the exact eps_hat of Gaussian data, perturbed (a model of some error)."""
    schedule = schedules()[name]
    model = GaussianEps(schedule)
    ours = DPMSolverPP2MSampler(schedule, clip_sample=False, timestep_spacing=spacing)
    ours.set_timesteps(steps)
    timesteps = ours.timesteps.tolist()
    theirs = peer(schedule, timesteps)
    g = torch.Generator().manual_seed(steps)
    x = torch.randn(4, 1, 2, 2, dtype=F64, generator=g)
    for t in timesteps:
        # x0_hat off by 0.05 per pixel: eps_hat = eps - sqrt(abar_t / (1 - abar_t)) delta
        delta = 0.05 * torch.randn(x.shape, dtype=F64, generator=g)
        eps = model(x, torch.tensor([t])) - (schedule.snr[t].sqrt() * delta)
        mine = ours.step(eps, t, x).prev_sample
        peer_x = theirs.step(eps, t - 1, x).prev_sample.to(F64)
        assert (mine - peer_x).abs().max() <= 1e-6 * max(1.0, float(mine.abs().max())), t
        x = mine


@pytest.mark.parametrize("name", ["linear", "learned"])
@pytest.mark.parametrize("steps, spacing", [(10, "linspace"), (20, "karras")])
def test_sde_dpmpp_2m_steps_are_diffusers_steps(name, steps, spacing):
    """The SDE variant: the same x_t, model output and noise z at every step give diffusers'
    "sde-dpmsolver++" x_{t_prev}, noise included (none on the last step, into t = 0)."""
    schedule = schedules()[name]
    model = GaussianEps(schedule)
    ours = DPMSolverPP2MSDESampler(schedule, clip_sample=False, timestep_spacing=spacing)
    ours.set_timesteps(steps)
    timesteps = ours.timesteps.tolist()
    theirs = peer(schedule, timesteps, "sde-dpmsolver++")
    g = torch.Generator().manual_seed(steps)
    x = torch.randn(4, 1, 2, 2, dtype=F64, generator=g)
    for t in timesteps:
        delta = 0.05 * torch.randn(x.shape, dtype=F64, generator=g)
        eps = model(x, torch.tensor([t])) - (schedule.snr[t].sqrt() * delta)
        replay = torch.Generator().set_state(g.get_state())      # draws this z again
        z = torch.randn(x.shape, dtype=F64, generator=g)
        mine = ours.step(eps, t, x, generator=replay)
        peer_x = theirs.step(eps, t - 1, x, variance_noise=z).prev_sample.to(F64)
        assert (mine.prev_sample - peer_x).abs().max() <= 1e-6 * max(1.0, float(peer_x.abs().max())), t
        assert bool(mine.noise.abs().max() > 0) == (ours.target(timesteps.index(t)) > 0)
        x = mine.prev_sample


def test_dpmpp_2m_needs_its_steps_in_order():
    sampler = DPMSolverPP2MSampler(make_schedule("cosine", T), clip_sample=False)
    sampler.set_timesteps(10)
    t0, t1, t2 = sampler.timesteps.tolist()[:3]
    x = torch.zeros(1, 1, 2, 2, dtype=F64)
    sampler.step(x, t0, x)
    with pytest.raises(ValueError, match="in order"):
        sampler.step(x, t2, x)                                  # t1 was skipped
    sampler.step(x, t1, x)


def _exact_flow(schedule, x_T):
    """x_0 on the exact probability-flow path from x_T for data N(m, v) per pixel."""
    ab_T = schedule.alpha_bar[T]
    return M + V.sqrt() * (x_T - ab_T.sqrt() * M) / (ab_T * V + 1 - ab_T).sqrt()


class GaussianEps:
    """The exact eps_hat(x_t, t) = E[eps | x_t] for x_0 ~ N(m, v I) (per pixel)."""

    def __init__(self, schedule):
        self.schedule = schedule

    def __call__(self, x_t, t):
        ab = self.schedule.alpha_bar[t.cpu()].to(x_t).reshape(-1, 1, 1, 1)
        return (1 - ab).sqrt() * (x_t - ab.sqrt() * M) / (ab * V + 1 - ab)


def test_dpmpp_2m_is_second_order_and_beats_ddim_on_the_exact_flow():
    """On Gaussian data the probability-flow ODE is solved exactly (quantiles to quantiles).
    Doubling the steps (even in t) divides DPM-Solver++(2M)'s largest error at x_0 by about 4
    (second order) and DDIM's by about 2 (first order); at 160 steps DPM-Solver++(2M) is several
    times closer. (Measured here: 0.063, 0.018, 0.0047 against 0.062, 0.031, 0.016.)"""
    schedule = make_schedule("cosine", T)
    x_T = torch.randn(64, 1, 2, 2, dtype=F64, generator=torch.Generator().manual_seed(0))
    exact = _exact_flow(schedule, x_T)

    def error(sampler, steps):
        sampler.set_timesteps(steps)
        *_, last = sample_progressive(GaussianEps(schedule), sampler, x_T=x_T)
        return float((last.x_prev - exact).abs().max())
    dpm = [error(DPMSolverPP2MSampler(schedule, clip_sample=False), n) for n in (40, 80, 160)]
    ddim = [error(DDIMSampler(schedule, eta=0.0, clip_sample=False), n) for n in (40, 80, 160)]
    assert all(3.0 < a / b < 5.0 for a, b in zip(dpm, dpm[1:])), dpm
    assert all(1.7 < a / b < 2.4 for a, b in zip(ddim, ddim[1:])), ddim
    assert dpm[-1] < ddim[-1] / 3, (dpm, ddim)


def test_dpmpp_2m_rebuilds_from_its_config():
    sampler = make_sampler("dpmpp2m", make_schedule("linear", T), timestep_spacing="karras")
    again = sampler_from_config(sampler.config, sampler.schedule)
    assert isinstance(again, DPMSolverPP2MSampler) and again.config == sampler.config
    assert again.deterministic


def heun_peer(schedule: DiscreteSchedule, steps: list[int], clip: bool) -> HeunDiscreteScheduler:
    """diffusers' Heun at our distinct timesteps, its sigma table ours in float64."""
    theirs = HeunDiscreteScheduler(num_train_timesteps=T, clip_sample=clip, clip_sample_range=1.0)
    theirs.set_timesteps(timesteps=[t - 1 for t in steps])
    ab = schedule.alpha_bar[steps]
    sigmas = torch.cat([((1 - ab) / ab).sqrt(), torch.zeros(1, dtype=F64)])
    theirs.sigmas = torch.cat([sigmas[:1], sigmas[1:-1].repeat_interleave(2), sigmas[-1:]])
    return theirs


@pytest.mark.parametrize("name", ["linear", "cosine", "learned"])
@pytest.mark.parametrize("steps, spacing, clip", [(10, "linspace", False), (7, "karras", True),
                                                  (25, "karras", False)])
def test_heun_evaluations_are_diffusers_heun_steps(name, steps, spacing, clip):
    """Evaluation by evaluation (Euler, then corrector), the same x_t and model output give
    diffusers' next sample (rescaled to x_t); clipping x0_hat to [-1, 1] as its `clip_sample`."""
    schedule = schedules()[name]
    model = GaussianEps(schedule)
    ours = HeunSampler(schedule, clip_sample=clip, timestep_spacing=spacing)
    ours.set_timesteps(steps)
    evaluations = ours.timesteps.tolist()
    assert ours.nfe == len(evaluations) == 2 * steps - 1
    theirs = heun_peer(schedule, evaluations[::2], clip)
    root_ab = schedule.alpha_bar.sqrt()
    g = torch.Generator().manual_seed(steps)
    x = torch.randn(4, 1, 2, 2, dtype=F64, generator=g)
    for k, t in enumerate(evaluations):
        delta = 0.05 * torch.randn(x.shape, dtype=F64, generator=g)
        eps = model(x, torch.tensor([t])) - (schedule.snr[t].sqrt() * delta)
        mine = ours.step(eps, t, x).prev_sample
        to = ours.target(k)
        peer_x = theirs.step(eps, t - 1, x / root_ab[t]).prev_sample.to(F64) * root_ab[to]
        assert (mine - peer_x).abs().max() <= 1e-6 * max(1.0, float(mine.abs().max())), (k, t)
        x = mine


def test_heun_is_second_order_on_the_exact_flow():
    """Doubling Heun's steps divides its largest error at x_0 by about 4; with about as many
    network evaluations as DDIM (2n - 1 against 2n) it is several times closer. (Measured here:
    0.050, 0.012, 0.0025 against DDIM-160's 0.027.) On the linear schedule: Heun steps evenly in
    t but integrates in sigma = sqrt((1 - abar) / abar), which reaches ~1e4 at the cosine
    schedule's T, so its first step there is far too long (an error of 12 at 40 steps)."""
    schedule = make_schedule("linear", T)
    x_T = torch.randn(64, 1, 2, 2, dtype=F64, generator=torch.Generator().manual_seed(0))
    exact = _exact_flow(schedule, x_T)

    def error(sampler, steps):
        sampler.set_timesteps(steps)
        *_, last = sample_progressive(GaussianEps(schedule), sampler, x_T=x_T)
        return float((last.x_prev - exact).abs().max())
    heun = [error(HeunSampler(schedule, clip_sample=False), n) for n in (20, 40, 80)]
    ddim = error(DDIMSampler(schedule, eta=0.0, clip_sample=False), 160)
    assert all(3.0 < a / b < 5.0 for a, b in zip(heun, heun[1:])), heun
    assert heun[-1] < ddim / 3, (heun, ddim)


def test_heun_takes_its_evaluations_in_order_and_resumes():
    """A t evaluated twice (corrector, then the next Euler step) is taken in order; a rewound
    run resumes at any evaluation given the x0_hat of the one before, as if never stopped."""
    schedule = make_schedule("linear", T)
    model = GaussianEps(schedule)
    sampler = HeunSampler(schedule, clip_sample=False)
    sampler.set_timesteps(5)
    t0, t1 = sampler.timesteps.tolist()[:2]
    x = torch.randn(2, 1, 2, 2, dtype=F64, generator=torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match="in order"):
        sampler.step(x, t1, x)
    run = list(sample_progressive(model, sampler, x_T=x))
    assert [s.t_prev for s in run[:2]] == [t1, t1] and run[-1].t_prev == 0
    for k in (1, 2, 5):
        again = list(sample_progressive(model, sampler, x_T=run[k].x_t, start=k,
                                        x0_before=run[k - 1].pred_x0))
        assert torch.equal(again[-1].x_prev, run[-1].x_prev), k
    with pytest.raises(ValueError, match="in order"):
        list(sample_progressive(model, sampler, x_T=run[1].x_t, start=1))


def test_heun_rebuilds_from_its_config():
    sampler = make_sampler("heun", make_schedule("cosine", T), timestep_spacing="karras")
    again = sampler_from_config(sampler.config, sampler.schedule)
    assert isinstance(again, HeunSampler) and again.config == sampler.config
    assert again.deterministic
