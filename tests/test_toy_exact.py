"""The exact denoiser of a finite point set (explorer.toy.exact), checked against math: Bayes'
rule by hand, Monte Carlo draws of the forward process, autograd, and a fine solve of the
probability-flow ODE."""

import math

import numpy as np
import pytest
import torch

from explorer.diffusion import denoising_kl
from explorer.samplers import DDIMSampler
from explorer.sampling import sample, sample_progressive
from explorer.schedules import linear_schedule
from explorer.toy.data import make_set
from explorer.toy.exact import (ExactDenoiser, density_grid, diffusion_loss, eps_error_by_t,
                                grid_points, log_density)

SCHEDULE = linear_schedule(1000)
SMALL = np.array([[-1.5, -0.5], [0.0, 1.2], [1.4, -0.8], [0.3, -1.6]])   # N = 4, well apart


def coefficients(t):
    return float(SCHEDULE.sqrt_alpha_bar[t]), float(SCHEDULE.sqrt_one_minus_alpha_bar[t])


def bayes_x0(points, x, alpha, sigma):
    """E[x_0 | x_t] on a finite set by Bayes' rule written out: numpy, one query at a time."""
    out = []
    for q in x:
        like = np.array([math.exp(-np.sum((q - alpha * p) ** 2) / (2 * sigma ** 2)) for p in points])
        out.append((like / like.sum()) @ points)
    return np.array(out)


def draws(points, t, n, seed):
    """n draws of x_0 ~ points, eps ~ N(0, I) and x_t = alpha x_0 + sigma eps, float64 numpy."""
    rng = np.random.default_rng(seed)
    x0 = points[rng.integers(0, len(points), n)]
    eps = rng.standard_normal((n, 2))
    alpha, sigma = coefficients(t)
    return x0, eps, alpha * x0 + sigma * eps


@pytest.mark.parametrize("t", [1, 20, 150, 600, 1000])
def test_x0_is_bayes_rule(t):
    alpha, sigma = coefficients(t)
    rng = np.random.default_rng(t)
    x = alpha * SMALL[rng.integers(0, 4, 16)] + 2 * sigma * rng.standard_normal((16, 2))
    x = np.concatenate([x, rng.uniform(-2, 2, (4, 2))])       # and some far from every point
    denoiser = ExactDenoiser(SMALL, SCHEDULE)
    got = denoiser.x0(torch.from_numpy(x), t).numpy()
    with np.errstate(under="ignore"):
        want = bayes_x0(SMALL, x, alpha, sigma) if t > 1 else None
    if want is not None:                                       # (at t = 1 plain exp underflows)
        assert np.allclose(got, want, atol=1e-9)
    post = denoiser.posterior(torch.from_numpy(x), t)
    assert post.shape == (20, 4) and torch.allclose(post.sum(1), torch.ones(20, dtype=torch.float64))
    assert np.allclose(got, post.numpy() @ SMALL, atol=1e-12)


def test_x0_is_the_mean_of_x0_among_draws_near_x_t():
    """E[x_0 | x_t] against rejection sampling: the mean x_0 of the forward draws whose x_t falls
    in a small disc around each query (tolerance: 4 standard errors plus the disc's bias)."""
    t = 300                                                    # sigma_t ~ 0.78, alpha_t ~ 0.63
    x0, _, x_t = draws(SMALL, t, 2_000_000, seed=0)
    queries = np.array([[0.0, 0.0], [-0.5, 0.4], [0.5, -1.0]])
    want = ExactDenoiser(SMALL, SCHEDULE).x0(torch.from_numpy(queries), t).numpy()
    for q, w in zip(queries, want):
        near = np.sum((x_t - q) ** 2, axis=1) < 0.08 ** 2
        assert near.sum() > 1000
        mean = x0[near].mean(axis=0)
        se = x0[near].std(axis=0) / math.sqrt(near.sum())
        assert np.all(np.abs(mean - w) < 4 * se + 0.01), (q, mean, w, se)


