"""The VDM model: its ELBO terms against the closed forms of explorer.diffusion."""

import math

import pytest
import torch

from explorer import diffusion
from explorer.models.vdm import VDM, VDMConfig

from conftest import grid_images

TINY = dict(T=20, channels=(8, 16), attention=False)


@pytest.fixture(params=["learned", "linear", "cosine"])
def model(request):
    torch.manual_seed(0)
    return VDM(VDMConfig(schedule=request.param, **TINY)).eval()


def test_terms_order_and_total(model, images):
    terms = model.elbo(images, generator=torch.Generator().manual_seed(0))
    assert list(terms) == ["reconstruction", "prior", "diffusion"]
    assert torch.allclose(terms.total, sum(terms.values()))
    assert all(v.shape == (len(images),) for v in terms.values())
    bpd = terms.bits_per_dim(28 * 28)
    assert torch.allclose(bpd.total, terms.total / (784 * math.log(2)))


def test_stochastic_diffusion_term_is_unbiased(model):
    """E_t[(T-1) L_t] over stratified t equals the exact sum over t = 2..T (Monte Carlo)."""
    x = grid_images(2)
    with torch.no_grad():
        per_t = torch.stack([model.loss_per_t(x, torch.Generator().manual_seed(s))
                             for s in range(8)]).mean(0)              # (B, T-1)
        exact = per_t.sum(1)
        draws = torch.stack([model.elbo(x, torch.Generator().manual_seed(100 + s))["diffusion"]
                             for s in range(300)])                     # (300, B)
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(len(draws))
    assert torch.all((mean - exact).abs() < 4 * se + 0.05 * exact)


def test_diffusion_term_matches_gaussian_kl(model, images):
    """(1/2) expm1(gamma_t - gamma_{t-1}) ||eps - eps_hat||^2 is the KL of the two posteriors."""
    s = model.schedule
    t = torch.full((len(images),), 7)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        eps = torch.randn(images.shape, generator=g)
        x_t = diffusion.q_sample(s, images, t, eps)
        eps_hat = model.predict_noise(x_t, t)
        x0_hat = diffusion.x0_from_eps(s, x_t, t, eps_hat)
        fast = diffusion.denoising_kl(eps, eps_hat, model.gamma_at(t), model.gamma_at(t - 1))
        slow = diffusion.denoising_kl_exact(s, images.double(), x_t.double(), t, x0_hat.double())
    assert torch.allclose(fast.double(), slow, rtol=1e-3)


def test_learned_schedule_table_matches_gamma_module():
    m = VDM(VDMConfig(schedule="learned", **TINY)).eval()
    t = torch.arange(1, m.T + 1)
    assert torch.allclose(m.schedule.gamma[1:].float(), m.gamma_at(t).detach(), atol=1e-4)
    assert m.schedule is m.schedule  # tabulated once in eval mode
    assert m.gamma_at(torch.tensor([1])).item() == pytest.approx(-13.3, abs=1e-4)


def test_schedule_is_retabulated_after_loading_weights():
    a = VDM(VDMConfig(schedule="learned", **TINY)).eval()
    b = VDM(VDMConfig(schedule="learned", **TINY)).eval()
    with torch.no_grad():
        b.gamma.gamma_max.fill_(7.0)
    before = a.schedule
    a.load_state_dict(b.state_dict())
    assert a.schedule is not before
    assert a.schedule.gamma[-1].item() == pytest.approx(7.0, abs=1e-4)


@pytest.mark.parametrize("loss", ["elbo", "simple", "weighted"])
def test_training_lowers_the_loss(loss, images):
    torch.manual_seed(0)
    m = VDM(VDMConfig(loss=loss, **TINY))
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    first = None
    for step in range(60):
        value, _ = m.training_loss(images, step, g)
        opt.zero_grad()
        value.backward()
        opt.step()
        first = first if first is not None else float(value.detach())
    with torch.no_grad():
        last = sum(float(m.training_loss(images, 0, torch.Generator().manual_seed(s))[0])
                   for s in range(10)) / 10
    assert last < 0.7 * first


def test_weighted_loss_without_extra_weight_is_the_elbo(images):
    """weight_scale = 0 leaves w = 1: the same draws give the mean -ELBO, and the same terms."""
    torch.manual_seed(0)
    m = VDM(VDMConfig(loss="weighted", weight_scale=0.0, **TINY))
    loss, terms = m.training_loss(images, 0, torch.Generator().manual_seed(3))
    elbo = m.elbo(images, torch.Generator().manual_seed(3))
    assert torch.allclose(loss, elbo.total.mean())
    assert all(torch.equal(terms[k], elbo[k]) for k in elbo)


