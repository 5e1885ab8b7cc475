"""The VDM's prior p(x_T): the standard N(0, I), or a Gaussian fitted to the data's moments.

The encoder is variance preserving (alpha_T^2 + sigma_T^2 = 1), so the marginal it ends at is
    q(x_T) = E_{x_0} N(alpha_T x_0, sigma_T^2 I),  with mean alpha_T mu and covariance
    sigma_T^2 I + alpha_T^2 Sigma                  (mu, Sigma: the data's mean and covariance).
N(0, I) matches it only when SNR_T = alpha_T^2 / sigma_T^2 is 0. A learned schedule ends at a
small but non-zero SNR_T (about 0.006 for the shipped models), and a 28x28 image's mean and its
first principal components then still show through the noise at about one standard deviation:
the network learns to read them, and a deterministic sampler started from N(0, I) never recovers
them (Lin et al. 2024, "Common Diffusion Noise Schedules and Sample Steps Are Flawed"). The fitted
prior is the Gaussian with q(x_T)'s moments (as PriorGrad, Lee et al. 2022, fits one per input):

    p(x_T) = N(alpha_T mu, sigma_T^2 I + alpha_T^2 Sigma),  Sigma = s^2 I + U diag(d) U^T

with Sigma a probabilistic-PCA fit (Tipping & Bishop 1999): U the data's top `rank` principal
directions, s^2 the mean variance of the others, d the excess variance along U. Unfitted
(mu = 0, s^2 = 1, d = 0) it is N(0, I) exactly. Both priors map a standard normal draw z to
x_T = m + S^(1/2) z (`from_standard`) and back (`to_standard`), so one seed gives one x_T.
Shapes: x is (B, 1, 28, 28); gamma_T is a scalar or (B,) tensor, gamma = -log SNR.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from explorer.diffusion import prior_kl

PRIORS = ("standard", "fitted")


def _alpha2_sigma2(gamma_T: Tensor, like: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(alpha_T^2, sigma_T^2, log sigma_T^2), each shaped (B, 1) for flattened (B, D) x."""
    gamma_T = torch.as_tensor(gamma_T, dtype=like.dtype, device=like.device).reshape(-1, 1)
    return torch.sigmoid(-gamma_T), torch.sigmoid(gamma_T), nn.functional.logsigmoid(gamma_T)


class StandardPrior(nn.Module):
    """p(x_T) = N(0, I) (Kingma et al. 2021): no parameters, x_T = z."""

    def kl(self, x0: Tensor, gamma_T: Tensor) -> Tensor:
        """KL(q(x_T | x_0) || N(0, I)) per example (B,), nats."""
        return prior_kl(x0, gamma_T)

    def from_standard(self, z: Tensor, gamma_T: Tensor) -> Tensor:
        """x_T ~ p(x_T) from z ~ N(0, I): x_T = z."""
        return z

    def to_standard(self, x_T: Tensor, gamma_T: Tensor) -> Tensor:
        """z with from_standard(z) = x_T: z = x_T."""
        return x_T


