"""Variational Diffusion Model: a fixed linear-Gaussian encoder, a noise schedule and a noise
predictor eps_theta(x_t, t), trained on its ELBO (Kingma et al. 2021), on Ho's L_simple, or on
an ELBO that weights the noisy steps more (Kingma & Gao 2023).

The three -ELBO terms per example (nats), as `explorer.diffusion` defines them:
    reconstruction  -log p(x_0 | x_1)
    prior           KL(q(x_T | x_0) || p(x_T))   (p(x_T): N(0, I), or fitted; see explorer.priors)
    diffusion       sum_{t=2..T} KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from explorer import diffusion
from explorer.config import ELBOTerms, check_choice
from explorer.models.unet import UNet
from explorer.noise import standard_normal
from explorer.priors import PRIORS, make_prior
from explorer.samplers import DEFAULT_TIMESTEP_SPACING, make_sampler
from explorer.schedules import (SCHEDULES, DiscreteSchedule, LearnedGamma, TabulatedSchedule,
                                 make_schedule)

LOSSES = ("elbo", "simple", "weighted")


@dataclass(frozen=True)
class VDMConfig:
    schedule: str = "learned"            # noise schedule: linear | cosine | learned
    T: int = 1000                        # number of diffusion steps
    gamma_min: float = -13.3             # learned schedule: initial gamma_1 = -log SNR at t = 1
    gamma_max: float = 5.0               # learned schedule: initial gamma_T
    channels: tuple[int, ...] = (16, 32, 64)  # U-Net width at 28, 14, 7
    res_blocks: int = 1                  # residual blocks per U-Net level
    attention: bool = True               # self-attention at the 7x7 bottleneck
    dropout: float = 0.0                 # dropout inside residual blocks
    fourier_exponents: tuple[int, ...] = (6, 7)  # sin/cos(2^n pi x) input features; () for none
    loss: str = "elbo"                   # training loss: elbo (VDM) | simple (Ho's ||eps - eps_hat||^2)
                                         # | weighted (sum_t w(lambda_t) L_t; see diffusion_weight)
    weight_scale: float = 9.0            # loss=weighted: w(lambda) = 1 + scale * sigmoid(logsnr - lambda)
    weight_logsnr: float = 0.0           # loss=weighted: the log-SNR lambda where w is 1 + scale / 2
    prior: str = "standard"              # p(x_T): standard N(0, I) | fitted (explorer.priors)
    prior_rank: int = 64                 # fitted prior: principal directions of the data kept

    def __post_init__(self):
        check_choice("schedule", self.schedule, SCHEDULES)
        check_choice("loss", self.loss, LOSSES)
        check_choice("prior", self.prior, PRIORS)
        if self.T < 2:
            raise ValueError("T must be at least 2")
        if self.weight_scale < 0:
            raise ValueError("weight_scale must be >= 0 (every step keeps its ELBO weight)")


class VDM(TabulatedSchedule, nn.Module):
    """x_0 (B, 1, 28, 28) in [-1, 1] <-> x_T ~ N(0, I) through T Gaussian steps."""

    kind = "vdm"
    config_cls = VDMConfig

    def __init__(self, config: VDMConfig = VDMConfig()):
        super().__init__()
        self.config = config
        self.T = config.T
        self.unet = UNet(config.channels, config.res_blocks, config.attention, config.dropout,
                         config.fourier_exponents, time_scale=1000.0 / config.T)
        self.gamma = (LearnedGamma(config.gamma_min, config.gamma_max)
                      if config.schedule == "learned" else None)
        self._fixed = None if self.gamma is not None else make_schedule(config.schedule, config.T)
        self._table: DiscreteSchedule | None = self._fixed
        self.prior = make_prior(config.prior, config.prior_rank)
        if config.loss == "weighted" and self.gamma is not None:
            self.gamma.requires_grad_(False)   # the schedule stays where the ELBO put it

    # ---- the schedule: `schedule`, `forget_schedule`, `train`, `load_state_dict` come from
    # explorer.schedules.TabulatedSchedule ----

    def gamma_at(self, t: Tensor) -> Tensor:
        """gamma_t = -log SNR(t) for (B,) steps t in 1..T, float32, differentiable if learned."""
        if self.gamma is None:
            return self._fixed.gamma[t.cpu()].to(torch.float32).to(t.device)
        return self.gamma(LearnedGamma.u_of_t(t, self.T))

    # ---- the prior p(x_T) ----

    def gamma_T(self, device=None) -> Tensor:
        """gamma_T = -log SNR at the last step, (1,) float32 (differentiable if learned)."""
        return self.gamma_at(torch.full((1,), self.T, dtype=torch.long, device=device))

    def fit_prior(self, images: Tensor) -> None:
        """Fit a "fitted" prior to training images (N, 1, 28, 28) in [-1, 1]; no-op for N(0, I)."""
        if hasattr(self.prior, "fit"):
            self.prior.fit(images.to(self.prior.mean.device))

    def prior_from_standard(self, z: Tensor) -> Tensor:
        """x_T ~ p(x_T) from z ~ N(0, I) (B, 1, 28, 28): the same z always gives the same x_T."""
        with torch.no_grad():
            return self.prior.from_standard(z, self.gamma_T(z.device)).to(z.dtype)

    def prior_to_standard(self, x_T: Tensor) -> Tensor:
        """The z that prior_from_standard maps to x_T (B, 1, 28, 28)."""
        with torch.no_grad():
            return self.prior.to_standard(x_T, self.gamma_T(x_T.device)).to(x_T.dtype)

    # ---- the network ----

    def predict_noise(self, x_t: Tensor, t: Tensor) -> Tensor:
        """eps_theta(x_t, t): (B, 1, 28, 28), (B,) long in 1..T -> (B, 1, 28, 28)."""
        return self.unet(x_t, t)

    # ---- the ELBO ----

    def _noisy(self, x0: Tensor, gamma_t: Tensor, generator) -> tuple[Tensor, Tensor]:
        """(x_t, eps) with x_t ~ q(x_t | x_0) at the (B,) gammas, differentiable in gamma."""
        eps = standard_normal(x0.shape, generator, x0.device, x0.dtype)
        g = gamma_t.reshape(-1, 1, 1, 1)
        return diffusion.mix(torch.sqrt(torch.sigmoid(-g)), torch.sqrt(torch.sigmoid(g)), x0, eps), eps

    def diffusion_terms(self, x0: Tensor, t: Tensor, generator=None) -> Tensor:
        """L_t = KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)) per example at its own step t (B,),
        t in 2..T, one draw of x_t; nats."""
        gamma_t, gamma_prev = self.gamma_at(t), self.gamma_at(t - 1)
        x_t, eps = self._noisy(x0, gamma_t, generator)
        return diffusion.denoising_kl(eps, self.predict_noise(x_t, t), gamma_t, gamma_prev)

    def endpoint_terms(self, x0: Tensor, generator=None) -> tuple[Tensor, Tensor]:
        """(reconstruction -log p(x_0 | x_1), prior KL(q(x_T | x_0) || p(x_T))), each (B,) nats."""
        ones = torch.ones(x0.shape[0], dtype=torch.long, device=x0.device)
        gamma_1 = self.gamma_at(ones)
        x1, _ = self._noisy(x0, gamma_1, generator)
        return (diffusion.reconstruction_nll(x0, x1, gamma_1),
                self.prior.kl(x0, self.gamma_at(ones * self.T)))

    def loss_per_t(self, x0: Tensor, generator=None, t_chunk: int = 50) -> Tensor:
        """Every denoising term L_t, t = 2..T, for each example: (B, T - 1) nats (T network calls
        per example; one draw of x_t per (example, t))."""
        out = []
        for start in range(2, self.T + 1, t_chunk):
            ts = torch.arange(start, min(start + t_chunk, self.T + 1), device=x0.device)
            x_rep = x0.repeat_interleave(len(ts), dim=0)              # (B * n, 1, 28, 28)
            t_rep = ts.repeat(x0.shape[0])
            out.append(self.diffusion_terms(x_rep, t_rep, generator).reshape(x0.shape[0], -1))
        return torch.cat(out, dim=1)

    def _stratified_t(self, batch: int, device, generator) -> Tensor:
        """(B,) steps in 2..T from a low-discrepancy uniform draw (Kingma et al. 2021, App. I)."""
        u0 = torch.rand((), generator=generator)
        u = (u0 + torch.arange(batch) / batch) % 1.0
        return (2 + (u * (self.T - 1)).long()).clamp(max=self.T).to(device)

    def elbo(self, x0: Tensor, generator=None, exact: bool = False) -> ELBOTerms:
        """-ELBO terms per example (nats): reconstruction, prior, diffusion. With exact=True the
        diffusion term sums all T - 1 steps; else it is the unbiased (T - 1) * L_t, t ~ U{2..T}."""
        recon, prior = self.endpoint_terms(x0, generator)
        diff = (self.loss_per_t(x0, generator).sum(dim=1) if exact
                else self._sampled_diffusion(x0, generator)[0])
        return ELBOTerms(reconstruction=recon, prior=prior, diffusion=diff)

    def _sampled_diffusion(self, x0: Tensor, generator) -> tuple[Tensor, Tensor]:
        """((T - 1) * L_t, t) per example (B,), t ~ U{2..T} stratified: the unbiased estimate of
        the diffusion term, and the steps it was taken at."""
        t = self._stratified_t(x0.shape[0], x0.device, generator)
        return (self.T - 1) * self.diffusion_terms(x0, t, generator), t

    def diffusion_weight(self, t: Tensor) -> Tensor:
        """w(lambda_t) = 1 + weight_scale * sigmoid(weight_logsnr - lambda_t), lambda = log SNR =
        -gamma, for (B,) steps t: the ELBO's weight (1) plus extra weight on the noisy steps, where
        a deterministic sampler lays down an image's shapes (Kingma & Gao 2023's sigmoid
        weighting, added to the ELBO's so every step keeps at least its ELBO weight)."""
        c = self.config
        return 1.0 + c.weight_scale * torch.sigmoid(c.weight_logsnr + self.gamma_at(t).detach())

    def training_loss(self, x0: Tensor, step: int = 0, generator=None) -> tuple[Tensor, ELBOTerms]:
        """The scalar to minimise: the mean -ELBO (loss='elbo'), Ho's L_simple (loss='simple'), or
        the -ELBO with each diffusion step weighted by diffusion_weight (loss='weighted'; a learned
        schedule is frozen then, so only the network moves). Also returns the -ELBO terms."""
        if self.config.loss == "elbo":
            terms = self.elbo(x0, generator)
            return terms.total.mean(), terms
        if self.config.loss == "weighted":
            recon, prior = self.endpoint_terms(x0, generator)
            diff, t = self._sampled_diffusion(x0, generator)
            terms = ELBOTerms(reconstruction=recon, prior=prior, diffusion=diff)
            return (recon + prior + self.diffusion_weight(t) * diff).mean(), terms
        with torch.no_grad():
            terms = self.elbo(x0, generator)
        t = torch.randint(1, self.T + 1, (x0.shape[0],), generator=generator).to(x0.device)
        x_t, eps = self._noisy(x0, self.gamma_at(t).detach(), generator)
        return ((self.predict_noise(x_t, t) - eps) ** 2).mean(), terms

    @torch.no_grad()
    def sample(self, n: int, generator=None, sampler: str = "ddim", steps: int = 50,
               eta: float = 0.0, timestep_spacing: str = DEFAULT_TIMESTEP_SPACING) -> Tensor:
        """n images (n, 1, 28, 28) in [-1, 1] from x_T ~ p(x_T) with the named sampler over
        `steps` timesteps spaced by `timestep_spacing` (the standard normal z behind x_T is the
        first draw from `generator`)."""
        from explorer.sampling import sample
        kwargs = {"eta": eta} if sampler == "ddim" else {}
        s = make_sampler(sampler, self.schedule, timestep_spacing=timestep_spacing, **kwargs)
        s.set_timesteps(steps)
        device = next(self.parameters()).device
        x_T = self.prior_from_standard(standard_normal((n, 1, 28, 28), generator, device))
        return sample(self.predict_noise, s, x_T=x_T, generator=generator).clamp(-1, 1)