def test_diffusion_weight_is_the_sigmoid_of_log_snr():
    """w(lambda) = 1 + c sigmoid(b - lambda): 1 + c/2 where lambda = b, between 1 and 1 + c, and
    larger at noisier steps (gamma = -lambda grows with t)."""
    m = VDM(VDMConfig(schedule="linear", loss="weighted", weight_scale=9.0, weight_logsnr=1.5,
                      **TINY))
    t = torch.arange(1, m.T + 1)
    lam = -m.gamma_at(t)
    w = m.diffusion_weight(t)
    expected = 1 + 9.0 / (1 + torch.exp(lam - 1.5))
    assert torch.allclose(w, expected, rtol=1e-5)
    assert torch.all(w > 1) and torch.all(w <= 10) and torch.all(w[1:] >= w[:-1])
    k = int((lam > 1.5).sum())          # lambda falls through b = 1.5 between steps k and k + 1
    assert 0 < k < m.T and w[k - 1] < 5.5 < w[k]


def test_weighted_loss_is_the_weighted_sum_of_the_steps():
    """E[loss] = E[reconstruction + prior] + sum_t w(lambda_t) E[L_t] (Monte Carlo over the
    stratified t against the exact per-step terms)."""
    torch.manual_seed(0)
    m = VDM(VDMConfig(loss="weighted", weight_scale=9.0, **TINY)).eval()
    x = grid_images(2)
    with torch.no_grad():
        per_t = torch.stack([m.loss_per_t(x, torch.Generator().manual_seed(s))
                             for s in range(8)]).mean(0)                     # (B, T-1)
        w = m.diffusion_weight(torch.arange(2, m.T + 1))
        ends = m.endpoint_terms(x, torch.Generator().manual_seed(0))
        exact = (ends[0] + ends[1]).mean() + (per_t * w).sum(1).mean()
        draws = torch.stack([m.training_loss(x, 0, torch.Generator().manual_seed(100 + s))[0]
                             for s in range(300)])
    se = draws.std() / math.sqrt(len(draws))
    assert (draws.mean() - exact).abs() < 4 * se + 0.05 * exact
    assert exact > (ends[0] + ends[1]).mean() + 1.5 * per_t.sum(1).mean()   # the weights bite


def test_weighted_loss_trains_the_network_only(images):
    m = VDM(VDMConfig(schedule="learned", loss="weighted", **TINY))
    loss, _ = m.training_loss(images, 0, torch.Generator().manual_seed(0))
    loss.backward()
    assert all(p.grad is None for p in m.gamma.parameters())
    assert all(p.grad is not None for p in m.unet.parameters())
    with pytest.raises(ValueError, match="weight_scale"):
        VDMConfig(loss="weighted", weight_scale=-1.0)


def test_learned_gamma_gets_gradients(images):
    m = VDM(VDMConfig(schedule="learned", **TINY))
    loss, _ = m.training_loss(images, 0, torch.Generator().manual_seed(0))
    loss.backward()
    assert m.gamma.gamma_min.grad is not None and m.gamma.gamma_max.grad is not None


def test_sample_shape_range_and_seed(model):
    a = model.sample(3, generator=torch.Generator().manual_seed(1), steps=5)
    b = model.sample(3, generator=torch.Generator().manual_seed(1), steps=5)
    assert a.shape == (3, 1, 28, 28) and torch.equal(a, b)
    assert a.min() >= -1 and a.max() <= 1


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="cosine"):
        VDMConfig(schedule="quadratic")
    with pytest.raises(ValueError, match="simple"):
        VDMConfig(loss="mse")


@pytest.mark.parametrize("gamma_1", [-13.3, -9.0, -5.0, 0.0, 4.0])
def test_windowed_reconstruction_equals_the_full_softmax(gamma_1):
    """The decoder's normaliser over a window of levels equals the one over all 256 levels."""
    from explorer.likelihood import pixel_grid, sum_except_batch, to_bin_index
    x0 = grid_images(3).double()
    g = torch.full((3,), gamma_1, dtype=torch.float64)
    alpha, sigma = torch.sigmoid(-g[0]).sqrt(), torch.sigmoid(g[0]).sqrt()
    x1 = alpha * x0 + sigma * torch.randn(x0.shape, generator=torch.Generator().manual_seed(0),
                                          dtype=torch.float64)
    logits = -(x1.unsqueeze(-1) - alpha * pixel_grid(dtype=torch.float64)) ** 2 / (2 * sigma ** 2)
    full = -sum_except_batch(torch.log_softmax(logits, -1).gather(
        -1, to_bin_index(x0).unsqueeze(-1)).squeeze(-1))
    assert torch.allclose(diffusion.reconstruction_nll(x0, x1, g), full, rtol=1e-10, atol=1e-8)
