"""VAE: closed forms against Monte Carlo, the ELBO contract, seeding, configs, a tiny overfit."""

from __future__ import annotations

import math

import pytest
import torch

import explorer.models as models_pkg
from explorer.config import config_from_dict, config_to_dict
from explorer.likelihood import (discretized_logistic_log_prob, gaussian_kl, gaussian_log_prob,
                                 pixel_grid)
from explorer.models.vae import VAE, VAEConfig, kl_weight

TINY = VAEConfig(latent_dim=4, channels=(8, 16, 16), blocks=(0, 1, 1), warmup_steps=0)


def random_images(n: int, seed: int = 0) -> torch.Tensor:
    """(n, 1, 28, 28) on the pixel grid 2k/255 - 1."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 1, 28, 28), generator=g).float() * 2 / 255 - 1


def smooth_images(n: int, seed: int = 0) -> torch.Tensor:
    """(n, 1, 28, 28) smooth random images (a 4x4 grid upsampled), quantized to the pixel grid."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand((n, 1, 4, 4), generator=g) * 2 - 1
    x = torch.nn.functional.interpolate(coarse, size=(28, 28), mode="bilinear")
    return torch.round((x + 1) * 127.5) / 127.5 - 1


def assert_close_within_se(a: torch.Tensor, b: torch.Tensor, se: float, k: float = 4.0):
    assert abs(float(a) - float(b)) < k * se, f"{float(a)} vs {float(b)}, se {se}"


def test_gaussian_kl_matches_monte_carlo():
    torch.manual_seed(0)
    mu, logvar = torch.randn(5), torch.randn(5)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(20_000, 5)                 # (N, 5)
    log_ratio = (gaussian_log_prob(z, mu, logvar)
                 - gaussian_log_prob(z, torch.zeros(5), torch.zeros(5))).sum(1)  # (N,)
    se = float(log_ratio.std() / math.sqrt(len(log_ratio)))
    assert_close_within_se(log_ratio.mean(), gaussian_kl(mu, logvar).sum(), se)


def test_reparameterize_moments():
    torch.manual_seed(0)
    model = VAE(TINY)
    n = 20_000
    mu, logvar = torch.tensor([0.5, -2.0, 0.0, 3.0]), torch.tensor([0.0, -1.0, 1.5, -3.0])
    g = torch.Generator().manual_seed(1)
    z = model.reparameterize(mu.expand(n, 4), logvar.expand(n, 4), generator=g)  # (N, 4)
    var = torch.exp(logvar)
    assert torch.all((z.mean(0) - mu).abs() < 4 * torch.sqrt(var / n))
    assert torch.all((z.var(0) - var).abs() < 4 * var * math.sqrt(2 / n))


@pytest.mark.parametrize("mean,log_scale", [(0.0, -1.0), (0.3, -4.0), (-0.99, -6.0),
                                            (1.2, -2.0), (0.5, 1.0), (-1.0, -7.0)])
def test_discretized_logistic_sums_to_one(mean, log_scale):
    x = pixel_grid(dtype=torch.float64)                                      # (256,)
    logp = discretized_logistic_log_prob(x, torch.full_like(x, mean), torch.full_like(x, log_scale))
    assert torch.all(logp <= 1e-6)
    assert abs(float(logp.exp().sum()) - 1.0) < 1e-3


def test_elbo_terms_keys_shapes_and_total():
    torch.manual_seed(0)
    model = VAE(TINY)
    terms = model.elbo(random_images(3))
    assert list(terms) == ["reconstruction", "kl"]
    assert all(v.shape == (3,) for v in terms.values())
    torch.testing.assert_close(terms.total, terms["reconstruction"] + terms["kl"])


def test_elbo_matches_importance_weight_monte_carlo():
    """E[reconstruction + analytic kl] = E[log q(z|x) - log p(x, z)] over z ~ q(z|x)."""
    torch.manual_seed(0)
    model = VAE(TINY)
    x = random_images(1).expand(1500, 1, 28, 28)
    with torch.no_grad():
        total = model.elbo(x, torch.Generator().manual_seed(1)).total                # (N,)
        direct = -model.log_importance_weight(x, torch.Generator().manual_seed(2))   # (N,)
    se = math.sqrt(float(total.var() + direct.var()) / len(x))
    assert_close_within_se(total.mean(), direct.mean(), se)


