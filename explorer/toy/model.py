"""The 2-D playground's VDM: the image VDM's ELBO (explorer.models.vdm) on points in the plane,
with a small MLP for eps_theta(x_t, t) that trains in seconds on the CPU.

The three -ELBO terms per point (nats), as `explorer.diffusion` defines them:
    reconstruction  -log p(x_0 | x_1), Gaussian decoder N(x_1 / alpha_1, exp(gamma_1) I)
                    (continuous data: a density, so it may be negative)
    prior           KL(q(x_T | x_0) || N(0, I))
    diffusion       sum_{t=2..T} KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t))

The network sees the step through gamma_t = -log SNR(t), not t, so the linear, cosine and learned
schedules share one time embedding. Shapes: x is (B, 2), t is (B,) long in 1..T.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from explorer import diffusion
from explorer.config import ELBOTerms, check_choice
from explorer.noise import standard_normal
from explorer.schedules import (
    SCHEDULES,
    DiscreteSchedule,
    LearnedGamma,
    TabulatedSchedule,
    make_schedule,
)

GAMMA_HIDDEN = 64                        # hidden units of the learned schedule's monotone network
T_DRAWS: tuple[str, ...] = ("uniform", "log_snr")


@dataclass(frozen=True)
class ToyConfig:
    schedule: str = "linear"             # noise schedule: linear | cosine | learned
    T: int = 1000                        # number of diffusion steps
    width: int = 128                     # MLP hidden width
    depth: int = 3                       # MLP hidden layers
    frequencies: int = 16                # sin/cos features of gamma_t (the time embedding)
    gamma_min: float = -9.2              # learned schedule: initial gamma_1 (linear's is -9.21)
    gamma_max: float = 10.0              # learned schedule: initial gamma_T (linear's is 10.1)
    t_draw: str = "log_snr"              # the diffusion term's step: uniform (t ~ U{2..T}, as the
                                         # image VDM) | log_snr (P(t) ∝ gamma_t - gamma_{t-1}, even
                                         # in log-SNR; fixed schedules, the learned one is uniform)

    def __post_init__(self):
        check_choice("schedule", self.schedule, SCHEDULES)
        check_choice("t_draw", self.t_draw, T_DRAWS)
        if self.T < 2:
            raise ValueError("T must be at least 2")
        if self.width < 1 or self.depth < 1 or self.frequencies < 1:
            raise ValueError("width, depth and frequencies must be at least 1")
        if not self.gamma_min < self.gamma_max:
            raise ValueError("gamma_min must be below gamma_max (SNR falls with t)")


class GammaEmbedding(nn.Module):
    """gamma (B,) -> [sin(w_k gamma), cos(w_k gamma)] (B, 2K), w_k geometric from 1/16 to 16 per
    unit of gamma: the slowest is near-linear over a schedule's range (about 20), the fastest
    turns a few tenths of a radian a step of a 1000-step schedule."""

    def __init__(self, frequencies: int):
        super().__init__()
        w = torch.exp(torch.linspace(math.log(1 / 16), math.log(16.0), frequencies))
        self.register_buffer("w", w, persistent=False)

    def forward(self, gamma: Tensor) -> Tensor:
        angle = gamma.reshape(-1, 1) * self.w                          # (B, K)
        return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)  # (B, 2K)


class ToyVDM(TabulatedSchedule, nn.Module):
    """x_0 (B, 2) <-> x_T ~ N(0, I) through T Gaussian steps; eps_theta is an MLP on
    [x_t, embedding(gamma_t)] with SiLU, its output layer zero so eps_hat starts at 0."""

    kind = "toy"
    config_cls = ToyConfig

    def __init__(self, config: ToyConfig = ToyConfig()):
        super().__init__()
        self.config = config
        self.T = config.T
        self.gamma = (LearnedGamma(config.gamma_min, config.gamma_max, hidden=GAMMA_HIDDEN)
                      if config.schedule == "learned" else None)
        self._fixed = None if self.gamma is not None else make_schedule(config.schedule, config.T)
        self._table: DiscreteSchedule | None = self._fixed
        # gamma_0..gamma_T as float32 for the ELBO (gamma_0 = -inf is never read)
        self._gamma32 = None if self._fixed is None else self._fixed.gamma.to(torch.float32)
        # P(t) of the diffusion term's step t in 2..T as a CDF (None: uniform in t)
        self._t_cdf = self._t_prob = None
        if self._fixed is not None and config.t_draw == "log_snr":
            dg = torch.diff(self._fixed.gamma[1:])                        # (T-1,) gamma_t - gamma_{t-1}
            self._t_prob = (dg / dg.sum()).to(torch.float32)              # P(t), t = 2..T
            self._t_cdf = torch.cumsum(dg, 0) / dg.sum()
        self.embed = GammaEmbedding(config.frequencies)
        layers, width = [], 2 + 2 * config.frequencies
        for _ in range(config.depth):
            layers += [nn.Linear(width, config.width), nn.SiLU()]
            width = config.width
        out = nn.Linear(width, 2)
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)
        self.net = nn.Sequential(*layers, out)

    # ---- the schedule: `schedule`, `forget_schedule`, `train`, `load_state_dict` come from
    # explorer.schedules.TabulatedSchedule ----

    def gamma_at(self, t: Tensor) -> Tensor:
        """gamma_t = -log SNR(t) for (B,) steps t in 1..T, float32, differentiable if learned."""
        if self.gamma is None:
            return self._gamma32[t.cpu()].to(t.device)
        return self.gamma(LearnedGamma.u_of_t(t, self.T))

    # ---- the network ----

    def predict_noise(self, x_t: Tensor, t: Tensor) -> Tensor:
        """eps_theta(x_t, t): (B, 2), (B,) long in 1..T -> (B, 2)."""
        return self.eps_at_gamma(x_t, self.gamma_at(t))

    def eps_at_gamma(self, x_t: Tensor, gamma_t: Tensor) -> Tensor:
        """eps_theta at (B, 2) points and their (B,) gammas -> (B, 2)."""
        features = torch.cat([x_t, self.embed(gamma_t.to(x_t.dtype))], dim=1)  # (B, 2 + 2K)
        return self.net(features)

    # ---- the ELBO ----

    def _stratified_t(self, batch: int, device, generator) -> tuple[Tensor, Tensor | None]:
        """(B,) steps in 2..T from a low-discrepancy uniform draw (Kingma et al. 2021, App. I),
        mapped through P(t)'s inverse CDF when t_draw is log_snr; and P(t) (B,) then, else None."""
        u0 = torch.rand((), generator=generator)
        u = (u0 + torch.arange(batch) / batch) % 1.0
        if self._t_cdf is None:
            return (2 + (u * (self.T - 1)).long()).clamp(max=self.T).to(device), None
        i = torch.searchsorted(self._t_cdf, u.to(torch.float64), right=True).clamp(max=self.T - 2)
        return (2 + i).to(device), self._t_prob[i].to(device)

    def elbo(self, x0: Tensor, generator=None) -> ELBOTerms:
        """-ELBO terms per point (B,), nats: reconstruction, prior, and the diffusion term as its
        unbiased estimate L_t / P(t) at one stratified t per point: (T - 1) L_t for t ~ U{2..T},
        or t drawn evenly in log-SNR (t_draw)."""
        B = x0.shape[0]
        t, p_t = self._stratified_t(B, x0.device, generator)                     # (B,), (B,)
        ends = torch.tensor([1, self.T], device=x0.device)
        gammas = self.gamma_at(torch.cat([t, t - 1, ends]))    # one call: t, t - 1, 1 and T
        gamma_t, gamma_prev, gamma_1, gamma_T = gammas[:B], gammas[B:2 * B], gammas[-2], gammas[-1]
        eps = standard_normal((2, B, 2), generator, x0.device, x0.dtype)         # (2, B, 2)
        # reconstruction: x_1 ~ q(x_1 | x_0), then -log p(x_0 | x_1)
        g1 = gamma_1.expand(B).reshape(B, 1)
        x1 = diffusion.mix(torch.sqrt(torch.sigmoid(-g1)), torch.sqrt(torch.sigmoid(g1)), x0, eps[0])
        recon = diffusion.gaussian_reconstruction_nll(x0, x1, g1)
        prior = diffusion.prior_kl(x0, gamma_T.expand(B))
        # diffusion: x_t ~ q(x_t | x_0), then (T - 1) * L_t
        g = gamma_t.reshape(B, 1)
        x_t = diffusion.mix(torch.sqrt(torch.sigmoid(-g)), torch.sqrt(torch.sigmoid(g)), x0, eps[1])
        eps_hat = self.eps_at_gamma(x_t, gamma_t)                                # (B, 2)
        l_t = diffusion.denoising_kl(eps[1], eps_hat, gamma_t, gamma_prev)       # (B,)
        diff = (self.T - 1) * l_t if p_t is None else l_t / p_t
        return ELBOTerms(reconstruction=recon, prior=prior, diffusion=diff)

    def training_loss(self, x0: Tensor, generator=None) -> tuple[Tensor, ELBOTerms]:
        """The scalar to minimise, the mean -ELBO, and its terms per point."""
        terms = self.elbo(x0, generator)
        return terms.total.mean(), terms
