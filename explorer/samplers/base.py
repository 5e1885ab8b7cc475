"""The contract every sampler follows (diffusers-shaped): set_timesteps, add_noise, step.

A sampler turns the model's noise prediction eps_hat at (x_t, t) into a draw of x_{t_prev} from
p(x_{t_prev} | x_t); it never calls the model. The loop lives in `explorer.sampling`.

Glossary (Ho et al. 2020; Song et al. 2021, "DDIM"; a schedule's tables are indexed by t = 0..T):
    abar_t         alpha_bar_t: q(x_t | x_0) = N(sqrt(abar_t) x_0, (1 - abar_t) I)
    t_prev         the timestep the step moves to (0 after the last one); with n < T steps the
                   process is respaced: q(x_t | x_{t_prev}) = N(sqrt(alpha) x_{t_prev}, beta I) with
                   alpha = abar_t / abar_{t_prev}, beta = 1 - alpha (improved-diffusion's respacing)
    eps_hat        the model output: predicted eps of x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps
    x0_hat         predicted x_0 = (x_t - sqrt(1 - abar_t) eps_hat) / sqrt(abar_t)
"""

from __future__ import annotations

import functools
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import numpy as np
import torch
from torch import Tensor

from explorer.config import check_choice
from explorer.diffusion import q_sample
from explorer.noise import standard_normal
from explorer.schedules import DiscreteSchedule

TIMESTEP_SPACINGS: tuple[str, ...] = ("linspace", "karras")
KARRAS_RHO = 2.0   # measured on the shipped VDMs (MODELS.md), not EDM's 7: see `_karras_targets`
# what the app, `explorer.sample` and the report sample a VDM with; a bare Sampler (and DDIM
# inversion) keeps "linspace", as diffusers' schedulers do
DEFAULT_TIMESTEP_SPACING = "karras"


def spaced_timesteps(schedule: DiscreteSchedule, n: int, t_start: int | None = None,
                     spacing: str = "linspace", rho: float = KARRAS_RHO) -> tuple[int, ...]:
    """The n distinct integer timesteps from t_start (default T) down to 1, descending, that
    `Sampler.set_timesteps(n, t_start)` uses with this spacing (arguments as it checks them)."""
    t_start = schedule.T if t_start is None else t_start
    return _grid(*_grid_key(schedule, n, t_start, spacing, rho))[0]


def _grid_key(schedule: DiscreteSchedule, n: int, t_start: int, spacing: str, rho: float) -> tuple:
    """The hashable arguments of `_grid`: the log-SNR table matters only to "karras"."""
    if spacing == "linspace":
        return (None, n, t_start, spacing, 0.0)
    return (tuple(schedule.log_snr[1:t_start + 1].tolist()), n, t_start, spacing, float(rho))


def _karras_targets(log_snr: tuple[float, ...], n: int, rho: float) -> np.ndarray:
    """n fractional timesteps, descending from len(log_snr) to 1, spaced as Karras et al. (2022,
    eq. 5) space noise levels: sigma_i^(1/rho) linear in i, with sigma_t = exp(-lambda_t / 2) the
    noise-to-signal ratio of x_t and lambda_t = log SNR(t) (log_snr[t - 1]). A smaller rho puts
    more steps at the noisy end, where a few-step deterministic sampler goes wrong; as rho grows
    the steps become even in lambda (which, for the VDM's near-linear learned schedule, is close
    to even in t)."""
    log_sigma = -0.5 * np.asarray(log_snr, dtype=np.float64)          # increasing in t
    ends = np.exp(log_sigma[[-1, 0]] / rho)                # sigma_T^(1/rho), sigma_1^(1/rho)
    targets = rho * np.log(np.linspace(ends[0], ends[1], n))           # log sigma, descending
    return np.interp(targets, log_sigma, np.arange(1, len(log_snr) + 1, dtype=np.float64))


@functools.lru_cache(maxsize=64)
def _grid(log_snr: tuple[float, ...] | None, n: int, t_start: int, spacing: str,
          rho: float) -> tuple[tuple[int, ...], dict, dict]:
    """(timesteps, t -> t_prev, t_prev -> t), computed once per key (`_grid_key`); read only."""
    if spacing == "karras":
        targets = _karras_targets(log_snr, n, rho)
    else:
        targets = np.linspace(t_start, 1, n)
    # round, then make the steps distinct: step i lies in [n - i, t_start - i] and at least one
    # above step i + 1 (linspace's spacing (t_start - 1) / (n - 1) >= 1 needs no change)
    steps = np.clip(np.rint(targets).astype(np.int64), np.arange(n, 0, -1),
                    t_start - np.arange(n))
    steps[0] = t_start
    for i in range(n - 2, -1, -1):
        steps[i] = max(steps[i], steps[i + 1] + 1)
    steps = tuple(int(t) for t in steps)
    prev = dict(zip(steps, steps[1:] + (0,)))
    return steps, prev, {p: t for t, p in prev.items()}


