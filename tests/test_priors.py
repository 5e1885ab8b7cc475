"""The VDM's prior p(x_T): the fitted Gaussian against closed forms and Monte Carlo estimates."""

import math
from pathlib import Path

import pytest
import torch

from explorer.checkpoint import load_checkpoint
from explorer.data import load_gallery
from explorer.models.vdm import VDM, VDMConfig
from explorer.priors import GaussianPrior, StandardPrior

D, RANK = 784, 8
SHIPPED = Path(__file__).resolve().parent.parent / "pretrained"
GAMMA_T = torch.tensor(1.5)          # SNR_T = e^-1.5: a signal that shows through the noise


def ppca_images(n: int, seed: int = 0):
    """n images from a known probabilistic-PCA model: mu + U diag(sqrt(d)) w + s eps, where the
    columns of U are orthonormal; returns (images (n, 1, 28, 28), mu, U, d, s^2)."""
    g = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(D, RANK, generator=g, dtype=torch.float64))
    mu = 0.3 * torch.randn(D, generator=g, dtype=torch.float64)
    d = torch.linspace(4.0, 0.5, RANK, dtype=torch.float64)
    s2 = 0.01
    w = torch.randn(n, RANK, generator=g, dtype=torch.float64)
    noise = torch.randn(n, D, generator=g, dtype=torch.float64)
    x = mu + (w * d.sqrt()) @ basis.T + math.sqrt(s2) * noise
    return x.reshape(n, 1, 28, 28), mu, basis, d, s2


@pytest.fixture(scope="module")
def fitted():
    images, *truth = ppca_images(20000)
    return GaussianPrior(RANK).double().fit(images), images, truth


def log_density(prior: GaussianPrior, x_T: torch.Tensor, gamma_T) -> torch.Tensor:
    """log p(x_T), changing variables to z = S^(-1/2) (x_T - m): log N(z; 0, I) - log det S / 2."""
    alpha2, sigma2 = torch.sigmoid(-gamma_T), torch.sigmoid(gamma_T)
    c = sigma2 + alpha2 * prior.floor
    k = prior.basis.shape[1]
    logdet = (D - k) * torch.log(c) + torch.log(c + alpha2 * prior.excess).sum()
    z = prior.to_standard(x_T, gamma_T).reshape(len(x_T), -1)
    return -0.5 * z.pow(2).sum(1) - 0.5 * logdet - 0.5 * D * math.log(2 * math.pi)


def test_fit_recovers_a_known_ppca_model(fitted):
    prior, _, (mu, basis, d, s2) = fitted
    assert torch.allclose(prior.mean, mu, atol=0.05)
    assert float(prior.floor) == pytest.approx(s2, rel=0.05)
    assert torch.allclose(prior.excess.flip(0), d - s2, rtol=0.1)
    # the fitted directions span the true ones: projecting U onto them keeps its norm
    kept = (prior.basis.T @ basis).pow(2).sum(0)
    assert torch.all(kept > 0.98)


def test_unfitted_prior_is_the_standard_normal(images):
    unfitted, standard = GaussianPrior(RANK), StandardPrior()
    z = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert torch.equal(unfitted.from_standard(z, GAMMA_T), z)
    assert torch.allclose(unfitted.kl(images.double(), GAMMA_T.double()),
                          standard.kl(images.double(), GAMMA_T.double()), rtol=1e-9)


def test_kl_matches_a_monte_carlo_estimate(fitted):
    """KL(q(x_T | x_0) || p(x_T)) = E_q[log q(x_T | x_0) - log p(x_T)], from 40k draws of x_T."""
    prior, images, _ = fitted
    x0, g = images[:1], GAMMA_T.double()
    alpha, sigma = torch.sigmoid(-g).sqrt(), torch.sigmoid(g).sqrt()
    eps = torch.randn(40000, 1, 28, 28, generator=torch.Generator().manual_seed(1),
                      dtype=torch.float64)
    x_T = alpha * x0 + sigma * eps
    log_q = (-0.5 * eps.pow(2).flatten(1).sum(1) - D * torch.log(sigma)
             - 0.5 * D * math.log(2 * math.pi))
    draws = log_q - log_density(prior, x_T, g)
    mean, se = float(draws.mean()), float(draws.std() / math.sqrt(len(draws)))
    assert float(prior.kl(x0, g)) == pytest.approx(mean, abs=4 * se)


