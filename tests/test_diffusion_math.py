"""Diffusion math against math: closed forms vs Markov chains, Bayes' rule on a grid, sampled KLs.

Monte Carlo checks allow 5 standard errors (computed from the samples or the closed form), grid
checks allow float64 rounding; no number here was copied from a run.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from explorer import diffusion

from explorer.diffusion import (denoising_kl, denoising_kl_exact, eps_from_x0, prior_kl, q_marginal,
                                q_posterior, q_sample, q_step, reconstruction_nll, x0_from_eps)
from explorer.likelihood import pixel_grid
from explorer.schedules import SCHEDULES, LearnedGamma, make_schedule

F64 = torch.float64
T = 1000


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: intra-op threads only add contention on a shared 2-core box."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _learned_gamma(seed: int = 0) -> LearnedGamma:
    """A LearnedGamma with random, visibly non-linear weights (still monotone by construction)."""
    torch.manual_seed(seed)
    gamma = LearnedGamma(gamma_min=-12.0, gamma_max=6.0, hidden=64)
    with torch.no_grad():
        gamma.l2.weight.normal_(0.0, 5.0)
        gamma.l3.weight.normal_(0.0, 1.0).mul_(64.0)
    return gamma


def _schedule(name: str, T: int = T):
    return make_schedule(name, T, gamma=_learned_gamma() if name == "learned" else None)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ---- q(x_t | x_0) ----

@pytest.mark.parametrize("name", SCHEDULES)
def test_marginal_matches_running_the_markov_chain(name):
    """q(x_t | x_0) in closed form == x_0 pushed through q(x_t | x_{t-1}) t times (MC mean, var)."""
    s = _schedule(name)
    n = 20_000
    x0 = torch.tensor([-0.8, 0.0, 0.5, 1.0], dtype=F64).reshape(1, 1, 1, 4)
    x = x0.expand(n, 1, 1, 4).clone()                                  # (N, 1, 1, 4)
    g = _gen(0)
    for t in range(1, T + 1):
        step = q_step(s, x, t)
        x = step.mean + step.variance.sqrt() * torch.randn(x.shape, generator=g, dtype=F64)
        if t in (1, 10, 100, 500, T):
            closed = q_marginal(s, x0, t)
            se_mean = (closed.variance / n).sqrt()
            se_var = closed.variance * math.sqrt(2.0 / (n - 1))
            assert torch.all((x.mean(0) - closed.mean).abs() < 5 * se_mean), t
            assert torch.all((x.var(0) - closed.variance).abs() < 5 * se_var), t


# ---- q(x_{t-1} | x_t, x_0) ----

@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("t", [2, 10, 300, T])
def test_posterior_matches_bayes_rule_on_a_grid(name, t):
    """q(x_{t-1} | x_t, x_0) propto q(x_t | x_{t-1}) q(x_{t-1} | x_0), normalised on a fine grid."""
    s = _schedule(name)
    x0 = torch.tensor(-0.4, dtype=F64).reshape(1, 1, 1, 1)
    x_t = q_sample(s, x0, t, torch.full_like(x0, 0.8))
    prior = q_marginal(s, x0, t - 1)                                   # q(x_{t-1} | x_0)
    # as a function of x_{t-1}, q(x_t | x_{t-1}) is N(x_t / sqrt(alpha_t), beta_t / alpha_t); the
    # posterior lives inside the narrower factor, so grid +-12 of its std with 200k points
    alpha, beta = float(s.alpha[t]), float(s.beta[t])
    factors = [(float(prior.mean), float(prior.variance)),
               (float(x_t) / alpha ** 0.5, beta / alpha)]
    centre, var_narrow = min(factors, key=lambda f: f[1])
    half = 12 * var_narrow ** 0.5
    grid = torch.linspace(centre - half, centre + half, 200_001, dtype=F64)   # candidate x_{t-1}
    forward = q_step(s, grid.reshape(-1, 1, 1, 1), t)                  # q(x_t | x_{t-1} = grid)
    log_w = (-(x_t - forward.mean) ** 2 / (2 * forward.variance)
             - (grid.reshape(-1, 1, 1, 1) - prior.mean) ** 2 / (2 * prior.variance)).flatten()
    w = torch.softmax(log_w, dim=0)                                    # normalised posterior
    mean = (w * grid).sum()
    var = (w * (grid - mean) ** 2).sum()
    post = q_posterior(s, x0, x_t, t)
    # spacing 1.2e-4 std of the narrower factor: the sums are exact up to float64 rounding
    assert w[0] < 1e-20 and w[-1] < 1e-20                               # the grid holds the mass
    torch.testing.assert_close(post.mean.flatten()[0], mean, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(post.variance.flatten()[0], var, rtol=1e-10, atol=0.0)


def test_posterior_at_t1_is_a_point_mass_at_x0():
    s = _schedule("linear")
    x0 = torch.rand(2, 1, 3, 3, dtype=F64, generator=_gen(1)) * 2 - 1
    post = q_posterior(s, x0, q_sample(s, x0, 1, torch.randn_like(x0)), 1)
    assert torch.all(post.variance == 0)
    torch.testing.assert_close(post.mean, x0, rtol=0, atol=1e-12)


# ---- the three ELBO terms ----

def test_prior_kl_matches_monte_carlo():
    """KL(q(x_T | x_0) || N(0, I)) = E_q[log q - log N(0, I)], estimated from 100k draws."""
    g = _gen(2)
    x0 = torch.rand(4, 1, 2, 2, dtype=F64, generator=g) * 2 - 1        # (B, 1, 2, 2)
    gamma_T = torch.tensor([-1.0, 0.5, 3.0, float(_schedule("linear").gamma[T])], dtype=F64)
    kl = prior_kl(x0, gamma_T)                                          # (B,)
    var = torch.sigmoid(gamma_T).reshape(-1, 1, 1, 1)
    mean = torch.sigmoid(-gamma_T).sqrt().reshape(-1, 1, 1, 1) * x0
    x_T = mean + var.sqrt() * torch.randn(100_000, *x0.shape, dtype=F64, generator=g)
    log_ratio = -(x_T - mean) ** 2 / (2 * var) - 0.5 * torch.log(var) + x_T ** 2 / 2
    log_ratio = log_ratio.sum((2, 3, 4))                                # (N, B)
    est, se = log_ratio.mean(0), log_ratio.std(0) / math.sqrt(log_ratio.shape[0])
    assert torch.all((est - kl).abs() < 5 * se + 1e-12), (est, kl, se)


@pytest.mark.parametrize("gamma_1", [-9.0, -5.0, 0.0])
@pytest.mark.parametrize("x1", [-1.3, -0.2, 0.51, 1.2])
def test_reconstruction_probabilities_sum_to_one(gamma_1, x1):
    """p(x_0 | x_1) over the 256 levels of one pixel sums to 1."""
    levels = pixel_grid(dtype=F64).reshape(-1, 1, 1, 1)                # (256, 1, 1, 1)
    nll = reconstruction_nll(levels, torch.full_like(levels, x1), torch.full((256,), gamma_1))
    torch.testing.assert_close(torch.exp(-nll).sum(), torch.tensor(1.0, dtype=F64),
                               rtol=0, atol=1e-12)


def test_reconstruction_nll_vanishes_when_gamma_1_is_very_negative():
    """With sigma_1 << the bin width, x_1 pins down x_0: -log p(x_0 | x_1) ~ 0."""
    g = _gen(3)
    x0 = pixel_grid(dtype=F64)[torch.randint(0, 256, (4, 1, 28, 28), generator=g)]
    gamma_1 = torch.full((4,), -20.0, dtype=F64)
    eps = torch.randn(x0.shape, dtype=F64, generator=g)
    x1 = torch.sigmoid(-gamma_1[0]).sqrt() * x0 + torch.sigmoid(gamma_1[0]).sqrt() * eps
    nll = reconstruction_nll(x0, x1, gamma_1)
    assert torch.all(nll >= 0) and torch.all(nll < 1e-9), nll


@pytest.mark.parametrize("name", SCHEDULES)
def test_denoising_kl_formulas_agree_and_vanish_at_the_truth(name):
    """1/2 expm1(gamma_t - gamma_{t-1}) ||eps - eps_hat||^2 == KL of the two Gaussian posteriors."""
    s = _schedule(name)
    g = _gen(4)
    t = torch.tensor([2, 3, 50, 400, T - 1, T])
    x0 = torch.rand(len(t), 1, 4, 4, dtype=F64, generator=g) * 2 - 1
    eps = torch.randn(x0.shape, dtype=F64, generator=g)
    eps_hat = eps + 0.3 * torch.randn(x0.shape, dtype=F64, generator=g)
    x_t = q_sample(s, x0, t, eps)
    x0_hat = x0_from_eps(s, x_t, t, eps_hat)
    fast = denoising_kl(eps, eps_hat, s.gamma[t], s.gamma[t - 1])
    exact = denoising_kl_exact(s, x0, x_t, t, x0_hat)
    assert torch.all(fast > 0)
    torch.testing.assert_close(fast, exact, rtol=1e-7, atol=0.0)
    assert torch.all(denoising_kl(eps, eps, s.gamma[t], s.gamma[t - 1]) == 0)
    torch.testing.assert_close(denoising_kl_exact(s, x0, x_t, t, x0),
                               torch.zeros(len(t), dtype=F64))


# ---- reparameterisations and tables ----

@pytest.mark.parametrize("name", SCHEDULES)
def test_x0_and_eps_reparameterisations_invert_each_other(name):
    s = _schedule(name)
    g = _gen(5)
    t = torch.tensor([1, 2, 17, 500, T])
    x0 = torch.rand(len(t), 1, 3, 3, dtype=F64, generator=g) * 2 - 1
    eps = torch.randn(x0.shape, dtype=F64, generator=g)
    x_t = q_sample(s, x0, t, eps)
    torch.testing.assert_close(x0_from_eps(s, x_t, t, eps), x0, rtol=0, atol=1e-9)
    torch.testing.assert_close(eps_from_x0(s, x_t, t, x0), eps, rtol=0, atol=1e-9)
    torch.testing.assert_close(eps_from_x0(s, x_t, t, x0_from_eps(s, x_t, t, eps)), eps)


@pytest.mark.parametrize("name", SCHEDULES)
def test_tables_are_consistent(name):
    s = _schedule(name)
    assert s.T == T and s.alpha_bar[0] == 1 and torch.all(s.alpha_bar[1:] < 1)
    torch.testing.assert_close(s.alpha_bar, torch.cumprod(s.alpha, 0), rtol=1e-10, atol=0.0)
    torch.testing.assert_close(s.alpha + s.beta, torch.ones_like(s.alpha))
    assert torch.all(torch.diff(s.snr) < 0)                             # SNR falls with t
    assert torch.all(s.posterior_variance[1:] <= s.beta[1:])           # beta~_t <= beta_t


def test_linear_schedule_is_ho_et_al():
    """Ho et al. (2020) section 4: beta_t linear from 1e-4 to 0.02 over T = 1000 steps."""
    s = make_schedule("linear", 1000)
    torch.testing.assert_close(s.beta[1:], torch.linspace(1e-4, 0.02, 1000, dtype=F64),
                               rtol=1e-8, atol=0.0)


def test_cosine_schedule_is_nichol_and_dhariwal():
    """Nichol & Dhariwal (2021) eq. 17: alpha_bar_t = f(t)/f(0), beta_t <= 0.999 (clipped)."""
    s = make_schedule("cosine", T)
    f = [math.cos((t / T + 0.008) / 1.008 * math.pi / 2) ** 2 for t in range(T + 1)]
    betas = torch.tensor([min(1 - f[t] / f[t - 1], 0.999) for t in range(1, T + 1)], dtype=F64)
    torch.testing.assert_close(s.beta[1:], betas, rtol=1e-8, atol=0.0)
    unclipped = int((betas < 0.999).sum())                              # betas clip only at the end
    assert torch.all(betas[:unclipped] < 0.999)
    expected = torch.tensor([f[t] / f[0] for t in range(unclipped + 1)], dtype=F64)
    torch.testing.assert_close(s.alpha_bar[:unclipped + 1], expected, rtol=1e-8, atol=0.0)


def test_learned_gamma_is_monotone_and_hits_its_ends():
    gamma = _learned_gamma()
    with torch.no_grad():
        u = torch.linspace(0, 1, 10_001)
        values = gamma(u)
    assert torch.all(torch.diff(values) >= 0)
    torch.testing.assert_close(values[[0, -1]], torch.tensor([-12.0, 6.0]))
    s = make_schedule("learned", T, gamma=gamma)
    assert torch.all(torch.diff(s.gamma[1:]) > 0)
    torch.testing.assert_close(s.gamma[[1, T]], torch.tensor([-12.0, 6.0], dtype=F64),
                               rtol=0, atol=1e-9)


def test_unknown_schedule_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="'linear', 'cosine', 'learned'"):
        make_schedule("quadratic")
    with pytest.raises(ValueError):
        make_schedule("learned", T)                                     # needs its gamma module


# ---- one forward mix for tensors and numpy arrays ----

def test_q_sample_on_numpy_is_the_tensor_mix_in_float32():
    """The page's scrub and the gallery's dissolve mix numpy arrays through the same
    q_sample: the same numbers as the tensor path, float32 kept float32, one x_t per step."""
    s = make_schedule("cosine", 1000)
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.rand((28, 28), generator=g) * 2 - 1, torch.randn((28, 28), generator=g)
    ts = np.array([0, 10, 500, 1000])
    mixed = diffusion.q_sample(s, x0.numpy(), ts, eps.numpy())
    assert mixed.dtype == np.float32 and mixed.shape == (4, 28, 28)
    for k, t in enumerate(ts):
        tensor = diffusion.q_sample(s, x0[None, None], int(t), eps[None, None])[0, 0]
        assert np.allclose(mixed[k], tensor.numpy(), atol=1e-6)
    assert np.array_equal(diffusion.q_sample(s, x0.numpy(), 0, eps.numpy()), x0.numpy())


def test_the_denoising_sum_is_exact_with_every_t_and_estimated_from_a_few():
    l_t = torch.arange(1.0, 1000.0)                                  # t = 2..1000
    assert diffusion.denoising_sum(l_t, 1000) == float(l_t.sum())
    few = l_t[::100]
    assert diffusion.denoising_sum(few, 1000) == pytest.approx(float(few.mean()) * 999)
