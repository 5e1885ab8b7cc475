"""Noise schedules of a variance-preserving diffusion, all written through gamma.

Glossary (Kingma et al. 2021, "Variational Diffusion Models"; Ho et al. 2020):
    gamma_t      = -log SNR(t)                      (the one quantity a schedule defines)
    alpha_bar_t  = sigmoid(-gamma_t)                q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)
    sigma_t^2    = 1 - alpha_bar_t = sigmoid(gamma_t)
    SNR(t)       = alpha_bar_t / (1 - alpha_bar_t) = exp(-gamma_t)
    alpha_t      = alpha_bar_t / alpha_bar_{t-1}    q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, (1 - alpha_t) I)
    beta_t       = 1 - alpha_t

Discrete time runs t = 0, 1, ..., T: t = 0 is the data (alpha_bar_0 = 1, gamma_0 = -inf) and every
table below has T + 1 entries, indexed by t. Tables are computed once, in float64.
"""

from __future__ import annotations

import copy
import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from explorer.config import check_choice

ScheduleName = Literal["linear", "cosine", "learned"]
SCHEDULES: tuple[str, ...] = ("linear", "cosine", "learned")


class DiscreteSchedule:
    """The coefficient tables of one discrete VP schedule, each a float64 tensor of shape (T+1,).

    Build with `from_gamma` (or `linear_schedule`, `cosine_schedule`, `learned_schedule`).
    `extract(table, t, like)` gathers per-example coefficients broadcastable against `like`.
    """

    def __init__(self, gamma: Tensor, name: str = "custom"):
        gamma = gamma.detach().to(torch.float64).cpu()
        if gamma.ndim != 1 or gamma.numel() < 1:
            raise ValueError("gamma must be a 1-D tensor of gamma_1..gamma_T (T >= 1)")
        if not torch.all(torch.isfinite(gamma)):
            raise ValueError("gamma_t must be finite for t = 1..T")
        if not torch.all(torch.diff(gamma) > 0):
            raise ValueError("gamma_t must increase strictly with t (SNR must fall)")
        self.name = name
        self.T = int(gamma.numel())
        inf = torch.tensor([math.inf], dtype=torch.float64)
        # ---- marginals q(x_t | x_0) ----
        self.gamma = torch.cat([-inf, gamma])                         # (T+1,) gamma_0 = -inf
        self.log_snr = -self.gamma                                    # log SNR(t)
        self.snr = torch.exp(self.log_snr)                            # SNR(0) = inf
        self.log_alpha_bar = F.logsigmoid(-self.gamma)                # log alpha_bar_t
        self.alpha_bar = torch.exp(self.log_alpha_bar)                # alpha_bar_0 = 1
        self.one_minus_alpha_bar = torch.sigmoid(self.gamma)          # sigma_t^2, exact near 0
        self.sqrt_alpha_bar = torch.sqrt(self.alpha_bar)
        self.sqrt_one_minus_alpha_bar = torch.sqrt(self.one_minus_alpha_bar)
        # ---- one-step transitions q(x_t | x_{t-1}) ----
        log_alpha = torch.zeros_like(self.log_alpha_bar)
        log_alpha[1:] = self.log_alpha_bar[1:] - self.log_alpha_bar[:-1]
        self.alpha = torch.exp(log_alpha)                             # alpha_0 = 1
        self.beta = -torch.expm1(log_alpha)                           # 1 - alpha_t, beta_0 = 0
        # ---- posterior q(x_{t-1} | x_t, x_0) (Ho et al. eq. 6-7); entries at t = 0 unused ----
        prev = torch.cat([torch.ones(1, dtype=torch.float64), self.alpha_bar[:-1]])
        prev_one_minus = torch.cat([torch.zeros(1, dtype=torch.float64),
                                    self.one_minus_alpha_bar[:-1]])
        denom = self.one_minus_alpha_bar.clone()
        denom[0] = 1.0
        self.alpha_bar_prev = prev                                    # alpha_bar_{t-1}
        self.posterior_variance = self.beta * prev_one_minus / denom  # beta~_t, beta~_1 = 0
        self.posterior_log_variance_clipped = torch.log(torch.cat(
            [self.posterior_variance[2:3], self.posterior_variance[2:3],
             self.posterior_variance[2:]])) if self.T >= 2 else torch.log(
                 self.posterior_variance.clamp_min(1e-20))
        self.posterior_mean_coef_x0 = torch.sqrt(prev) * self.beta / denom
        self.posterior_mean_coef_xt = torch.sqrt(self.alpha) * prev_one_minus / denom

    @classmethod
    def from_alpha_bar(cls, alpha_bar: Tensor, name: str = "custom") -> "DiscreteSchedule":
        """From alpha_bar_1..alpha_bar_T, shape (T,)."""
        alpha_bar = alpha_bar.to(torch.float64)
        return cls(torch.log1p(-alpha_bar) - torch.log(alpha_bar), name=name)

    @staticmethod
    def extract(table: Tensor, t: Tensor | int, like: Tensor) -> Tensor:
        """table[t] as like's dtype/device, shaped (B, 1, ..., 1) to broadcast against like."""
        t = torch.as_tensor(t, dtype=torch.long).reshape(-1).cpu()
        out = table[t].to(dtype=like.dtype, device=like.device)
        return out.reshape(-1, *([1] * (like.ndim - 1)))

    def state_dict(self) -> dict[str, Tensor]:
        """The defining table gamma_1..gamma_T (enough to rebuild every other table)."""
        return {"gamma": self.gamma[1:].clone()}

    def __repr__(self) -> str:
        return (f"DiscreteSchedule({self.name!r}, T={self.T}, "
                f"log_snr_1={self.log_snr[1]:.2f}, log_snr_T={self.log_snr[-1]:.2f})")