def test_eps_star_is_the_regression_of_eps_on_x_t():
    """eps* = E[eps | x_t]: the residual eps - eps*(x_t) is orthogonal to functions of x_t, and
    eps* has a lower mean squared error than any perturbation of it (same draws)."""
    t = 80
    _, eps, x_t = draws(SMALL, t, 200_000, seed=1)
    denoiser = ExactDenoiser(SMALL, SCHEDULE)
    eps_star = denoiser(torch.from_numpy(x_t), t).numpy()
    residual = eps - eps_star
    n = len(eps)
    for f in (x_t, np.sin(2 * x_t), np.tanh(x_t[:, ::-1]), eps_star):
        product = residual * f
        assert np.all(np.abs(product.mean(0)) < 4 * product.std(0) / math.sqrt(n))
    best = np.mean(np.sum(residual ** 2, axis=1))
    for worse in (0.9 * eps_star, 1.1 * eps_star, eps_star + 0.05, eps_star + 0.05 * np.sin(x_t),
                  denoiser(torch.from_numpy(x_t), t + 30).numpy()):
        assert best < np.mean(np.sum((eps - worse) ** 2, axis=1))


def test_eps_error_by_t_is_lowest_for_eps_star():
    points = make_set("spiral", 100, 0)
    denoiser = ExactDenoiser(points, SCHEDULE)
    ts = [1, 10, 100, 500, 1000]
    best = eps_error_by_t(denoiser, points, SCHEDULE, ts, 20_000, torch.Generator().manual_seed(0))
    worse = eps_error_by_t(lambda x, t: 0.95 * denoiser(x, t), points, SCHEDULE, ts, 20_000,
                           torch.Generator().manual_seed(0))
    assert best.shape == (5,) and best.dtype == torch.float64
    assert torch.all(best < worse) and torch.all(best >= 0)
    # at t = T, x_t is nearly independent of x_0: the best guess of eps is almost x_t, error ~0
    assert best[-1] < 0.01
    # eps_error_by_t is the mean squared residual of the same draws, by hand
    x0, eps, x_t = draws(points.astype(np.float64), 100, 20_000, seed=3)
    squared = np.sum((eps - denoiser(torch.from_numpy(x_t), 100).numpy()) ** 2, axis=1)
    se = squared.std() / math.sqrt(len(squared))    # of each of two independent estimates
    assert abs(squared.mean() - float(best[2])) < 5 * math.sqrt(2) * se


def test_memorises_at_t1_and_forgets_at_T():
    denoiser = ExactDenoiser(SMALL, SCHEDULE)
    rng = np.random.default_rng(0)
    alpha, _ = coefficients(1)
    which = rng.integers(0, 4, 50)
    x = alpha * SMALL[which] + rng.uniform(-0.3, 0.3, (50, 2))   # 30 noise stds off, still nearest
    got = denoiser.x0(torch.from_numpy(x), 1).numpy()
    assert np.allclose(got, SMALL[which], atol=1e-9)
    assert torch.allclose(denoiser.posterior(torch.from_numpy(x), 1).argmax(1),
                          torch.from_numpy(which))
    # at T, alpha_T ~ 0.006: the posterior is nearly uniform, E[x_0 | x_T] ~ the data mean
    x = rng.uniform(-2, 2, (50, 2))
    got = denoiser.x0(torch.from_numpy(x), SCHEDULE.T).numpy()
    assert np.abs(got - SMALL.mean(0)).max() < 0.05


def test_dtype_t_forms_and_bad_t():
    denoiser = ExactDenoiser(torch.from_numpy(SMALL), SCHEDULE)
    x = torch.randn(5, 2)
    t = torch.tensor([1, 10, 100, 500, 1000])
    out = denoiser(x, t)
    assert out.dtype == torch.float32 and out.shape == (5, 2)
    for k in range(5):      # a (B,) t is per example
        assert torch.allclose(out[k], denoiser(x[k:k + 1], int(t[k]))[0], atol=1e-6)
    assert denoiser(x.double(), 10).dtype == torch.float64
    assert torch.equal(denoiser(x, 10), denoiser(x, torch.tensor(10)))
    for bad in (0, 1001, torch.tensor([0, 1, 2, 3, 4]), torch.tensor([1, 2])):
        with pytest.raises(ValueError, match="t must be"):
            denoiser(x, bad)
    with pytest.raises(ValueError, match="t must be an int in 1..1000"):
        log_density(SMALL, SCHEDULE, x, 0)
    with pytest.raises(ValueError, match=r"x_t must be \(B, 2\)"):
        denoiser(torch.zeros(3, 3), 5)
    with pytest.raises(ValueError, match=r"points must be an \(N, 2\) array"):
        ExactDenoiser(np.zeros((3, 1)), SCHEDULE)