class GaussianPrior(nn.Module):
    """p(x_T) = N(alpha_T mu, sigma_T^2 I + alpha_T^2 (s^2 I + U diag(d) U^T)), fitted by `fit`."""

    def __init__(self, rank: int = 64, shape: tuple[int, ...] = (1, 28, 28)):
        super().__init__()
        dims = math.prod(shape)
        if not 0 <= rank <= dims:
            raise ValueError(f"rank must be in 0..{dims}, got {rank}")
        self.register_buffer("mean", torch.zeros(dims))            # mu, (D,)
        self.register_buffer("basis", torch.zeros(dims, rank))     # U, (D, k) orthonormal columns
        self.register_buffer("excess", torch.zeros(rank))          # d >= 0, (k,)
        self.register_buffer("floor", torch.ones(()))              # s^2

    @torch.no_grad()
    def fit(self, images: Tensor) -> "GaussianPrior":
        """Set mu, U, d, s^2 from `images` (N, 1, 28, 28) in [-1, 1] (float64 moments)."""
        x = images.reshape(len(images), -1).double()
        mean = x.mean(0)
        centred = x - mean
        cov = centred.T @ centred / max(len(x) - 1, 1)                 # (D, D)
        values, vectors = torch.linalg.eigh(cov)                       # ascending
        k, dims = self.basis.shape[1], x.shape[1]
        rest = values[:dims - k]
        floor = rest.clamp(min=0).mean() if len(rest) else values.new_zeros(())
        floor = floor.clamp(min=1e-6)
        self.mean.copy_(mean)
        self.basis.copy_(vectors[:, dims - k:])
        self.excess.copy_((values[dims - k:] - floor).clamp(min=0))
        self.floor.copy_(floor)
        return self

    def _covariance(self, gamma_T: Tensor, like: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(alpha_T (B, 1), c = sigma^2 + alpha^2 s^2 (B, 1), a = alpha^2 d (B, k), log sigma^2):
        the marginal's covariance is c I + U diag(a) U^T."""
        alpha2, sigma2, log_sigma2 = _alpha2_sigma2(gamma_T, like)
        floor, excess = self.floor.to(like.dtype), self.excess.to(like.dtype)
        return alpha2.sqrt(), sigma2 + alpha2 * floor, alpha2 * excess, log_sigma2

    def kl(self, x0: Tensor, gamma_T: Tensor) -> Tensor:
        """KL(q(x_T | x_0) || p(x_T)) per example (B,), nats: for N(m_1, sigma^2 I) against
        N(m_2, S), 1/2 [sigma^2 tr S^-1 + r^T S^-1 r - D + log det S - D log sigma^2] with
        r = m_2 - m_1, S^-1 and det S in closed form along U and off it."""
        x = x0.reshape(len(x0), -1)
        dims, k = x.shape[1], self.basis.shape[1]
        alpha, c, a, log_sigma2 = self._covariance(gamma_T, x)
        sigma2 = log_sigma2.exp()
        basis = self.basis.to(x.dtype)
        r = alpha * (self.mean.to(x.dtype) - x)                         # (B, D)
        along = r @ basis                                               # (B, k)
        ca = c + a                                                      # (B, k) eigenvalues on U
        trace = (dims - k) / c + (1.0 / ca).sum(-1, keepdim=True)
        quad = (r.pow(2).sum(-1, keepdim=True) - along.pow(2).sum(-1, keepdim=True)) / c \
            + (along.pow(2) / ca).sum(-1, keepdim=True)
        logdet = (dims - k) * torch.log(c) + torch.log(ca).sum(-1, keepdim=True)
        return (0.5 * (sigma2 * trace + quad - dims + logdet - dims * log_sigma2)).reshape(-1)

    def _apply_power(self, flat: Tensor, gamma_T: Tensor, power: float) -> Tensor:
        """S^power v for flattened (B, D) v: c^p v + U ((c + a)^p - c^p) U^T v."""
        _, c, a, _ = self._covariance(gamma_T, flat)
        basis = self.basis.to(flat.dtype)
        return c.pow(power) * flat + ((flat @ basis) * ((c + a).pow(power) - c.pow(power))) @ basis.T

    def _mean(self, gamma_T: Tensor, like: Tensor) -> Tensor:
        """m = alpha_T mu, (B, D)."""
        alpha2 = _alpha2_sigma2(gamma_T, like)[0]
        return alpha2.sqrt() * self.mean.to(like.dtype)

    def from_standard(self, z: Tensor, gamma_T: Tensor) -> Tensor:
        """x_T ~ p(x_T) from z ~ N(0, I): x_T = m + S^(1/2) z."""
        flat = z.reshape(len(z), -1)
        return (self._mean(gamma_T, flat) + self._apply_power(flat, gamma_T, 0.5)).reshape(z.shape)

    def to_standard(self, x_T: Tensor, gamma_T: Tensor) -> Tensor:
        """The inverse of from_standard: z = S^(-1/2) (x_T - m)."""
        flat = x_T.reshape(len(x_T), -1)
        r = flat - self._mean(gamma_T, flat)
        return self._apply_power(r, gamma_T, -0.5).reshape(x_T.shape)


def make_prior(name: str, rank: int = 64) -> nn.Module:
    """The prior module named `name` (one of PRIORS)."""
    return GaussianPrior(rank) if name == "fitted" else StandardPrior()
