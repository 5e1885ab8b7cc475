"""Diffusion math on a DiscreteSchedule: the forward process, its posterior, and the VDM ELBO.

The VDM is a Markovian HVAE whose encoder is fixed and linear-Gaussian,
q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, (1 - alpha_t) I), so every marginal and posterior below is
closed-form. Shapes: x0, x_t, eps are (B, C, H, W); t is a (B,) long tensor or an int in 0..T.

The negative ELBO splits into the three terms the UI plots (Kingma et al. 2021, eq. 11):
    reconstruction  L_0     = -log p(x_0 | x_1)                        (discretized decoder; Gaussian
                            for continuous data: gaussian_reconstruction_nll)
    prior matching  L_prior = KL(q(x_T | x_0) || p(x_T)), p(x_T) = N(0, I) here (or fitted:
                            explorer.priors)
    denoising       L_t     = KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)),  t = 2..T
                            = 1/2 (SNR_{t-1} - SNR_t) ||x_0 - x0_hat||^2
                            = 1/2 expm1(gamma_t - gamma_{t-1}) ||eps - eps_hat||^2
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from explorer.likelihood import (N_BINS, gaussian_kl, gaussian_log_prob, sum_except_batch,
                                 to_bin_index)
from explorer.schedules import DiscreteSchedule

_x = DiscreteSchedule.extract


class Gaussian(NamedTuple):
    """A diagonal Gaussian N(mean, variance); variance broadcasts against mean."""
    mean: Tensor
    variance: Tensor


# ---- forward process q(x_t | x_{t-1}) and q(x_t | x_0) ----

def q_step(s: DiscreteSchedule, x_prev: Tensor, t: Tensor | int) -> Gaussian:
    """q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, (1 - alpha_t) I)."""
    return Gaussian(_x(s.alpha, t, x_prev).sqrt() * x_prev, _x(s.beta, t, x_prev))


def q_marginal(s: DiscreteSchedule, x0: Tensor, t: Tensor | int) -> Gaussian:
    """q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I) (Ho et al. eq. 4)."""
    return Gaussian(_x(s.sqrt_alpha_bar, t, x0) * x0, _x(s.one_minus_alpha_bar, t, x0))


def mix(alpha, sigma, x0, eps):
    """x_t = alpha_t x_0 + sigma_t eps with alpha_t = sqrt(alpha_bar_t), sigma_t = sqrt(1 - alpha_bar_t):
    the reparameterised draw from q(x_t | x_0) (Ho et al. eq. 4; Kingma et al. 2021 eq. 3). Every
    caller mixes through here: tensors or numpy arrays, with alpha and sigma broadcasting against
    x0 (the page's ui/static/lib/mix.js does the same float32 arithmetic)."""
    return alpha * x0 + sigma * eps


def q_sample(s: DiscreteSchedule, x0, t, noise):
    """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps: a draw from q(x_t | x_0).

    Tensors: t an int or a (B,) long tensor. numpy arrays: t an int, or an (n,) array of steps
    giving one x_t per step, (n, *x0.shape); the coefficients are cast to x0's dtype, so float32
    images mix in float32."""
    if isinstance(x0, np.ndarray):
        steps = np.asarray(t)
        shape = steps.shape + (1,) * x0.ndim
        alpha = s.sqrt_alpha_bar.numpy()[steps].astype(x0.dtype).reshape(shape)
        sigma = s.sqrt_one_minus_alpha_bar.numpy()[steps].astype(x0.dtype).reshape(shape)
        return mix(alpha, sigma, x0, np.asarray(noise, dtype=x0.dtype))
    return mix(_x(s.sqrt_alpha_bar, t, x0), _x(s.sqrt_one_minus_alpha_bar, t, x0), x0, noise)


# ---- posterior q(x_{t-1} | x_t, x_0), t >= 1 ----

def q_posterior(s: DiscreteSchedule, x0: Tensor, x_t: Tensor, t: Tensor | int) -> Gaussian:
    """q(x_{t-1} | x_t, x_0) = N(mu~_t, beta~_t I) (Ho et al. eq. 6-7)."""
    mean = _x(s.posterior_mean_coef_x0, t, x_t) * x0 + _x(s.posterior_mean_coef_xt, t, x_t) * x_t
    return Gaussian(mean, _x(s.posterior_variance, t, x_t))


# ---- reparameterisations between x_0 and the noise ----

def x0_from_eps(s: DiscreteSchedule, x_t: Tensor, t: Tensor | int, eps: Tensor) -> Tensor:
    """x_0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)."""
    return (x_t - _x(s.sqrt_one_minus_alpha_bar, t, x_t) * eps) / _x(s.sqrt_alpha_bar, t, x_t)


def eps_from_x0(s: DiscreteSchedule, x_t: Tensor, t: Tensor | int, x0: Tensor) -> Tensor:
    """eps = (x_t - sqrt(alpha_bar_t) x_0) / sqrt(1 - alpha_bar_t)."""
    return (x_t - _x(s.sqrt_alpha_bar, t, x_t) * x0) / _x(s.sqrt_one_minus_alpha_bar, t, x_t)


# ---- the three ELBO terms, from gamma values (differentiable for a learned schedule) ----

def reconstruction_nll(x0: Tensor, x1: Tensor, gamma_1: Tensor, cutoff: float = 12.0) -> Tensor:
    """L_0 = -log p(x_0 | x_1) per example (B,), nats.

    Decoder (Kingma et al. 2021, App. C): each pixel's 256 levels x' weighted by
    N(x_1; alpha_1 x', sigma_1^2), normalised: p(x_0 | x_1) = prod_i softmax_k(-(x_1,i - alpha_1 x'_k)^2 / 2 sigma_1^2).
    Over the levels this is a discretized Gaussian centred at x_1 / alpha_1 with std
    sigma_1 / alpha_1, so the normaliser only needs the levels within `cutoff` stds of the centre
    (the rest add less than exp(-cutoff^2 / 2) to it): a window of a few levels when sigma_1 is
    small, all 256 otherwise.
    """
    gamma_1 = torch.as_tensor(gamma_1, dtype=x1.dtype, device=x1.device)
    gamma_1 = gamma_1.reshape(-1, *([1] * (x1.ndim - 1)))
    alpha = torch.sqrt(torch.sigmoid(-gamma_1))                      # (B, 1, 1, 1)
    var = torch.sigmoid(gamma_1)
    level_width = 2.0 / (N_BINS - 1)
    half = int(math.ceil(cutoff * float((var.sqrt() / alpha).detach().max()) / level_width)) + 1
    if 2 * half + 1 >= N_BINS:
        levels = torch.arange(N_BINS, device=x1.device).expand(*x1.shape, N_BINS)
    else:
        centre = to_bin_index(x1.detach() / alpha.detach())           # (B, C, H, W)
        start = (centre - half).clamp(0, N_BINS - 1 - 2 * half)
        levels = start.unsqueeze(-1) + torch.arange(2 * half + 1, device=x1.device)
    values = levels.to(x1.dtype) * level_width - 1.0                  # (B, C, H, W, n) levels x'
    logits = -(x1.unsqueeze(-1) - alpha.unsqueeze(-1) * values) ** 2 / (2 * var.unsqueeze(-1))
    observed = -(x1 - alpha * to_bin_index(x0).to(x1.dtype).mul(level_width).sub(1.0)) ** 2 / (2 * var)
    return -sum_except_batch(observed - torch.logsumexp(logits, dim=-1))


def gaussian_reconstruction_nll(x0: Tensor, x1: Tensor, gamma_1: Tensor) -> Tensor:
    """L_0 = -log p(x_0 | x_1) per example (B,), nats, for continuous data (the 2-D playground).

    Decoder: p(x_0 | x_1) = N(x_1 / alpha_1, (sigma_1 / alpha_1)^2 I), with alpha_1^2 =
    sigmoid(-gamma_1), sigma_1^2 = sigmoid(gamma_1), so the variance (sigma_1 / alpha_1)^2 =
    exp(gamma_1) = 1 / SNR(1). A density, not a probability: it may be negative.
    """
    gamma_1 = torch.as_tensor(gamma_1, dtype=x1.dtype, device=x1.device)
    gamma_1 = gamma_1.reshape(-1, *([1] * (x1.ndim - 1)))             # (B, 1, ...)
    mean = x1 / torch.sqrt(torch.sigmoid(-gamma_1))                   # x_1 / alpha_1
    logvar = gamma_1.expand_as(x0)                                    # log (sigma_1 / alpha_1)^2
    return -sum_except_batch(gaussian_log_prob(x0, mean, logvar))


def prior_kl(x0: Tensor, gamma_T: Tensor) -> Tensor:
    """L_prior = KL(q(x_T | x_0) || N(0, I)) per example (B,), nats."""
    gamma_T = torch.as_tensor(gamma_T, dtype=x0.dtype, device=x0.device)
    gamma_T = gamma_T.reshape(-1, *([1] * (x0.ndim - 1)))
    mean = torch.sqrt(torch.sigmoid(-gamma_T)) * x0
    logvar = torch.nn.functional.logsigmoid(gamma_T).expand_as(x0)
    return sum_except_batch(gaussian_kl(mean, logvar))


def denoising_kl(eps: Tensor, eps_hat: Tensor, gamma_t: Tensor, gamma_prev: Tensor) -> Tensor:
    """L_t = KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)) per example (B,), nats, for t >= 2,
    with p(x_{t-1} | x_t) = q(x_{t-1} | x_t, x0_hat): 1/2 expm1(gamma_t - gamma_{t-1}) ||eps - eps_hat||^2."""
    weight = 0.5 * torch.expm1(gamma_t - gamma_prev).reshape(-1)
    return weight.to(eps.dtype) * sum_except_batch((eps - eps_hat) ** 2)


def denoising_sum(l_t: Tensor, T: int) -> float:
    """sum_{t=2..T} L_t from the terms at some of those t: their sum when all T - 1 are given,
    else (T - 1) times their mean (the estimate of the sum from t drawn evenly), nats."""
    if len(l_t) == T - 1:
        return float(l_t.sum())
    return float(l_t.mean()) * (T - 1)


def denoising_kl_exact(s: DiscreteSchedule, x0: Tensor, x_t: Tensor, t: Tensor | int,
                       x0_hat: Tensor) -> Tensor:
    """The same L_t from the Gaussian KL formula of the two posteriors (for checks), (B,) nats."""
    q = q_posterior(s, x0, x_t, t)
    p = q_posterior(s, x0_hat, x_t, t)
    logvar = torch.log(q.variance).expand_as(x0)
    return sum_except_batch(gaussian_kl(q.mean, logvar, p.mean, logvar))