@pytest.mark.parametrize("t", [1, 30, 300, 1000])
def test_score_is_the_gradient_of_log_density(t):
    points = make_set("moons", 60, 4)
    x = (0.8 * torch.randn(32, 2, dtype=torch.float64,
                           generator=torch.Generator().manual_seed(t))).requires_grad_()
    grad, = torch.autograd.grad(log_density(points, SCHEDULE, x, t).sum(), x)
    score = ExactDenoiser(points, SCHEDULE).score(x.detach(), t)
    assert torch.allclose(score, grad, rtol=1e-9, atol=1e-9 * max(1.0, float(grad.abs().max())))


def test_density_matches_a_histogram_of_draws():
    """q(x_t) integrated over the bins of a 2-D histogram of forward draws: each bin's fraction
    within 5 binomial standard errors (plus a midpoint-rule allowance)."""
    t, n, bins, sub = 60, 400_000, 12, 8
    points = make_set("gaussians", 40, 0).astype(np.float64)
    _, _, x_t = draws(points, t, n, seed=2)
    counts, _, _ = np.histogram2d(x_t[:, 1], x_t[:, 0], bins=bins, range=[[-3, 3], [-3, 3]])
    fine = density_grid(points, SCHEDULE, t, resolution=bins * sub).astype(np.float64)
    cell = (6.0 / (bins * sub)) ** 2
    mass = fine.reshape(bins, sub, bins, sub).sum(axis=(1, 3)) * cell   # rows y, columns x
    frac = counts / n
    se = np.sqrt(mass * (1 - mass) / n)
    assert np.all(np.abs(frac - mass) < 5 * se + 0.01 * mass + 1e-6)
    assert mass.sum() > 0.99


@pytest.mark.parametrize("t", [40, 250, 1000])
def test_density_integrates_to_one(t):
    points = make_set("rings", 80, 1)
    grid = density_grid(points, SCHEDULE, t, resolution=300, box=6.0).astype(np.float64)
    assert grid.shape == (300, 300) and grid.min() >= 0
    assert abs(grid.sum() * (12.0 / 300) ** 2 - 1.0) < 2e-3


def test_grid_layout():
    """Cell centres, y outer and x inner; density_grid's row r is y = centre r."""
    g = grid_points(3)
    assert g.shape == (9, 2)
    assert torch.equal(g[:3], torch.tensor([[-2.0, -2.0], [0.0, -2.0], [2.0, -2.0]]))
    assert torch.equal(g[[0, 3, 6], 1], torch.tensor([-2.0, 0.0, 2.0]))
    point = np.array([[2.1, -2.1]])     # the centre of cell (row 4, column 25) of a 30 x 30 grid
    grid = density_grid(np.concatenate([point, point]), SCHEDULE, 5, resolution=30)
    assert np.unravel_index(grid.argmax(), grid.shape) == (4, 25)   # low y, high x
    assert np.allclose(grid.ravel(), log_density(point, SCHEDULE,
                                                 grid_points(30), 5).exp().numpy(), rtol=1e-5)


def test_posterior_in_chunks_equals_one_piece(monkeypatch):
    import explorer.toy.exact as exact
    points = make_set("spiral", 500, 0)
    x = torch.randn(300, 2, generator=torch.Generator().manual_seed(0))
    t = torch.randint(1, 1001, (300,), generator=torch.Generator().manual_seed(1))
    whole = ExactDenoiser(points, SCHEDULE)
    want = (whole(x.double(), t), whole.posterior(x, t), log_density(points, SCHEDULE, x, 7))
    monkeypatch.setattr(exact, "CHUNK", 1000)
    monkeypatch.setattr(exact, "_CACHE_CHUNK", 1000)
    small = ExactDenoiser(points, SCHEDULE)
    assert small.rows == 2
    got = (small(x.double(), t), small.posterior(x, t), log_density(points, SCHEDULE, x, 7))
    for a, b in zip(got, want):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-12)


def probability_flow_rk4(points, x_T, t_end, steps):
    """x_{t_end} from x_T by RK4 on the probability-flow ODE of the exact field, written from
    scratch in numpy: in y = x / alpha and s = sigma / alpha (DDIM's variables, Song et al. 2021
    eq. 14), dy/ds = eps*(alpha y), stepped evenly in u = log s (dy/du = s eps*)."""
    def flow(y, u):
        s = math.exp(u)
        alpha = 1 / math.sqrt(1 + s * s)
        x = alpha * y
        logits = -np.sum((x[:, None, :] - alpha * points[None]) ** 2, axis=2) / (2 * (s * alpha) ** 2)
        w = np.exp(logits - logits.max(axis=1, keepdims=True))
        x0 = (w / w.sum(axis=1, keepdims=True)) @ points
        return s * (x - alpha * x0) / (s * alpha)
    alpha_T, sigma_T = coefficients(SCHEDULE.T)
    alpha_end, sigma_end = coefficients(t_end)
    y = x_T / alpha_T
    us = np.linspace(math.log(sigma_T / alpha_T), math.log(sigma_end / alpha_end), steps + 1)
    for u, v in zip(us[:-1], us[1:]):
        h = v - u
        k1 = flow(y, u)
        k2 = flow(y + h / 2 * k1, u + h / 2)
        k3 = flow(y + h / 2 * k2, u + h / 2)
        k4 = flow(y + h * k3, v)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return alpha_end * y


