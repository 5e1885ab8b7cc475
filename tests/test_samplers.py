"""Samplers against an analytic denoiser: if x_0 ~ N(m, v) per pixel, the exact noise predictor is
E[eps | x_t] = sqrt(1 - abar_t) (x_t - sqrt(abar_t) m) / (abar_t v + 1 - abar_t), so every sampler
can be checked in distribution. Monte Carlo checks allow 5 standard errors; discretisation checks
use the method's order (DDIM is first order: doubling the steps halves the error).
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from explorer.diffusion import q_posterior, q_sample, x0_from_eps
from explorer.samplers import (SAMPLERS, VARIANCE_TYPES, DDIMSampler, DDPMSampler, make_sampler,
                               network_evaluations, run_timesteps,
                               sampler_from_config)
from explorer.sampling import (DenoiseStep, ddim_decode, ddim_invert, ddim_invert_progressive,
                               sample, sample_progressive)
from explorer.schedules import make_schedule

F64 = torch.float64
T = 1000
N = 4000                                                   # Monte Carlo samples
M = torch.tensor([[0.3, -0.5], [0.0, 0.6]], dtype=F64).reshape(1, 1, 2, 2)   # data mean m
V = torch.tensor([[0.04, 0.1], [0.25, 1.0]], dtype=F64).reshape(1, 1, 2, 2)  # data variance v <= 1


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: intra-op threads only add contention on a shared 2-core box."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def schedule():
    return make_schedule("linear", T)


class GaussianEps:
    """The exact eps_hat(x_t, t) = E[eps | x_t] for x_0 ~ N(m, v I) (per pixel)."""

    def __init__(self, schedule, m=M, v=V):
        self.schedule, self.m, self.v = schedule, m, v

    def __call__(self, x_t, t):                                        # (B, C, H, W), (B,)
        ab = self.schedule.alpha_bar[t.cpu()].to(x_t).reshape(-1, 1, 1, 1)
        m, v = self.m.to(x_t), self.v.to(x_t)
        return (1 - ab).sqrt() * (x_t - ab.sqrt() * m) / (ab * v + 1 - ab)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _mean_var_se(x):
    """Per-pixel sample mean and variance of x (N, ...) with their standard errors."""
    mean, var = x.mean(0), x.var(0)
    return mean, var, (var / x.shape[0]).sqrt(), var * math.sqrt(2.0 / (x.shape[0] - 1))


# ---- DDPM ----

@pytest.mark.parametrize("steps", [T, 100])
def test_ddpm_samples_the_gaussian_data(schedule, steps):
    """Each step's mean is the exact E[x_{t_prev} | x_t], so the sample mean is m for either
    variance. The true reverse variance beta~_t + coef_x0^2 Var[x_0 | x_t] lies between beta~_t and
    beta_t when v <= 1 (Ho et al. 3.2), and the output variance grows with the per-step ones, so
    "fixed_small" and "fixed_large" bracket v; for v = 1 it is exactly beta_t ("fixed_large")."""
    var_of = {}
    for variance_type in VARIANCE_TYPES:
        sampler = DDPMSampler(schedule, variance_type=variance_type, clip_sample=False)
        sampler.set_timesteps(steps)
        x = sample(GaussianEps(schedule), sampler, (N, 1, 2, 2), generator=_gen(0), dtype=F64)
        mean, var, se_mean, se_var = _mean_var_se(x)
        assert torch.all((mean - M[0]).abs() < 5 * se_mean), (variance_type, mean)
        var_of[variance_type] = var, se_var
    (small, se_small), (large, se_large) = var_of["fixed_small"], var_of["fixed_large"]
    assert torch.all(small < V[0] + 5 * se_small), small
    assert torch.all(large > V[0] - 5 * se_large), large
    exact = V[0] == 1.0
    assert torch.all((large[exact] - 1.0).abs() < 5 * se_large[exact]), large


def test_ddpm_with_all_steps_is_the_schedule_posterior(schedule):
    """With n = T the respaced step is q(x_{t-1} | x_t, x0_hat) from diffusion.q_posterior."""
    sampler = DDPMSampler(schedule, clip_sample=False)
    g = _gen(1)
    for t in (T, 500, 2, 1):
        x_t = torch.randn(3, 1, 4, 4, dtype=F64, generator=g)
        eps = torch.randn(x_t.shape, dtype=F64, generator=g)
        out = sampler.step(eps, t, x_t, generator=_gen(t))
        post = q_posterior(schedule, x0_from_eps(schedule, x_t, t, eps), x_t, t)
        torch.testing.assert_close(out.mean, post.mean, rtol=1e-10, atol=1e-10)
        z = torch.randn(x_t.shape, dtype=F64, generator=_gen(t))
        torch.testing.assert_close(out.noise, post.variance.sqrt() * z, rtol=1e-10, atol=1e-12)
    assert torch.all(out.noise == 0)                                    # beta~_1 = 0: no noise


# ---- DDIM ----

@pytest.mark.parametrize("steps", [T, 100, 7])
def test_ddim_eta_one_is_ddpm(schedule, steps):
    """sigma_t(eta = 1) of Song et al. eq. 16 is beta~_t: same mean, same draws (clipping on)."""
    ddim, ddpm = DDIMSampler(schedule, eta=1.0), DDPMSampler(schedule)
    ddim.set_timesteps(steps)
    ddpm.set_timesteps(steps)
    g = _gen(2)
    for t in ddim.timesteps.tolist():
        x_t = 1.5 * torch.randn(2, 1, 3, 3, dtype=F64, generator=g)
        eps = torch.randn(x_t.shape, dtype=F64, generator=g)          # any eps_hat: x0_hat clips
        a, b = ddim.step(eps, t, x_t, _gen(t)), ddpm.step(eps, t, x_t, _gen(t))
        torch.testing.assert_close(a.mean, b.mean, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(a.prev_sample, b.prev_sample, rtol=1e-10, atol=1e-12)
        assert torch.equal(a.pred_original_sample, b.pred_original_sample)


def _exact_flow(schedule, x_T, t):
    """The probability-flow ODE of Gaussian data maps quantiles to quantiles: x_t on the exact path
    from x_T is sqrt(abar_t) m + sqrt(abar_t v + 1 - abar_t) zeta, zeta = x_T standardised."""
    ab_T, ab = schedule.alpha_bar[T], schedule.alpha_bar[t]
    zeta = (x_T - ab_T.sqrt() * M) / (ab_T * V + 1 - ab_T).sqrt()
    return ab.sqrt() * M + (ab * V + 1 - ab).sqrt() * zeta


def test_ddim_eta_zero_follows_the_probability_flow(schedule):
    """DDIM (eta = 0) is a first-order solver of the probability-flow ODE (Song et al. eq. 14):
    along the whole path it stays near the exact flow, and doubling the steps halves the error.
    With all T steps it stays within 1% of the data range [-1, 1]."""
    x_T = torch.randn(64, 1, 2, 2, dtype=F64, generator=_gen(3))
    sampler = DDIMSampler(schedule, eta=0.0, clip_sample=False)
    errors = []
    for steps in (125, 250, 500, T):
        sampler.set_timesteps(steps)
        errors.append(max(float((step.x_prev - _exact_flow(schedule, x_T, step.t_prev)).abs().max())
                          for step in sample_progressive(GaussianEps(schedule), sampler, x_T=x_T)))
    assert all(fine < 0.6 * coarse for coarse, fine in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.02, errors


def test_ddim_50_steps_transports_noise_to_the_data(schedule):
    """For Gaussian data one DDIM step scales y = x - sqrt(abar) m by
    f = (sqrt(abar_prev abar) v + sqrt((1 - abar_prev)(1 - abar))) / (abar v + 1 - abar), so
    x_0 = m + F (x_T - sqrt(abar_T) m), F = prod f: exact per sample, and in distribution
    N(m (1 - F sqrt(abar_T)), F^2), which is N(m, v) up to the discretisation bias."""
    sampler = DDIMSampler(schedule, eta=0.0, clip_sample=False)
    sampler.set_timesteps(50)
    ab = schedule.alpha_bar
    F = torch.ones_like(V)
    for t in sampler.timesteps.tolist():
        a, p = ab[t], ab[sampler.previous_timestep(t)]
        F = F * ((p * a).sqrt() * V + ((1 - p) * (1 - a)).sqrt()) / (a * V + 1 - a)
    x_T = torch.randn(N, 1, 2, 2, dtype=F64, generator=_gen(4))
    x0 = sample(GaussianEps(schedule), sampler, x_T=x_T)
    torch.testing.assert_close(x0, M + F * (x_T - ab[T].sqrt() * M), rtol=1e-9, atol=1e-10)
    mean, var, se_mean, se_var = _mean_var_se(x0)
    assert torch.all((mean - M[0]).abs() < 5 * se_mean + (F * ab[T].sqrt() * M).abs()[0])
    assert torch.all((var - V[0]).abs() < 5 * se_var + (F ** 2 - V).abs()[0]), (var, F ** 2)


def test_ddim_inversion_then_decoding_recovers_x0(schedule):
    """x_0 -> x_T -> x_0 by DDIM (eta = 0) both ways: first-order error, within 2% of the data
    range with all T steps."""
    model = GaussianEps(schedule)
    x0 = M + V.sqrt() * torch.randn(64, 1, 2, 2, dtype=F64, generator=_gen(5))
    errors = [float((ddim_decode(model, schedule, ddim_invert(model, schedule, x0, n), n) - x0)
                    .abs().max()) for n in (100, 200, T)]
    assert errors[1] < 0.6 * errors[0] and errors[2] < 0.04, errors
    steps = list(ddim_invert_progressive(model, schedule, x0, 10))
    assert [s.index for s in steps] == list(range(10))
    assert steps[0].t == 0 and steps[-1].t_next == T
    assert all(a.t_next == b.t and torch.equal(a.x_next, b.x_t) for a, b in zip(steps, steps[1:]))


# ---- the contract every sampler follows ----

EXTRA_KWARGS = {"ddim": ({"eta": 0.0}, {"eta": 0.5})}
CASES = [pytest.param(name, kwargs, id=f"{name}-{kwargs}" if kwargs else name)
         for name in SAMPLERS for kwargs in EXTRA_KWARGS.get(name, ({},))]
SHAPE = (3, 1, 4, 4)


@pytest.mark.parametrize("name, kwargs", CASES)
def test_sampler_contract(schedule, name, kwargs):
    model = GaussianEps(schedule, M.float().mean(), V.float().mean())   # float32 run
    sampler = make_sampler(name, schedule, **kwargs)

    # timesteps: n evenly spaced, descending, from T, one a network evaluation (Heun's
    # corrector shares the t it lands on with the next Euler step); bad counts raise
    for bad in (0, T + 1, 2.5):
        with pytest.raises(ValueError):
            sampler.set_timesteps(bad)
    for steps in (1, 10, T):
        sampler.set_timesteps(steps)
        ts = sampler.timesteps
        nfe = network_evaluations(name, steps)
        assert ts.dtype == torch.long and len(ts) == sampler.nfe == nfe and ts[0] == T
        assert ts.unique().numel() == steps and (nfe == steps or nfe == 2 * steps - 1)
        assert torch.all(torch.diff(ts) <= 0) and sampler.previous_timestep(ts[-1]) == 0
        assert run_timesteps(name, schedule, steps) == tuple(ts.tolist())
        run = list(sample_progressive(model, sampler, SHAPE, generator=_gen(6)))
        assert len(run) == nfe and all(isinstance(s, DenoiseStep) for s in run)
        assert [s.t for s in run] == ts.tolist() and run[-1].t_prev == 0
        assert all(a.t_prev == b.t and torch.equal(a.x_prev, b.x_t) for a, b in zip(run, run[1:]))
        for s in run:
            for tensor in (s.x_t, s.pred_noise, s.pred_x0, s.posterior_mean, s.noise, s.x_prev):
                assert tensor.shape == SHAPE and tensor.dtype == torch.float32
            assert s.pred_x0.abs().max() <= 1.0                         # clip_sample defaults on
            torch.testing.assert_close(s.x_prev, s.posterior_mean + s.noise)
            torch.testing.assert_close(s.x_t, q_sample(schedule, s.pred_x0, s.t, s.pred_noise),
                                       rtol=1e-4, atol=1e-4)            # eps_hat matches x0_hat
        assert torch.all(run[-1].noise == 0)                            # nothing added into x_0
        with pytest.raises(ValueError):
            sampler.step(run[0].pred_noise, T - 1 if steps < T else T + 1, run[0].x_t)

    # seeding: one generator fixes the whole run (x_T and every step's noise)
    sampler.set_timesteps(10)

    def draw(seed, x_T=None):
        return sample(model, sampler, SHAPE, x_T=x_T, generator=_gen(seed))
    assert torch.equal(draw(7), draw(7)) and not torch.equal(draw(7), draw(8))
    x_T = torch.randn(SHAPE, generator=_gen(9))
    assert torch.equal(draw(7, x_T), draw(8, x_T)) == sampler.deterministic
    last = list(sample_progressive(model, sampler, SHAPE, generator=_gen(7)))[-1]
    assert torch.equal(draw(7), last.x_prev)

    # add_noise is q(x_t | x_0); config round-trips through JSON
    x0, noise = torch.rand(SHAPE) * 2 - 1, torch.randn(SHAPE)
    ab = float(schedule.alpha_bar[300])
    torch.testing.assert_close(sampler.add_noise(x0, noise, 300),
                               ab ** 0.5 * x0 + (1 - ab) ** 0.5 * noise)
    rebuilt = sampler_from_config(json.loads(json.dumps(sampler.config)), schedule)
    assert type(rebuilt) is type(sampler) and rebuilt.config == sampler.config
    rebuilt.set_timesteps(10)
    assert torch.equal(sample(model, rebuilt, SHAPE, generator=_gen(7)), draw(7))


def test_unknown_sampler_name_lists_the_valid_ones(schedule):
    with pytest.raises(ValueError, match="'ddpm', 'ddim'"):
        make_sampler("euler", schedule)
    with pytest.raises(ValueError, match="fixed_small"):
        DDPMSampler(schedule, variance_type="learned")