def linear_schedule(T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02,
                    max_beta: float = 0.999) -> DiscreteSchedule:
    """Ho et al. (2020): beta_t linear from beta_start to beta_end; alpha_bar_t = prod (1 - beta).
    For T != 1000 both ends scale by 1000/T (as improved-diffusion does), clipped to max_beta."""
    scale = 1000.0 / T
    betas = torch.linspace(scale * beta_start, scale * beta_end, T, dtype=torch.float64)
    betas = betas.clamp(max=max_beta)
    return DiscreteSchedule.from_alpha_bar(torch.cumprod(1.0 - betas, dim=0), name="linear")


def cosine_schedule(T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> DiscreteSchedule:
    """Nichol & Dhariwal (2021): alpha_bar(t) = f(t)/f(0), f(t) = cos^2((t/T + s)/(1 + s) pi/2),
    with beta_t clipped to max_beta."""
    steps = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=max_beta)
    return DiscreteSchedule.from_alpha_bar(torch.cumprod(1.0 - betas, dim=0), name="cosine")


class PositiveLinear(nn.Linear):
    """A linear layer with non-negative weights |W|: monotone non-decreasing in its input."""

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight.abs(), self.bias)


class LearnedGamma(nn.Module):
    """Learned monotone gamma(u) = -log SNR(u), u in [0, 1] (Kingma et al. 2021, App. H).

    gamma(u) = gamma_min + (gamma_max - gamma_min) * (g(u) - g(0)) / (g(1) - g(0)), where g is a
    monotone network (linear + sigmoid MLP with positive weights); gamma_min and gamma_max are
    learned too. Discrete step t in 1..T sits at u = (t - 1) / (T - 1).
    """

    def __init__(self, gamma_min: float = -13.3, gamma_max: float = 5.0, hidden: int = 1024):
        super().__init__()
        self.gamma_min = nn.Parameter(torch.tensor(float(gamma_min)))
        self.gamma_max = nn.Parameter(torch.tensor(float(gamma_max)))
        self.l1 = PositiveLinear(1, 1)
        self.l2 = PositiveLinear(1, hidden)
        self.l3 = PositiveLinear(hidden, 1, bias=False)
        self.hidden = hidden
        with torch.no_grad():  # start close to a straight line in gamma (a linear log-SNR)
            self.l1.weight.fill_(1.0)
            self.l1.bias.zero_()
            self.l3.weight.mul_(0.1)

    def _g(self, u: Tensor) -> Tensor:
        h = self.l1(u)
        return h + self.l3(2.0 * (torch.sigmoid(self.l2(2.0 * (u - 0.5))) - 0.5)) / self.hidden

    def forward(self, u: Tensor) -> Tensor:
        """gamma(u) for u of any shape, same shape out."""
        shape = u.shape
        u = u.reshape(-1, 1).to(self.gamma_min.dtype)
        ends = torch.tensor([[0.0], [1.0]], dtype=u.dtype, device=u.device)
        g = self._g(torch.cat([u, ends]))
        g_u, g_0, g_1 = g[:-2], g[-2], g[-1]
        frac = (g_u - g_0) / (g_1 - g_0)
        return (self.gamma_min + (self.gamma_max - self.gamma_min) * frac).reshape(shape)

    @staticmethod
    def u_of_t(t: Tensor, T: int) -> Tensor:
        """Position u in [0, 1] of discrete step t in 1..T."""
        return (t.to(torch.float32) - 1.0) / max(T - 1, 1)


def learned_schedule(gamma: LearnedGamma, T: int = 1000) -> DiscreteSchedule:
    """Tabulate a learned gamma at the T discrete steps (no gradients), on the CPU like every
    table (`extract` moves the entries it picks to the tensor they meet)."""
    with torch.no_grad():
        u = LearnedGamma.u_of_t(torch.arange(1, T + 1), T).to(torch.float64)
        values = copy.deepcopy(gamma).cpu().double()(u)  # float64; the shared module is untouched
    return DiscreteSchedule(values, name="learned")


class TabulatedSchedule:
    """For a model (an nn.Module) with `config.schedule`, `T` and `gamma` (a LearnedGamma or
    None) that set `self._table` (its fixed schedule's tables, or None) in __init__: `schedule`,
    its DiscreteSchedule, tabulated once, or again while a learned schedule trains or after its
    weights change (`train`, `load_state_dict`, `forget_schedule`). Put it before nn.Module
    among the bases."""

    @property
    def schedule(self) -> DiscreteSchedule:
        """The discrete tables of this model's schedule. Read once into a local: another thread
        (a trainer updating a weight average) may drop the table meanwhile."""
        table = self._table
        if table is None or (self.training and self.gamma is not None):
            table = self._table = make_schedule(self.config.schedule, self.T, self.gamma)
        return table

    def forget_schedule(self) -> None:
        """Drop the tabulated schedule, after a learned gamma's weights changed in place (the
        weight average a trainer keeps); the next `schedule` tabulates it again."""
        if self.gamma is not None:
            self._table = None

    def train(self, mode: bool = True):
        self.forget_schedule()
        return super().train(mode)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        self.forget_schedule()
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


def make_schedule(name: str, T: int = 1000, gamma: LearnedGamma | None = None) -> DiscreteSchedule:
    """One of SCHEDULES by name ('learned' needs the trained `gamma` module)."""
    check_choice("schedule", name, SCHEDULES)
    if name == "linear":
        return linear_schedule(T)
    if name == "cosine":
        return cosine_schedule(T)
    if gamma is None:
        raise ValueError("the learned schedule needs a trained LearnedGamma module")
    return learned_schedule(gamma, T)
