"""The exact (optimal) denoiser of a finite 2-D point set, and the quantities it makes exact.

The data distribution is the empirical one, p(x_0) = (1/N) sum_i delta(x_0 - x_i). Under
q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I) (explorer.diffusion) everything is closed-form:

    marginal   q(x_t)             = (1/N) sum_i N(x_t; sqrt(abar_t) x_i, (1 - abar_t) I)
    posterior  p(x_0 = x_i | x_t) = softmax_i(-||x_t - sqrt(abar_t) x_i||^2 / (2 (1 - abar_t)))
    Tweedie    E[x_0 | x_t]       = sum_i p(x_0 = x_i | x_t) x_i
    eps*(x_t)  = E[eps | x_t]     = (x_t - sqrt(abar_t) E[x_0 | x_t]) / sqrt(1 - abar_t)
    score      grad log q(x_t)    = -eps*(x_t) / sqrt(1 - abar_t)

eps* minimises E||eps - eps_hat(x_t, t)||^2 over all functions, so with it the diffusion loss
(`diffusion_loss`) reaches the floor no network can go below on this set. Computed in float64 on
the CPU, in chunks so that no (B, N) table exceeds CHUNK entries. Shapes: x_t is (B, 2).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from explorer.diffusion import denoising_kl, q_sample
from explorer.noise import standard_normal
from explorer.schedules import DiscreteSchedule
from explorer.toy.data import BOX

CHUNK = 1 << 22                  # most entries of one (B, N) posterior table
_CACHE_CHUNK = 1 << 16           # entries of a chunk in the hot loop (x0): stays in cache


def _points64(points) -> Tensor:
    """points as a float64 CPU tensor (N, 2), N >= 1."""
    p = torch.as_tensor(np.asarray(points) if not isinstance(points, Tensor) else points)
    p = p.detach().to(device="cpu", dtype=torch.float64)
    if p.ndim != 2 or p.shape[1] != 2 or p.shape[0] < 1:
        raise ValueError(f"points must be an (N, 2) array with N >= 1, got shape {tuple(p.shape)}")
    return p


def _steps(t, batch: int, T: int) -> Tensor:
    """t (an int or a (B,) / 0-d tensor) as a (B,) long CPU tensor, each in 1..T."""
    t = torch.as_tensor(t).detach().to("cpu").reshape(-1)
    if t.is_floating_point() or t.dtype == torch.bool:
        raise ValueError(f"t must be integer timesteps, got dtype {t.dtype}")
    t = t.long().expand(batch) if t.numel() == 1 else t.long()
    if t.numel() != batch:
        raise ValueError(f"t must be an int or a ({batch},) tensor, got {t.numel()} steps")
    if batch and not (1 <= int(t.min()) and int(t.max()) <= T):
        raise ValueError(f"t must be in 1..{T} (eps* is undefined at t = 0), got "
                         f"{int(t.min())}..{int(t.max())}")
    return t


def _logits(x: Tensor, points_aug: Tensor, root_ab: Tensor, var: Tensor) -> Tensor:
    """(b, N) log N(x; sqrt(abar) x_i, var I) up to -||x||^2 / (2 var) - log(2 pi var), a term the
    same for every i: (sqrt(abar) <x, x_i> - abar ||x_i||^2 / 2) / var, as one matmul of
    [x sqrt(abar) / var, -abar / (2 var)] (b, 3) with points_aug = [x_i, ||x_i||^2] (N, 3).
    x (b, 2), root_ab and var (b, 1) or scalars, all float64."""
    scale = root_ab / var
    x_aug = torch.cat([x * scale, (-0.5 * root_ab * scale).expand(x.shape[0], 1)], dim=1)
    return x_aug @ points_aug.T


def _exp_shifted(logits: Tensor) -> tuple[Tensor, Tensor]:
    """logits (b, N) -> w = exp(logits - m), m (b, 1) the (constant) row maxima, so w <= 1 and
    log sum_i exp(logits_i) = m + log sum_i w_i. Shifted logits are clamped at -700 first: the
    weight lost is below N e^-700 (nothing), and exp of far-out arguments (underflow, denormals)
    is 5-20 times slower on a CPU, which the tiny noise of small t hits on almost every entry.
    In place unless logits needs a gradient."""
    m = logits.detach().amax(dim=1, keepdim=True)
    if logits.requires_grad:
        return (logits - m).clamp(min=-700.0).exp(), m
    return logits.sub_(m).clamp_(min=-700.0).exp_(), m


class ExactDenoiser:
    """The optimal noise predictor for the empirical distribution of `points` under `schedule`.

    Call it as an explorer.sampling.EpsModel: eps*(x_t, t), x_t (B, 2), t an int or a (B,) long
    tensor in 1..T; the result has x_t's dtype and device (the work is done in float64 on the CPU,
    in cache-sized chunks: 625 grid points against N = 5000 take ~13 ms on 2 cores, N = 1000 ~3 ms).
    """

    def __init__(self, points, schedule: DiscreteSchedule):
        self.points = _points64(points)                                # (N, 2) x_i
        n = self.points.shape[0]
        self.points_aug = torch.cat([self.points, (self.points ** 2).sum(dim=1, keepdim=True)],
                                    dim=1)                             # (N, 3) [x_i, ||x_i||^2]
        self.points_one = torch.cat([self.points, self.points.new_ones(n, 1)], dim=1)  # (N, 3)
        self.schedule = schedule
        self.rows = max(1, CHUNK // n)                                 # rows of one chunk
        self.hot_rows = max(1, min(self.rows, _CACHE_CHUNK // n))

    def _coefficients(self, x_t: Tensor, t) -> tuple[Tensor, Tensor, Tensor]:
        """x_t as float64 CPU (B, 2), and sqrt(abar_t), 1 - abar_t as (B, 1) float64."""
        if x_t.ndim != 2 or x_t.shape[1] != 2:
            raise ValueError(f"x_t must be (B, 2), got shape {tuple(x_t.shape)}")
        x = x_t.detach().to(device="cpu", dtype=torch.float64)
        t = _steps(t, x.shape[0], self.schedule.T)
        s = self.schedule
        return x, s.sqrt_alpha_bar[t].unsqueeze(1), s.one_minus_alpha_bar[t].unsqueeze(1)

    @torch.no_grad()
    def posterior(self, x_t: Tensor, t) -> Tensor:
        """(B, N) float64: p(x_0 = x_i | x_t) ∝ N(x_t; sqrt(abar_t) x_i, (1 - abar_t) I), by a
        softmax of the log-likelihoods (stable however small the noise)."""
        x, root_ab, var = self._coefficients(x_t, t)
        out = []
        for k in range(0, x.shape[0], self.rows):
            w, _ = _exp_shifted(_logits(x[k:k + self.rows], self.points_aug,
                                        root_ab[k:k + self.rows], var[k:k + self.rows]))
            out.append(w / w.sum(dim=1, keepdim=True))                # (b, N)
        return torch.cat(out) if out else x.new_zeros(0, self.points.shape[0])

    def _x0(self, x: Tensor, root_ab: Tensor, var: Tensor) -> Tensor:
        """(B, 2) float64 E[x_0 | x_t] from float64 pieces, chunk by chunk."""
        out = x.new_empty(x.shape)
        rows = self.hot_rows
        for k in range(0, x.shape[0], rows):
            logits = _logits(x[k:k + rows], self.points_aug, root_ab[k:k + rows],
                             var[k:k + rows])                          # (b, N)
            w, _ = _exp_shifted(logits)                               # unnormalised posterior
            sums = w @ self.points_one                     # (b, 3) [sum w x_i, sum w]
            out[k:k + rows] = sums[:, :2] / sums[:, 2:]
        return out

    @torch.no_grad()
    def x0(self, x_t: Tensor, t) -> Tensor:
        """(B, 2): E[x_0 | x_t] (Tweedie), the posterior-weighted mean of the points; x_t's dtype."""
        x, root_ab, var = self._coefficients(x_t, t)
        return self._x0(x, root_ab, var).to(dtype=x_t.dtype, device=x_t.device)

    def _eps(self, x_t: Tensor, t) -> tuple[Tensor, Tensor]:
        """eps* (B, 2) and sqrt(1 - abar_t) (B, 1), float64."""
        x, root_ab, var = self._coefficients(x_t, t)
        sigma = var.sqrt()
        return (x - root_ab * self._x0(x, root_ab, var)) / sigma, sigma

    @torch.no_grad()
    def __call__(self, x_t: Tensor, t) -> Tensor:
        """(B, 2): eps*(x_t) = (x_t - sqrt(abar_t) E[x_0 | x_t]) / sqrt(1 - abar_t); x_t's dtype."""
        return self._eps(x_t, t)[0].to(dtype=x_t.dtype, device=x_t.device)

    @torch.no_grad()
    def score(self, x_t: Tensor, t) -> Tensor:
        """(B, 2): grad_x log q(x_t) = -eps*(x_t) / sqrt(1 - abar_t); x_t's dtype."""
        eps, sigma = self._eps(x_t, t)
        return (-eps / sigma).to(dtype=x_t.dtype, device=x_t.device)