class StepRule(NamedTuple):
    """One step t -> t_prev of a sampler as the map it is once eps_hat is known (float64):

        x0_hat  = (x_t - root_one_minus_alpha_bar eps_hat) / root_alpha_bar, clipped to [-1, 1]
                  when `clip` (eps_hat then re-derived from the clipped x0_hat)
        mean    = x0 x0_hat + xt x_t + eps eps_hat       (the mean of p(x_{t_prev} | x_t))
                  + x0_prev x0_hat'                      (a multistep solver: x0_hat' is the
                                                          x0_hat of the step before this one)
        x_{t_prev} = mean + noise z,  z ~ N(0, I)        (noise = sigma_t; 0: deterministic)

    `Sampler.step` applies it, and a page given the table of a run's rules (and its z) takes the
    same steps itself (ui/static/lib/sampler.js)."""
    t: int
    t_prev: int
    root_alpha_bar: float          # sqrt(abar_t)
    root_one_minus_alpha_bar: float  # sqrt(1 - abar_t)
    clip: bool
    x0: float
    xt: float
    eps: float
    noise: float
    x0_prev: float = 0.0           # 0 but for a multistep solver's steps after its first


@dataclass
class SamplerOutput:
    """One reverse step x_t -> x_{t_prev}; every tensor is (B, C, H, W)."""
    prev_sample: Tensor            # x_{t_prev} = mean + noise, a draw from p(x_{t_prev} | x_t)
    pred_original_sample: Tensor   # x0_hat (clipped to [-1, 1] when clip_sample)
    pred_noise: Tensor             # eps_hat matching x0_hat (the model output unless clipped)
    mean: Tensor                   # mean of p(x_{t_prev} | x_t)
    noise: Tensor                  # the scaled noise actually added (zeros when deterministic)


class StepCoefficients(NamedTuple):
    """Float64 scalars of one (respaced) step t -> t_prev."""
    alpha_bar: float               # abar_t
    alpha_bar_prev: float          # abar_{t_prev}
    one_minus_alpha_bar: float     # 1 - abar_t
    one_minus_alpha_bar_prev: float
    beta: float                    # 1 - abar_t / abar_{t_prev}, the respaced beta