def test_draws_have_the_marginal_moments_and_invert(fitted):
    """x_T = from_standard(z) has mean alpha_T mu and covariance sigma^2 I + alpha^2 Sigma (here
    along the fitted directions and off them), and to_standard undoes it."""
    prior, _, _ = fitted
    g = GAMMA_T.double()
    alpha2, sigma2 = torch.sigmoid(-g), torch.sigmoid(g)
    z = torch.randn(20000, 1, 28, 28, generator=torch.Generator().manual_seed(2),
                    dtype=torch.float64)
    x = prior.from_standard(z, g).reshape(len(z), -1)
    assert torch.allclose(x.mean(0), alpha2.sqrt() * prior.mean, atol=4 / math.sqrt(len(z)))
    centred = x - alpha2.sqrt() * prior.mean
    along = (centred @ prior.basis).var(0)                               # (k,)
    expected = sigma2 + alpha2 * (prior.floor + prior.excess)
    assert torch.allclose(along, expected, rtol=0.05)
    off = centred - (centred @ prior.basis) @ prior.basis.T
    assert float(off.pow(2).sum(1).mean() / (D - RANK)) == pytest.approx(
        float(sigma2 + alpha2 * prior.floor), rel=0.02)
    assert torch.allclose(prior.to_standard(prior.from_standard(z[:5], g), g), z[:5], atol=1e-10)


def test_the_fitted_prior_matches_q_x_T_better_than_the_standard_normal(fitted):
    """The average prior term over the data is KL(q(x_T) || p(x_T)) plus a constant (the mutual
    information of x_0 and x_T), so the moment-matched Gaussian lowers it."""
    prior, images, _ = fitted
    g = GAMMA_T.double()
    assert float(prior.kl(images[:2000], g).mean()) < 0.5 * float(
        StandardPrior().kl(images[:2000], g).mean())


def test_kl_is_differentiable_in_gamma(fitted):
    """A learned schedule trains gamma_T through the prior term: the gradient is the slope."""
    prior, images, _ = fitted
    g = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    prior.kl(images[:3], g).sum().backward()
    h = 1e-5
    kl_at = lambda gamma: prior.kl(images[:3], gamma).sum()
    slope = (kl_at(g.detach() + h) - kl_at(g.detach() - h)) / (2 * h)
    assert float(g.grad) == pytest.approx(float(slope), rel=1e-5)


def test_vdm_uses_its_prior_in_the_elbo_and_in_sampling(images):
    tiny = dict(T=20, channels=(8, 16), attention=False)
    torch.manual_seed(0)
    standard = VDM(VDMConfig(**tiny)).eval()
    fitted = VDM(VDMConfig(prior="fitted", prior_rank=4, **tiny)).eval()
    fitted.load_state_dict(standard.state_dict(), strict=False)
    # unfitted, the fitted kind samples exactly as N(0, I) does from the same seed
    same = [m.sample(2, torch.Generator().manual_seed(5), "ddim", 5) for m in (standard, fitted)]
    assert torch.allclose(*same, atol=1e-6)
    fitted.fit_prior(images)
    with torch.no_grad():
        gamma_T = fitted.gamma_at(torch.tensor([fitted.T]))
        terms = fitted.elbo(images, torch.Generator().manual_seed(0))
        assert torch.allclose(terms["prior"], fitted.prior.kl(images, gamma_T))
        assert float(terms["prior"].mean()) < float(standard.elbo(images)["prior"].mean())
    z = torch.randn(3, 1, 28, 28, generator=torch.Generator().manual_seed(5))
    x_T = fitted.prior_from_standard(z)
    assert torch.allclose(fitted.prior_to_standard(x_T), z, atol=1e-4)
    assert not torch.allclose(x_T, z)


@pytest.mark.parametrize("dataset", ["fashion-mnist", "mnist"])
def test_a_shipped_vdm_has_a_prior_closer_to_q_x_T_than_the_standard_normal(dataset):
    model, _ = load_checkpoint(SHIPPED / dataset / "vdm")
    assert model.config.prior == "fitted"
    x = load_gallery(dataset, SHIPPED / dataset / "gallery.npz").tensor()   # held-out images
    with torch.no_grad():
        gamma_T = model.gamma_T()
        fitted = float(model.prior.kl(x, gamma_T).mean())
        standard = float(StandardPrior().kl(x, gamma_T).mean())
    assert fitted < 0.5 * standard
