"""The 2-D playground's model and live training: its ELBO terms against their closed forms, the
training loop's resumability, its configs' checks, and the saved model's round trip."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from explorer import diffusion
from explorer.checkpoint import CheckpointError
from explorer.config import ELBOTerms
from explorer.toy.data import make_set
from explorer.toy.exact import ExactDenoiser, diffusion_loss
from explorer.toy.export import load_toy, save_toy, train_record
from explorer.toy.model import ToyConfig, ToyVDM
from explorer.toy.train import Trainer, TrainConfig, sample, train_progressive

SMALL = ToyConfig(width=32, depth=2, frequencies=8, T=100)


def test_gaussian_reconstruction_nll_is_the_normal_log_prob():
    g = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(5, 2, generator=g), torch.randn(5, 2, generator=g)
    gamma_1 = torch.linspace(-9.0, 2.0, 5)
    alpha, sigma = torch.sigmoid(-gamma_1).sqrt(), torch.sigmoid(gamma_1).sqrt()
    normal = torch.distributions.Normal((x1 / alpha[:, None]), (sigma / alpha)[:, None])
    expected = -normal.log_prob(x0).sum(dim=1)
    torch.testing.assert_close(diffusion.gaussian_reconstruction_nll(x0, x1, gamma_1), expected,
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("schedule", ["linear", "cosine", "learned"])
def test_elbo_terms_sum_to_the_training_loss(schedule):
    model = ToyVDM(ToyConfig(schedule=schedule, T=50, width=16, depth=1, frequencies=4))
    x0 = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
    loss, terms = model.training_loss(x0, torch.Generator().manual_seed(2))
    assert isinstance(terms, ELBOTerms) and list(terms) == ["reconstruction", "prior", "diffusion"]
    assert all(v.shape == (64,) for v in terms.values())
    total = terms["reconstruction"] + terms["prior"] + terms["diffusion"]
    torch.testing.assert_close(terms.total, total)
    torch.testing.assert_close(loss, total.mean())
    loss.backward()                                      # the learned schedule gets gradients too
    if schedule == "learned":
        assert model.gamma.gamma_min.grad is not None and model.gamma.gamma_max.grad is not None


def test_endpoint_terms_match_their_closed_forms():
    """-log p(x_0 | x_1) averages to (d/2)(log 2 pi + gamma_1 + 1) over eps (x_1 / alpha_1 - x_0 is
    N(0, exp(gamma_1)) per coordinate); the prior KL is the Gaussian KL of q(x_T | x_0)."""
    model = ToyVDM(ToyConfig(T=100))
    s = model.schedule
    x0 = torch.full((20000, 2), 0.5)
    terms = model.elbo(x0, torch.Generator().manual_seed(3))
    gamma_1, gamma_T = float(s.gamma[1]), float(s.gamma[-1])
    assert float(terms["reconstruction"].mean()) == pytest.approx(
        (math.log(2 * math.pi) + gamma_1 + 1.0), abs=0.03)
    ab, v = float(s.alpha_bar[-1]), float(s.one_minus_alpha_bar[-1])
    kl = 2 * 0.5 * (ab * 0.25 + v - 1.0 - math.log(v))
    assert float(terms["prior"][0]) == pytest.approx(kl, rel=1e-4, abs=1e-7)


@pytest.mark.parametrize("schedule, t_draw", [("linear", "log_snr"), ("linear", "uniform"),
                                              ("learned", "uniform")])
def test_diffusion_term_at_the_start_is_what_eps_hat_zero_implies(schedule, t_draw):
    """A fresh model predicts eps_hat = 0, so L_t = 1/2 expm1(gamma_t - gamma_{t-1}) E||eps||^2 =
    expm1(gamma_t - gamma_{t-1}) for d = 2, and the diffusion term's mean is their sum over
    t = 2..T (the stratified estimate, t uniform or even in log-SNR, averaged over many points:
    within 4 standard errors).
    Not cosine: its clipped last step (beta_T = 0.999) holds 98 % of the sum, too noisy a check."""
    model = ToyVDM(ToyConfig(schedule=schedule, T=200, t_draw=t_draw))
    x0 = torch.randn(40000, 2, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert torch.count_nonzero(model.predict_noise(x0[:10], torch.full((10,), 7))) == 0
        diff = model.elbo(x0, torch.Generator().manual_seed(5))["diffusion"].double()
    gamma = model.schedule.gamma
    expected = float(torch.expm1(gamma[2:] - gamma[1:-1]).sum())
    error = float(diff.std()) / math.sqrt(len(diff))
    assert abs(float(diff.mean()) - expected) < 4 * error
    assert error < 0.05 * expected                        # and the check has teeth


@pytest.mark.slow
def test_training_moves_the_diffusion_term_towards_the_exact_floor():
    points = make_set("gaussians", 512, 0)
    model = ToyVDM(SMALL)
    schedule = model.schedule

    def term(eps_model):
        with torch.no_grad():
            return diffusion_loss(eps_model, points, schedule, 8192, torch.Generator().manual_seed(6))

    floor = term(ExactDenoiser(points, schedule))
    before = term(model.predict_noise)
    trainer = Trainer(model, points, TrainConfig(lr=3e-3, batch=128, steps=300))
    steps = list(trainer.progressive())
    after = term(trainer.averaged.predict_noise)
    assert [s.iteration for s in steps] == list(range(1, 301))
    assert floor < after < before
    assert after - floor < 0.5 * (before - floor)
    assert steps[-1].seconds > steps[0].seconds > 0


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("schedule", ["linear", "learned"])
def test_resumed_training_equals_one_long_run(schedule):
    points = make_set("moons", 200, 0)
    config = TrainConfig(lr=1e-2, batch=64, steps=30, seed=7)
    cfg = ToyConfig(schedule=schedule, width=16, depth=2, frequencies=4, T=50)
    torch.manual_seed(0)
    long = ToyVDM(cfg)
    torch.manual_seed(0)
    parts = ToyVDM(cfg)
    whole = Trainer(long, points, config)
    one = [s.loss for s in whole.progressive()]
    trainer = Trainer(parts, points, config)
    run = trainer.progressive()
    split = [next(run).loss for _ in range(12)]
    run.close()                                           # the UI stops it ...
    split += [s.loss for s in trainer.progressive(5)]     # ... and goes on, 5 at a time
    split += [s.loss for s in trainer.progressive()]      # ... then to the end
    assert trainer.iteration == 30
    assert split == one
    for k, v in _weights(long).items():
        torch.testing.assert_close(_weights(parts)[k], v, rtol=0, atol=1e-6)
    for k, v in _weights(whole.averaged).items():                # and the weights' average
        torch.testing.assert_close(_weights(trainer.averaged)[k], v, rtol=0, atol=1e-6)
    assert any(not torch.equal(_weights(parts)[k], v) for k, v in _weights(trainer.averaged).items())


def test_train_step_reports_every_term():
    model = ToyVDM(ToyConfig(width=8, depth=1, frequencies=2, T=20))
    step = next(train_progressive(model, make_set("rings", 50, 0), TrainConfig(batch=16, steps=3)))
    assert step.iteration == 1 and set(step.terms) == {"reconstruction", "prior", "diffusion", "total"}
    assert step.loss == pytest.approx(step.terms["total"], rel=1e-6)


@pytest.mark.parametrize("kwargs, message", [
    ({"lr": float("nan")}, "lr must be a finite number > 0"),
    ({"lr": float("inf")}, "lr must be a finite number > 0"),
    ({"lr": 0.0}, "lr must be a finite number > 0"),
    ({"batch": 0}, "batch must be in 1..8192"),
    ({"batch": 10000}, "batch must be in 1..8192"),
    ({"steps": 0}, "steps must be in 1..100000"),
    ({"ema": 1.0}, r"ema must be in \[0, 1\)"),
])
def test_bad_train_configs_raise_clearly(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    ({"schedule": "quadratic"}, "unknown schedule 'quadratic'; valid: 'linear', 'cosine', 'learned'"),
    ({"T": 1}, "T must be at least 2"),
    ({"t_draw": "even"}, "unknown t_draw 'even'; valid: 'uniform', 'log_snr'"),
    ({"width": 0}, "at least 1"),
    ({"gamma_min": 3.0, "gamma_max": 1.0}, "gamma_min must be below gamma_max"),
])
def test_bad_model_configs_raise_clearly(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ToyConfig(**kwargs)


def test_bad_points_raise_clearly():
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        Trainer(ToyVDM(SMALL), np.zeros((5, 3)), TrainConfig())


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_sample_gives_points_in_the_plane(sampler):
    model = ToyVDM(SMALL).eval()
    a = sample(model, 7, sampler, 10, torch.Generator().manual_seed(8))
    b = sample(model, 7, sampler, 10, torch.Generator().manual_seed(8))
    assert a.shape == (7, 2) and torch.isfinite(a).all()
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("schedule", ["cosine", "learned"])
def test_save_load_round_trip(tmp_path, schedule):
    points = make_set("spiral", 100, 0)
    model = ToyVDM(ToyConfig(schedule=schedule, width=16, depth=2, frequencies=4, T=50))
    config = TrainConfig(batch=32, steps=5)
    for _ in train_progressive(model, points, config):
        pass
    stem = save_toy(model, points, tmp_path, config, iteration=5)
    assert stem.with_suffix(".safetensors").is_file() and stem.with_suffix(".json").is_file()
    loaded, loaded_points = load_toy(tmp_path)
    assert loaded.config == model.config and not loaded.training
    np.testing.assert_array_equal(loaded_points, points)
    assert train_record(tmp_path) == (config, 5)
    x, t = torch.randn(9, 2), torch.arange(1, 10)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded.predict_noise(x, t), model.predict_noise(x, t), rtol=0, atol=0)
    torch.testing.assert_close(loaded.schedule.gamma, model.schedule.gamma, rtol=0, atol=0)


def test_load_refuses_a_missing_or_damaged_folder(tmp_path):
    with pytest.raises(CheckpointError, match="missing .*toy.json"):
        load_toy(tmp_path)
    stem = save_toy(ToyVDM(SMALL), make_set("moons", 10, 0), tmp_path)
    data = bytearray(stem.with_suffix(".safetensors").read_bytes())
    data[-1] ^= 0xFF
    stem.with_suffix(".safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="damaged"):
        load_toy(tmp_path)
