"""Densities, KLs and discretized likelihoods shared by every model.

Data convention (used everywhere in `explorer`): an 8-bit pixel k in {0, ..., 255} is the
float x = 2k/255 - 1 in [-1, 1]; the 256 values are the centres of bins of width 2/255.
Likelihoods are probabilities of those bins, so -log p / (D log 2) is a true bits/dim.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

LOG_2PI = math.log(2 * math.pi)
BIN_HALF_WIDTH = 1.0 / 255.0
N_BINS = 256


def nats_to_bpd(nats: Tensor | float, dims: int) -> Tensor | float:
    """Convert a negative log-likelihood in nats (per example) to bits per dimension."""
    return nats / (dims * math.log(2.0))


def pixel_grid(device=None, dtype=torch.float32) -> Tensor:
    """The 256 bin centres 2k/255 - 1, shape (256,)."""
    return torch.linspace(-1.0, 1.0, N_BINS, device=device, dtype=dtype)


def to_bin_index(x: Tensor) -> Tensor:
    """Bin index k in {0..255} of data x in [-1, 1] (inverse of 2k/255 - 1)."""
    return torch.round((x.clamp(-1, 1) + 1) * 127.5).long()


def gaussian_log_prob(x: Tensor, mean: Tensor, logvar: Tensor) -> Tensor:
    """Elementwise log N(x; mean, exp(logvar)), same shape as x."""
    return -0.5 * (LOG_2PI + logvar + (x - mean) ** 2 * torch.exp(-logvar))


def gaussian_entropy(logvar: Tensor) -> Tensor:
    """Elementwise entropy of N(., exp(logvar)) in nats."""
    return 0.5 * (LOG_2PI + 1.0 + logvar)


def gaussian_kl(mean1: Tensor, logvar1: Tensor, mean2: Tensor | float = 0.0,
                logvar2: Tensor | float = 0.0) -> Tensor:
    """Elementwise KL( N(mean1, exp(logvar1)) || N(mean2, exp(logvar2)) ) in nats."""
    mean2 = torch.as_tensor(mean2, dtype=mean1.dtype, device=mean1.device)
    logvar2 = torch.as_tensor(logvar2, dtype=mean1.dtype, device=mean1.device)
    return 0.5 * (logvar2 - logvar1 + (torch.exp(logvar1) + (mean1 - mean2) ** 2)
                  * torch.exp(-logvar2) - 1.0)


def sum_except_batch(x: Tensor) -> Tensor:
    """Sum over every dimension but the first: (B, ...) -> (B,)."""
    return x.reshape(x.shape[0], -1).sum(dim=1)


def discretized_logistic_log_prob(x: Tensor, mean: Tensor, log_scale: Tensor) -> Tensor:
    """Elementwise log P(bin of x) under a logistic(mean, exp(log_scale)) discretized into the
    256 bins of [-1, 1]; the edge bins take the tails (as in PixelCNN++).

    x must lie on the pixel grid 2k/255 - 1. Returns a tensor shaped like x, in nats.
    """
    centred = x - mean
    inv_s = torch.exp(-log_scale)
    plus_in = inv_s * (centred + BIN_HALF_WIDTH)
    min_in = inv_s * (centred - BIN_HALF_WIDTH)
    log_cdf_plus = F.logsigmoid(plus_in)            # log sigma(plus_in): used at the left edge
    log_one_minus_cdf_min = F.logsigmoid(-min_in)   # log(1 - sigma(min_in)): right edge
    # log(sigma(a) - sigma(b)) = log sigma(a) + log(1 - exp(log sigma(b) - log sigma(a)))
    # computed stably as below; fall back to the density at the centre when the bin is tiny.
    cdf_delta = torch.sigmoid(plus_in) - torch.sigmoid(min_in)
    mid_in = inv_s * centred
    log_pdf_mid = mid_in - log_scale - 2.0 * F.softplus(mid_in)
    log_mid = torch.where(cdf_delta > 1e-5, torch.log(cdf_delta.clamp_min(1e-12)),
                          log_pdf_mid + math.log(2 * BIN_HALF_WIDTH))
    return torch.where(x < -0.999, log_cdf_plus,
                       torch.where(x > 0.999, log_one_minus_cdf_min, log_mid))


def discretized_gaussian_log_prob(x: Tensor, mean: Tensor, log_scale: Tensor) -> Tensor:
    """Elementwise log P(bin of x) under N(mean, exp(log_scale)^2) discretized into the 256 bins
    of [-1, 1], edge bins taking the tails (Ho et al. 2020, eq. 13). Shaped like x, in nats."""
    centred = x - mean
    inv_s = torch.exp(-log_scale)
    normal = torch.distributions.Normal(0.0, 1.0)
    cdf_plus = normal.cdf(inv_s * (centred + BIN_HALF_WIDTH))
    cdf_min = normal.cdf(inv_s * (centred - BIN_HALF_WIDTH))
    log_cdf_plus = torch.log(cdf_plus.clamp_min(1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp_min(1e-12))
    log_delta = torch.log((cdf_plus - cdf_min).clamp_min(1e-12))
    return torch.where(x < -0.999, log_cdf_plus,
                       torch.where(x > 0.999, log_one_minus_cdf_min, log_delta))