def test_ddim_follows_the_probability_flow_ode():
    """DDIM eta = 0 with the exact field is Euler on the probability-flow ODE: at t = 109 (a step
    of both runs: linspace steps of 27 and 9) its distance to a fine RK4 solve shrinks ~3x with 3x
    the steps (first order); and the samples it ends on are the ODE's, data points here."""
    points = make_set("moons", 16, 3).astype(np.float64)
    x_T = torch.randn(32, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    denoiser = ExactDenoiser(points, SCHEDULE)
    ref = probability_flow_rk4(points, x_T.numpy(), 109, 400)
    assert np.abs(ref - probability_flow_rk4(points, x_T.numpy(), 109, 200)).max() < 1e-6
    errors = []
    for n in (38, 112):
        sampler = DDIMSampler(SCHEDULE, eta=0.0, clip_sample=False)
        sampler.set_timesteps(n)
        x = next(step.x_prev for step in sample_progressive(denoiser, sampler, x_T=x_T)
                 if step.t_prev == 109).numpy()
        errors.append(np.linalg.norm(x - ref, axis=1).mean())
    assert errors[1] < errors[0] / 2 and errors[1] < 0.03, errors
    # to the end, through sample(): DDIM's x_0 against the ODE solved to t = 1, then x0_hat there
    sampler = DDIMSampler(SCHEDULE, eta=0.0, clip_sample=False)
    sampler.set_timesteps(112)
    x0 = sample(denoiser, sampler, x_T=x_T.float()).double()
    x1 = torch.from_numpy(probability_flow_rk4(points, x_T.numpy(), 1, 600))
    end = denoiser.x0(x1, 1)
    assert torch.median((x0 - end).norm(dim=1)) < 1e-3
    dist = torch.cdist(end, torch.from_numpy(points)).min(dim=1).values
    assert dist.max() < 1e-3                      # the ODE ends on the data: memorisation


def test_diffusion_loss_floor():
    points = make_set("gaussians", 64, 0)
    denoiser = ExactDenoiser(points, SCHEDULE)
    floor = diffusion_loss(denoiser, points, SCHEDULE, 20_000, torch.Generator().manual_seed(0))
    worse = diffusion_loss(lambda x, t: 0.9 * denoiser(x, t), points, SCHEDULE, 20_000,
                           torch.Generator().manual_seed(0))
    assert 0 <= floor < worse


def test_diffusion_loss_is_the_weighted_sum_of_errors():
    """On a short schedule, diffusion_loss (t drawn at random) against the sum over every t of
    1/2 expm1(gamma_t - gamma_{t-1}) times eps_error_by_t (t enumerated): two estimates of one
    number, agreeing within their standard errors."""
    schedule = linear_schedule(20)
    points = make_set("moons", 30, 0)
    denoiser = ExactDenoiser(points, schedule)
    ts = list(range(2, 21))
    errors = eps_error_by_t(denoiser, points, schedule, ts, 20_000, torch.Generator().manual_seed(1))
    weights = 0.5 * torch.expm1(schedule.gamma[2:] - schedule.gamma[1:-1])
    enumerated = float((weights * errors).sum())
    drawn = diffusion_loss(denoiser, points, schedule, 100_000, torch.Generator().manual_seed(2))
    assert enumerated > 0 and abs(drawn - enumerated) < 0.05 * enumerated
    # and the per-example term is explorer.diffusion.denoising_kl's
    eps, eps_hat = torch.randn(4, 2, dtype=torch.float64), torch.zeros(4, 2, dtype=torch.float64)
    t = torch.tensor([2, 5, 9, 20])
    assert torch.allclose(denoising_kl(eps, eps_hat, schedule.gamma[t], schedule.gamma[t - 1]),
                          0.5 * torch.expm1(schedule.gamma[t] - schedule.gamma[t - 1])
                          * (eps ** 2).sum(1))