class Sampler(ABC):
    """A reverse process p(x_{t_prev} | x_t) on a DiscreteSchedule, over `timesteps` (descending).

    Built with all T steps; `set_timesteps(n)` picks n of them. `config` is a JSON-ready dict and
    `from_config(config, schedule)` rebuilds the sampler (the schedule is saved with the model).
    """

    name: ClassVar[str]

    def __init__(self, schedule: DiscreteSchedule, clip_sample: bool = True,
                 timestep_spacing: str = "linspace", rho: float = KARRAS_RHO):
        self.schedule = schedule
        self.clip_sample = bool(clip_sample)   # clip x0_hat to [-1, 1] (the data range)
        # how set_timesteps(n) picks its n steps: even in t, or Karras' rho (`spaced_timesteps`)
        self.timestep_spacing = check_choice("timestep_spacing", timestep_spacing,
                                             TIMESTEP_SPACINGS)
        if not rho > 0:
            raise ValueError(f"rho must be > 0, got {rho!r}")
        self.rho = float(rho)
        self.set_timesteps(schedule.T)

    # ---- config ----
    def _extra_config(self) -> dict[str, Any]:
        """Subclass constructor arguments beyond `clip_sample`."""
        return {}

    @property
    def config(self) -> dict[str, Any]:
        """Everything needed to rebuild this sampler on the same schedule (JSON-ready)."""
        return {"name": self.name, "num_train_timesteps": self.schedule.T,
                "clip_sample": self.clip_sample, "timestep_spacing": self.timestep_spacing,
                "rho": self.rho, **self._extra_config()}

    @classmethod
    def from_config(cls, config: dict[str, Any], schedule: DiscreteSchedule) -> Sampler:
        """Rebuild from `config` (a wrong name or T raises; unknown keys raise TypeError)."""
        config = dict(config)
        name = config.pop("name", cls.name)
        if name != cls.name:
            raise ValueError(f"config is for sampler {name!r}, not {cls.name!r}")
        T = config.pop("num_train_timesteps", schedule.T)
        if T != schedule.T:
            raise ValueError(f"config was saved for T={T}, the schedule has T={schedule.T}")
        return cls(schedule, **config)

    # ---- timesteps ----
    def set_timesteps(self, num_inference_steps: int, t_start: int | None = None) -> None:
        """Use n distinct integer timesteps from t_start (default T) down to 1 (always t_start;
        1 when n >= 2), spaced by `timestep_spacing` (`spaced_timesteps`). A t_start below T
        denoises a partly noised x_{t_start} (noise-and-denoise, as diffusers' img2img
        `strength` does)."""
        T = self.schedule.T
        t_start = T if t_start is None else t_start
        if isinstance(t_start, bool) or not isinstance(t_start, int) or not 1 <= t_start <= T:
            raise ValueError(f"t_start must be an int in 1..{T}, got {t_start!r}")
        n = num_inference_steps
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= t_start:
            raise ValueError(f"num_inference_steps must be an int in 1..{t_start}, got {n!r}")
        steps, self._prev, self._next = _grid(*_grid_key(self.schedule, n, t_start,
                                                         self.timestep_spacing, self.rho))
        self.num_inference_steps = n
        # the network evaluations of a run, in order: (t, t_prev) each (`_evaluations`)
        self._plan = self.plan(steps)
        self.timesteps = torch.tensor([t for t, _ in self._plan])   # (nfe,) in the order run
        self._positions: dict[int, list[int]] = {}
        for k, (t, _) in enumerate(self._plan):
            self._positions.setdefault(t, []).append(k)
        self._cursor = 0                           # the position the next step() takes
        self._last_x0 = None                       # (position, x0_hat) of the last step taken
        # sqrt(abar_t), sqrt(1 - abar_t) as floats, read once (not gathered every step)
        roots = self.schedule.sqrt_alpha_bar.tolist()
        roots_one_minus = self.schedule.sqrt_one_minus_alpha_bar.tolist()
        self._roots = {t: (roots[t], roots_one_minus[t]) for t in steps}

    @classmethod
    def plan(cls, steps: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
        """The (t, t_prev) of each network evaluation of a run over the distinct descending
        `steps`: one a step here; a sampler of several evaluations a step lists each (Heun)."""
        return tuple(zip(steps, steps[1:] + (0,)))

    @classmethod
    def evaluations(cls, steps: int) -> int:
        """Network evaluations of a run over `steps` steps (what `nfe` is once they are set)."""
        return steps

    @property
    def nfe(self) -> int:
        """Network evaluations of a run over `timesteps` (one a step() call)."""
        return len(self._plan)

    def target(self, index: int) -> int:
        """The timestep the step at position `index` of `timesteps` moves to."""
        return self._plan[index][1]

    def resume(self, index: int, x0_before: Tensor | None = None) -> None:
        """Continue a run at position `index` of `timesteps` (a rewound run), `x0_before` being
        the x0_hat of the step before it (a multistep rule reads it; None: not known)."""
        if not 0 <= index < len(self._plan):
            raise ValueError(f"index must be in 0..{len(self._plan) - 1}, got {index}")
        self._cursor = index
        self._last_x0 = None if x0_before is None or index == 0 else (index - 1, x0_before)

    def position(self, t: int | Tensor) -> int:
        """The position in `timesteps` of the step from t: the next one in order when it is
        from t, else t's only position (a t evaluated twice must be stepped in order)."""
        t = int(t)
        k = self._cursor
        if k < len(self._plan) and self._plan[k][0] == t:
            return k
        where = self._positions.get(t)
        if where is None:
            raise ValueError(f"timestep {t} is not one of the {self.num_inference_steps} set")
        if len(where) > 1:
            raise ValueError(f"timestep {t} is evaluated {len(where)} times in a run: take the "
                             "steps of `timesteps` in order")
        return where[0]

    def previous_timestep(self, t: int | Tensor) -> int:
        """The timestep after t in `timesteps` (0 after the last)."""
        t = int(t)
        if t not in self._prev:
            raise ValueError(f"timestep {t} is not one of the {self.num_inference_steps} set")
        return self._prev[t]

    def next_timestep(self, t: int | Tensor) -> int:
        """The inverse of previous_timestep: the timestep that steps down to t (0 -> the last)."""
        t = int(t)
        if t not in self._next:
            raise ValueError(f"timestep {t} has no next timestep among those set")
        return self._next[t]

    def coefficients(self, t: int, t_prev: int) -> StepCoefficients:
        """abar_t, abar_{t_prev} and the respaced beta of the step t -> t_prev (float64)."""
        s = self.schedule
        log_alpha = float(s.log_alpha_bar[t] - s.log_alpha_bar[t_prev])
        return StepCoefficients(float(s.alpha_bar[t]), float(s.alpha_bar[t_prev]),
                                float(s.one_minus_alpha_bar[t]),
                                float(s.one_minus_alpha_bar[t_prev]), -math.expm1(log_alpha))

    # ---- forward process ----
    def add_noise(self, x0: Tensor, noise: Tensor, t: int | Tensor) -> Tensor:
        """A draw from q(x_t | x_0): sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise (Ho et al. eq. 4)."""
        return q_sample(self.schedule, x0, t, noise)

    # ---- shared pieces of step() ----
    def predict_x0(self, model_output: Tensor, t: int, x_t: Tensor) -> tuple[Tensor, Tensor]:
        """(x0_hat, eps_hat): x0_hat from eps (Ho et al. eq. 15), clipped if clip_sample, and the
        eps_hat it implies (re-derived after clipping, as improved-diffusion's DDIM does)."""
        if t not in self._roots:
            raise ValueError(f"timestep {t} is not one of the {self.num_inference_steps} set")
        root_ab, root_one_minus_ab = self._roots[t]
        x0_hat = (x_t - root_one_minus_ab * model_output) / root_ab           # (B, C, H, W)
        if not self.clip_sample:
            return x0_hat, model_output
        x0_hat = x0_hat.clamp(-1.0, 1.0)
        return x0_hat, (x_t - root_ab * x0_hat) / root_one_minus_ab

    def _rule(self, t: int, x0: float, xt: float, eps: float, variance: float,
              x0_prev: float = 0.0, t_prev: int | None = None) -> StepRule:
        """The StepRule of timestep t with these mean coefficients and variance sigma_t^2 (to
        t_prev, by default `previous_timestep(t)`)."""
        root_ab, root_one_minus_ab = self._roots[t]
        t_prev = self.previous_timestep(t) if t_prev is None else t_prev
        return StepRule(t, t_prev, root_ab, root_one_minus_ab,
                        self.clip_sample, x0, xt, eps, math.sqrt(variance), x0_prev)

    @abstractmethod
    def rule(self, t: int | Tensor) -> StepRule:
        """The step t -> t_prev of this sampler as a StepRule (t one of `timesteps`)."""

    def rule_at(self, index: int) -> StepRule:
        """The rule of the step at position `index` of `timesteps` (`rule` of its t, unless a
        sampler evaluates a t more than once)."""
        return self.rule(self._plan[index][0])

    def rules(self) -> list[StepRule]:
        """The rule of every step of `timesteps`, in the order run."""
        return [self.rule_at(k) for k in range(len(self._plan))]

    def step(self, model_output: Tensor, t: int | Tensor, x_t: Tensor,
             generator: torch.Generator | None = None) -> SamplerOutput:
        """One draw x_{t_prev} ~ p(x_{t_prev} | x_t) given eps_hat = model_output, (B, C, H, W):
        this sampler's `rule(t)` applied (the only place a step is computed)."""
        k = self.position(t)
        rule = self.rule_at(k)
        x0_hat, eps_hat = self.predict_x0(model_output, rule.t, x_t)    # (B, C, H, W) each
        mean = rule.x0 * x0_hat
        if rule.xt:
            mean = mean + rule.xt * x_t
        if rule.eps:
            mean = mean + rule.eps * eps_hat
        if rule.x0_prev:
            mean = mean + rule.x0_prev * self._previous_x0(k)
        self._last_x0 = (k, x0_hat)
        self._cursor = k + 1
        if rule.noise > 0.0:
            noise = rule.noise * self.randn_like(x_t, generator)
        else:
            noise = torch.zeros_like(x_t)
        return SamplerOutput(prev_sample=mean + noise, pred_original_sample=x0_hat,
                             pred_noise=eps_hat, mean=mean, noise=noise)

    def _previous_x0(self, index: int) -> Tensor:
        """x0_hat of the step just before position `index` (a multistep rule needs it): the
        steps of `timesteps` must be taken in order, as the loop takes them (or `resume`d)."""
        last = self._last_x0
        if last is None or last[0] != index - 1:
            raise ValueError(f"the step from t={self._plan[index][0]} needs x0_hat of the step "
                             "before it: take the steps of `timesteps` in order")
        return last[1]

    @staticmethod
    def randn_like(x: Tensor, generator: torch.Generator | None) -> Tensor:
        """Standard normal noise shaped like x, drawn from generator (on its own device)."""
        return standard_normal(x.shape, generator, x.device, x.dtype)

    @property
    def deterministic(self) -> bool:
        """True when step() adds no noise (the output depends on x_T only)."""
        return False

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.items() if k != "name")
        return f"{type(self).__name__}({args}, steps={self.num_inference_steps})"