def test_seeded_determinism_and_shapes():
    torch.manual_seed(0)
    model = VAE(TINY).eval()
    x = random_images(2)
    run = lambda fn: fn(torch.Generator().manual_seed(7))  # noqa: E731
    torch.testing.assert_close(run(lambda g: model.elbo(x, g).total),
                               run(lambda g: model.elbo(x, g).total), rtol=0, atol=0)
    s1 = run(lambda g: model.sample(5, generator=g))
    s2 = run(lambda g: model.sample(5, generator=g))
    assert s1.shape == (5, 1, 28, 28) and torch.equal(s1, s2)
    assert s1.min() >= -1 and s1.max() <= 1
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (2, 4)
    mean, log_scale = model.decode(mu)
    assert mean.shape == log_scale.shape == (2, 1, 28, 28)
    assert model.decode_mean(mu).shape == (2, 1, 28, 28)


def test_two_dimensional_latent_decodes_a_grid():
    model = VAE(VAEConfig(latent_dim=2, channels=(8, 16, 16), blocks=(0, 1, 1)))
    grid = torch.stack(torch.meshgrid(torch.linspace(-2, 2, 4), torch.linspace(-2, 2, 4),
                                      indexing="ij"), dim=-1).reshape(-1, 2)  # (16, 2)
    assert model.decode_mean(grid).shape == (16, 1, 28, 28)


def test_training_loss_warmup_and_free_bits():
    torch.manual_seed(0)
    x = random_images(4)
    cfg = VAEConfig(latent_dim=4, channels=(8, 16, 16), blocks=(0, 1, 1), warmup_steps=10,
                    free_bits=100.0)
    model = VAE(cfg)
    assert kl_weight(0, 10) == 0.0 and kl_weight(5, 10) == 0.5 and kl_weight(50, 10) == 1.0
    loss0, terms = model.training_loss(x, 0, torch.Generator().manual_seed(0))
    torch.testing.assert_close(loss0, terms["reconstruction"].mean())
    loss5, terms = model.training_loss(x, 5, torch.Generator().manual_seed(0))
    # the kl of an untrained model is far below the floor free_bits * latent_dim = 400 nats
    torch.testing.assert_close(loss5, terms["reconstruction"].mean() + 0.5 * 400.0)
    plain = VAE(TINY)
    loss, terms = plain.training_loss(x, 0, torch.Generator().manual_seed(0))
    torch.testing.assert_close(loss, terms.total.mean())


def test_config_round_trip_rebuilds_identical_model(tmp_path):
    torch.manual_seed(0)
    model = VAE(TINY).eval()
    cfg = config_from_dict(VAE.config_cls, config_to_dict(model.config))
    assert cfg == model.config
    rebuilt = VAE(cfg).eval()
    rebuilt.load_state_dict(model.state_dict())
    x = random_images(2)
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    torch.testing.assert_close(rebuilt.elbo(x, g()).total, model.elbo(x, g()).total)
    if getattr(models_pkg, "MODELS", {}).get("vae") is VAE:
        from explorer.checkpoint import load_checkpoint, save_checkpoint
        save_checkpoint(model, tmp_path / "vae")
        loaded, _ = load_checkpoint(tmp_path / "vae")
        assert loaded.config == model.config
        torch.testing.assert_close(loaded.elbo(x, g()).total, model.elbo(x, g()).total)


def test_bad_config_raises():
    with pytest.raises(ValueError, match="blocks"):
        VAEConfig(channels=(8, 16, 16), blocks=(1, 1))
    with pytest.raises(ValueError):
        VAEConfig(latent_dim=0)


def test_tiny_overfit_lowers_the_loss():
    torch.manual_seed(0)
    model = VAE(TINY)
    x = smooth_images(8)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for step in range(20):
        loss, _ = model.training_loss(x, step, torch.Generator().manual_seed(step))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert sum(losses[-5:]) / 5 < 0.95 * sum(losses[:5]) / 5


def test_active_units_in_range():
    torch.manual_seed(0)
    model = VAE(TINY)
    au = model.active_units(random_images(16), threshold=0.01)
    assert isinstance(au, int) and 0 <= au <= TINY.latent_dim
