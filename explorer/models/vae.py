"""A convolutional VAE with a Gaussian latent and a discretized-logistic pixel likelihood.

    q(z|x) = N(mu(x), diag sigma^2(x)),   p(z) = N(0, I),
    p(x|z) = prod_pixels DiscretizedLogistic(x_i; m_i(z), s_i(z))   (256 bins of [-1, 1]).

-ELBO(x) = reconstruction + kl, with reconstruction = -log p(x|z) at one z ~ q(z|x) and
kl = KL(q(z|x) || p(z)) in closed form (Kingma & Welling 2014, eq. 10). All in nats per example.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from explorer.config import ELBOTerms
from explorer.likelihood import (discretized_logistic_log_prob, gaussian_kl, gaussian_log_prob,
                                 sum_except_batch)
from explorer.models.layers import (ConvDecoder, ConvEncoder, gaussian_sample, logistic_params,
                                    resolution_after, soft_clamp_logvar)
from explorer.noise import standard_normal


@dataclass(frozen=True)
class VAEConfig:
    latent_dim: int = 32                          # size of z; 2 gives a plottable manifold
    channels: tuple[int, ...] = (16, 48, 96)      # conv widths at resolutions 28, 14, 7
    blocks: tuple[int, ...] = (1, 1, 1)           # residual blocks at each of those resolutions
    warmup_steps: int = 1000                      # KL weight rises linearly 0 -> 1 over these steps
    free_bits: float = 0.0                        # floor on the batch-mean KL, nats per latent dim

    def __post_init__(self):
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {self.latent_dim}")
        resolution_after(len(self.channels))  # raises on a bad tower depth
        if len(self.blocks) != len(self.channels):
            raise ValueError(f"blocks {self.blocks} needs one entry per level of {self.channels}")
        if self.warmup_steps < 0 or self.free_bits < 0:
            raise ValueError("warmup_steps and free_bits must be >= 0")


def kl_weight(step: int, warmup_steps: int) -> float:
    """Linear KL warm-up: beta = min(1, step / warmup_steps) (1 when warmup_steps is 0)."""
    return 1.0 if warmup_steps <= 0 else min(1.0, max(step, 0) / warmup_steps)


class VAE(nn.Module):
    """Conv encoder -> (mu, log sigma^2) -> z -> conv decoder -> (mean, log-scale) per pixel."""

    kind = "vae"
    config_cls = VAEConfig

    def __init__(self, config: VAEConfig = VAEConfig()):
        super().__init__()
        self.config = config
        c_top = config.channels[-1]
        r = resolution_after(len(config.channels))
        self._feature_shape = (c_top, r, r)
        self.encoder = ConvEncoder(1, config.channels, config.blocks)
        self.to_posterior = nn.Linear(c_top * r * r, 2 * config.latent_dim)
        self.from_latent = nn.Linear(config.latent_dim, c_top * r * r)
        self.decoder = ConvDecoder(2, config.channels, config.blocks)

    # --- inference network -------------------------------------------------------------------

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Parameters of q(z|x) = N(mu(x), diag sigma^2(x)): (mu, logvar), each (B, latent_dim)."""
        h = self.encoder(x).flatten(1)                                       # (B, C*r*r)
        mu, logvar = self.to_posterior(h).chunk(2, dim=1)                    # (B, D) each
        return mu, soft_clamp_logvar(logvar)

    def reparameterize(self, mu: Tensor, logvar: Tensor,
                       generator: torch.Generator | None = None) -> Tensor:
        """One draw z = mu + sigma * eps, eps ~ N(0, I); (B, latent_dim)."""
        return gaussian_sample(mu, logvar, 1.0, generator)

    # --- generative network ------------------------------------------------------------------

    def decode(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Parameters of p(x|z): per-pixel logistic (mean, log_scale), each (B, 1, 28, 28)."""
        h = self.from_latent(z).view(z.shape[0], *self._feature_shape)      # (B, C, r, r)
        return logistic_params(self.decoder(F.silu(h)))

    def decode_mean(self, z: Tensor) -> Tensor:
        """The mean of p(x|z) clamped to the data range: an image (B, 1, 28, 28) in [-1, 1]."""
        mean, _ = self.decode(z)
        return mean.clamp(-1.0, 1.0)

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0,
               generator: torch.Generator | None = None) -> Tensor:
        """Draw z ~ N(0, temperature^2 I) and decode to the mean of p(x|z): (n, 1, 28, 28)."""
        device = next(self.parameters()).device
        z = temperature * standard_normal((n, self.config.latent_dim), generator, device)
        return self.decode_mean(z)

    # --- objectives --------------------------------------------------------------------------

    def elbo(self, x: Tensor, generator: torch.Generator | None = None) -> ELBOTerms:
        """One-sample -ELBO terms per example, nats (B,):
        reconstruction = -log p(x|z), z ~ q(z|x);  kl = KL(q(z|x) || N(0, I)) (closed form)."""
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar, generator)                       # (B, D)
        mean, log_scale = self.decode(z)
        recon = -sum_except_batch(discretized_logistic_log_prob(x, mean, log_scale))
        kl = sum_except_batch(gaussian_kl(mu, logvar))
        return ELBOTerms(reconstruction=recon, kl=kl)

    def log_importance_weight(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """log p(x, z) - log q(z|x) at one z ~ q(z|x), (B,) nats. Its mean is the ELBO; a
        log-mean-exp over K draws is the importance-weighted bound (Burda et al. 2016)."""
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar, generator)
        mean, log_scale = self.decode(z)
        log_px_z = sum_except_batch(discretized_logistic_log_prob(x, mean, log_scale))
        log_pz = sum_except_batch(gaussian_log_prob(z, torch.zeros_like(z), torch.zeros_like(z)))
        log_qz = sum_except_batch(gaussian_log_prob(z, mu, logvar))
        return log_px_z + log_pz - log_qz

    def training_loss(self, x: Tensor, step: int,
                      generator: torch.Generator | None = None) -> tuple[Tensor, ELBOTerms]:
        """Scalar loss = mean reconstruction + beta(step) * max(mean kl, free_bits * latent_dim),
        beta rising linearly to 1 over config.warmup_steps; returns it and the true (detached)
        -ELBO terms. With warmup_steps = 0 and free_bits = 0 the loss is exactly mean -ELBO."""
        terms = self.elbo(x, generator)
        floor = self.config.free_bits * self.config.latent_dim
        kl = terms["kl"].mean()
        if floor > 0:
            kl = torch.clamp(kl, min=floor)
        loss = terms["reconstruction"].mean() + kl_weight(step, self.config.warmup_steps) * kl
        return loss, ELBOTerms((k, v.detach()) for k, v in terms.items())

    @torch.no_grad()
    def active_units(self, x: Tensor, threshold: float = 0.01) -> int:
        """Number of latent dims with Cov_x(E_q[z|x]) > threshold over the batch x (Burda et al.
        2016)."""
        mu, _ = self.encode(x)
        return int((mu.var(dim=0, unbiased=True) > threshold).sum())