def _check_t(schedule: DiscreteSchedule, t: int) -> int:
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 1 <= t <= schedule.T:
        raise ValueError(f"t must be an int in 1..{schedule.T} (at t = 0 q(x_0) is a sum of "
                         f"deltas, with no density), got {t!r}")
    return int(t)


def log_density(points, schedule: DiscreteSchedule, x: Tensor, t: int) -> Tensor:
    """(B,) float64: log q(x_t) at the points x (B, 2), the log of the mixture
    (1/N) sum_i N(x; sqrt(abar_t) x_i, (1 - abar_t) I). Differentiable in x."""
    t = _check_t(schedule, t)
    p = _points64(points)
    x = torch.as_tensor(x).to(torch.float64)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"x must be (B, 2), got shape {tuple(x.shape)}")
    points_aug = torch.cat([p, (p ** 2).sum(dim=1, keepdim=True)], dim=1).to(x.device)
    root_ab = schedule.sqrt_alpha_bar[t].to(x.device)
    var = schedule.one_minus_alpha_bar[t].to(x.device)
    rows = max(1, CHUNK // p.shape[0])
    out = []
    for k in range(0, x.shape[0], rows):
        xk = x[k:k + rows]                                              # (b, 2)
        w, m = _exp_shifted(_logits(xk, points_aug, root_ab, var))
        lse = m.squeeze(1) + w.sum(dim=1).log()                        # log sum_i exp(logits)
        out.append(lse - (xk ** 2).sum(dim=1) / (2 * var))
    return torch.cat(out) - torch.log(2 * math.pi * var) - math.log(p.shape[0])


def grid_points(resolution: int, box: float = BOX) -> Tensor:
    """(resolution^2, 2) float32: the centres of a resolution x resolution grid of cells over
    [-box, box]^2, row-major: y outer (ascending), x inner (ascending), so row r * resolution + c
    is the cell in row r (y) and column c (x)."""
    centres = (torch.arange(resolution, dtype=torch.float64) + 0.5) * (2 * box / resolution) - box
    y, x = torch.meshgrid(centres, centres, indexing="ij")
    return torch.stack([x.reshape(-1), y.reshape(-1)], dim=1).to(torch.float32)


def density_grid(points, schedule: DiscreteSchedule, t: int, resolution: int = 64,
                 box: float = BOX) -> np.ndarray:
    """(resolution, resolution) float32: q(x_t) at the cell centres of `grid_points`, for contour
    drawing. Rows run along y ascending (row 0 is y = -box), columns along x ascending."""
    x = grid_points(resolution, box).to(torch.float64)
    with torch.no_grad():
        density = log_density(points, schedule, x, t).exp()
    return density.reshape(resolution, resolution).numpy().astype(np.float32)


def _draw(points: Tensor, schedule: DiscreteSchedule, t: Tensor, generator: torch.Generator):
    """x_0 ~ points (uniform), eps ~ N(0, I) and x_t ~ q(x_t | x_0) at the steps t (B,): float32."""
    index = torch.randint(0, points.shape[0], (t.shape[0],), generator=generator)
    x0 = points[index].to(torch.float32)                               # (B, 2)
    eps = standard_normal((t.shape[0], 2), generator)                  # (B, 2)
    return eps, q_sample(schedule, x0, t, eps)


@torch.no_grad()
def eps_error_by_t(eps_model, points, schedule: DiscreteSchedule, ts, samples: int,
                   generator: torch.Generator | None = None) -> Tensor:
    """(len(ts),) float64: Monte Carlo E_{x_0 ~ points, eps}||eps - eps_model(x_t, t)||^2 at each t
    in ts (ints in 1..T), from `samples` draws of (x_0, eps) each. x_t is float32, as a network
    sees it."""
    p = _points64(points)
    out = []
    for t in ts:
        t = _check_t(schedule, t)
        steps = torch.full((samples,), t, dtype=torch.long)
        eps, x_t = _draw(p, schedule, steps, generator)
        err = (eps.double() - eps_model(x_t, steps).double()) ** 2
        out.append(err.sum(dim=1).mean())
    return torch.stack(out) if out else torch.zeros(0, dtype=torch.float64)


@torch.no_grad()
def diffusion_loss(eps_model, points, schedule: DiscreteSchedule, samples: int,
                   generator: torch.Generator | None = None, batch: int = 8192) -> float:
    """The VDM diffusion term in nats per point, sum_{t=2..T} KL(q(x_{t-1} | x_t, x_0) ||
    p(x_{t-1} | x_t)) (explorer.diffusion.denoising_kl), estimated without bias from `samples`
    draws of (x_0, t, eps) with t uniform on 2..T: (T - 1) times the mean of L_t. With
    eps_model = ExactDenoiser(points, schedule) it is the floor no network can go below here."""
    if schedule.T < 2:
        return 0.0
    p = _points64(points)
    total = 0.0
    for k in range(0, samples, batch):
        b = min(batch, samples - k)
        t = torch.randint(2, schedule.T + 1, (b,), generator=generator)
        eps, x_t = _draw(p, schedule, t, generator)
        eps_hat = eps_model(x_t, t).double()
        total += float(denoising_kl(eps.double(), eps_hat, schedule.gamma[t],
                                    schedule.gamma[t - 1]).sum())
    return (schedule.T - 1) * total / samples
