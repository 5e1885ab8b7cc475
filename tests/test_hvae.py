"""Markovian HVAE: the ELBO terms against a direct Monte Carlo -ELBO, decode semantics, seeding,
configs, active units and a tiny overfit."""

from __future__ import annotations

import math

import pytest
import torch

import explorer.models as models_pkg
from explorer.config import config_from_dict, config_to_dict
from explorer.models.hvae import HVAE, HVAEConfig, HVAEDecoded, LayerLatent

# L = 3: spatial z_1 -> vector z_2 -> vector z_3 (every kind of map but vector -> spatial in q)
TINY = HVAEConfig(latent_shapes=((2, 7, 7), (6, 1, 1), (3, 1, 1)), channels=(8, 16, 16),
                  blocks=(0, 1, 1), hidden=32, warmup_steps=0, free_bits=0.0)
SHAPE_VARIANTS = [
    TINY,
    HVAEConfig(latent_shapes=((3, 7, 7), (2, 7, 7)), channels=(8, 16, 16), blocks=(0, 1, 1),
               hidden=32),
    HVAEConfig(latent_shapes=((5, 1, 1), (4, 1, 1)), channels=(8, 16), blocks=(0, 1), hidden=32),
    HVAEConfig(latent_shapes=((4, 1, 1), (2, 14, 14)), channels=(8, 16), blocks=(1, 1), hidden=32),
]


def smooth_images(n: int, seed: int = 0) -> torch.Tensor:
    """(n, 1, 28, 28) smooth random images (a 4x4 grid upsampled), quantized to the pixel grid."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand((n, 1, 4, 4), generator=g) * 2 - 1
    x = torch.nn.functional.interpolate(coarse, size=(28, 28), mode="bilinear")
    return torch.round((x + 1) * 127.5) / 127.5 - 1


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.fixture
def model() -> HVAE:
    torch.manual_seed(0)
    return HVAE(TINY).eval()


def test_elbo_terms_in_order_and_sum_to_total(model):
    terms = model.elbo(smooth_images(3))
    assert list(terms) == ["reconstruction", "consistency_1", "consistency_2", "prior_matching"]
    assert all(v.shape == (3,) for v in terms.values())
    torch.testing.assert_close(terms.total, sum(terms.values()))


def test_elbo_terms_match_direct_monte_carlo(model):
    """E[sum of terms] = E[log q(z_{1:L}|x) - log p(x, z_{1:L})] over z_{1:L} ~ q(.|x)."""
    x = smooth_images(1).expand(1500, 1, 28, 28)
    with torch.no_grad():
        total = model.elbo(x, gen(1)).total                                   # (N,)
        direct = -model.log_importance_weight(x, gen(2))                      # (N,)
    se = math.sqrt(float(total.var() + direct.var()) / len(x))
    assert abs(float(total.mean() - direct.mean())) < 4 * se


@pytest.mark.parametrize("cfg", SHAPE_VARIANTS, ids=lambda c: str(c.latent_shapes))
def test_shapes(cfg):
    torch.manual_seed(0)
    m = HVAE(cfg)
    x = smooth_images(2)
    latents = m.encode(x)
    assert [tuple(q.z.shape[1:]) for q in latents] == list(cfg.latent_shapes)
    assert all(isinstance(q, LayerLatent) and q.mean.shape == q.logvar.shape == q.z.shape
               for q in latents)
    assert m.latent_dims == [c * h * w for c, h, w in cfg.latent_shapes]
    out = m.decode([None] * m.num_layers, n=3)
    assert isinstance(out, HVAEDecoded) and out.x_mean.shape == (3, 1, 28, 28)
    assert [tuple(z.shape) for z in out.zs] == [(3, *s) for s in cfg.latent_shapes]
    assert m.elbo(x).total.shape == (2,)


def test_seeded_determinism(model):
    x = smooth_images(2)
    torch.testing.assert_close(model.elbo(x, gen(5)).total, model.elbo(x, gen(5)).total,
                               rtol=0, atol=0)
    s1, s2 = model.sample(4, generator=gen(5)), model.sample(4, generator=gen(5))
    assert s1.shape == (4, 1, 28, 28) and torch.equal(s1, s2)
    assert s1.min() >= -1 and s1.max() <= 1
    assert not torch.equal(s1, model.sample(4, generator=gen(6)))
    with torch.no_grad():
        d1 = model.decode([None, None, None], 0.7, gen(9), n=2)
        d2 = model.decode([None, None, None], 0.7, gen(9), n=2)
    assert all(torch.equal(a, b) for a, b in zip(d1.zs, d2.zs))
    e1, e2 = model.encode(x, gen(3)), model.encode(x, gen(3))
    assert all(torch.equal(a.z, b.z) for a, b in zip(e1, e2))


def test_encode_use_mean_follows_the_mean_chain(model):
    latents = model.encode(smooth_images(2), use_mean=True)
    assert all(torch.equal(q.z, q.mean) for q in latents)
    mean2, _ = model.q_maps[0](latents[0].mean)
    torch.testing.assert_close(latents[1].mean, mean2)


def test_decode_keeps_fixed_layers(model):
    with torch.no_grad():
        latents = model.encode(smooth_images(2), gen(0))
        z1, z3 = latents[0].z, latents[2].z
        out = model.decode([z1, None, z3], temperature=1.0, generator=gen(1))
        assert out.zs[0] is z1 and out.zs[2] is z3
        # with z_1 fixed, the image depends on z_1 alone: the mean of p(x|z_1)
        mean, _ = model.likelihood_params(z1)
        torch.testing.assert_close(out.x_mean, mean.clamp(-1, 1))
        # resampling layer 2 changes z_2 only
        other = model.decode([z1, None, z3], temperature=1.0, generator=gen(2))
        assert not torch.equal(out.zs[1], other.zs[1])


def test_decode_temperature_zero_is_the_mean(model):
    with torch.no_grad():
        a = model.decode([None, None, None], temperature=0.0, generator=gen(1), n=2)
        b = model.decode([None, None, None], temperature=0.0, generator=gen(2), n=2)
        assert all(torch.equal(u, v) for u, v in zip(a.zs, b.zs))
        assert torch.equal(a.zs[2], torch.zeros(2, 3, 1, 1))                  # mean of p(z_3)
        p_mean, _ = model.prior_params(1, a.zs[2])                            # p(z_2|z_3)
        torch.testing.assert_close(a.zs[1], p_mean)
    with pytest.raises(ValueError, match="batch size"):
        model.decode([None, None, None])
    with pytest.raises(ValueError, match="3 layers"):
        model.decode([None, None])


def test_training_loss_warmup_and_free_bits():
    torch.manual_seed(0)
    x = smooth_images(4)
    cfg = HVAEConfig(latent_shapes=((2, 7, 7), (6, 1, 1), (3, 1, 1)), channels=(8, 16, 16),
                     blocks=(0, 1, 1), hidden=32, warmup_steps=10, free_bits=100.0)
    m = HVAE(cfg)
    loss0, terms = m.training_loss(x, 0, gen(0))
    torch.testing.assert_close(loss0, terms["reconstruction"].mean())          # beta = 0
    loss10, terms = m.training_loss(x, 10, gen(0))
    # an untrained model's latent terms lie far below the floors 100 nats * dim_l
    torch.testing.assert_close(loss10, terms["reconstruction"].mean() + 100.0 * (98 + 6 + 3))
    plain = HVAE(TINY)
    loss, terms = plain.training_loss(x, 0, gen(0))
    torch.testing.assert_close(loss, terms.total.mean())


def test_config_round_trip_rebuilds_identical_model(model, tmp_path):
    cfg = config_from_dict(HVAE.config_cls, config_to_dict(model.config))
    assert cfg == model.config
    rebuilt = HVAE(cfg).eval()
    rebuilt.load_state_dict(model.state_dict())
    x = smooth_images(2)
    torch.testing.assert_close(rebuilt.elbo(x, gen(3)).total, model.elbo(x, gen(3)).total)
    torch.testing.assert_close(rebuilt.sample(2, generator=gen(4)),
                               model.sample(2, generator=gen(4)))
    if getattr(models_pkg, "MODELS", {}).get("hvae") is HVAE:
        from explorer.checkpoint import load_checkpoint, save_checkpoint
        save_checkpoint(model, tmp_path / "hvae")
        loaded, _ = load_checkpoint(tmp_path / "hvae")
        assert loaded.config == model.config
        torch.testing.assert_close(loaded.elbo(x, gen(3)).total, model.elbo(x, gen(3)).total)


def test_bad_config_raises():
    with pytest.raises(ValueError, match="at least 2"):
        HVAEConfig(latent_shapes=((4, 7, 7),))
    with pytest.raises(ValueError, match=r"\(C, 1, 1\) or \(C, 7, 7\)"):
        HVAEConfig(latent_shapes=((4, 14, 14), (8, 1, 1)))


def test_tiny_overfit_lowers_the_loss():
    torch.manual_seed(0)
    m = HVAE(TINY)
    x = smooth_images(8)
    opt = torch.optim.Adam(m.parameters(), lr=5e-3)
    losses = []
    for step in range(20):
        loss, _ = m.training_loss(x, step, gen(step))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert sum(losses[-5:]) / 5 < 0.95 * sum(losses[:5]) / 5


def test_active_units_one_int_per_layer_in_range(model):
    au = model.active_units(smooth_images(16), threshold=0.01)
    assert len(au) == model.num_layers
    assert all(isinstance(a, int) and 0 <= a <= d for a, d in zip(au, model.latent_dims))
