"""DDPM ancestral sampling (Ho et al. 2020, Algorithm 2), on all T steps or a respaced subset.

p(x_{t_prev} | x_t) = N(mu~(x_t, x0_hat), sigma_t^2 I): the posterior q(x_{t_prev} | x_t, x_0) of
the (respaced) forward process at x_0 = x0_hat, with sigma_t^2 fixed (Ho et al. section 3.2):
    "fixed_small"  sigma_t^2 = beta~_t = (1 - abar_{t_prev}) / (1 - abar_t) beta_t   (eq. 7)
    "fixed_large"  sigma_t^2 = beta_t
With n < T steps, beta_t = 1 - abar_t / abar_{t_prev} (improved-diffusion's respacing).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from torch import Tensor

from explorer.config import check_choice
from explorer.samplers.base import KARRAS_RHO, Sampler, StepRule
from explorer.schedules import DiscreteSchedule

VarianceType = Literal["fixed_small", "fixed_large"]
VARIANCE_TYPES: tuple[str, ...] = ("fixed_small", "fixed_large")


class DDPMSampler(Sampler):
    """Ancestral sampling x_{t_prev} ~ q(x_{t_prev} | x_t, x0_hat) with a fixed variance."""

    name = "ddpm"

    def __init__(self, schedule: DiscreteSchedule, variance_type: VarianceType = "fixed_small",
                 clip_sample: bool = True, timestep_spacing: str = "linspace",
                 rho: float = KARRAS_RHO):
        self.variance_type = check_choice("variance_type", variance_type, VARIANCE_TYPES)
        super().__init__(schedule, clip_sample, timestep_spacing, rho)

    def _extra_config(self) -> dict[str, Any]:
        return {"variance_type": self.variance_type}

    def rule(self, t: int | Tensor) -> StepRule:
        """The step t -> t_prev: p(x_{t_prev} | x_t) = N(mu~_t(x_t, x0_hat), sigma_t^2 I)."""
        t = int(t)
        # 1. the step t -> t_prev and its (respaced) coefficients
        t_prev = self.previous_timestep(t)
        c = self.coefficients(t, t_prev)
        alpha = 1.0 - c.beta                                   # abar_t / abar_{t_prev}
        # 2. x0_hat from eps_hat (Ho et al. eq. 15), clipped: Sampler.predict_x0
        # 3. posterior mean mu~_t(x_t, x0_hat) of q(x_{t_prev} | x_t, x_0) (Ho et al. eq. 7)
        coef_x0 = math.sqrt(c.alpha_bar_prev) * c.beta / c.one_minus_alpha_bar
        coef_xt = math.sqrt(alpha) * c.one_minus_alpha_bar_prev / c.one_minus_alpha_bar
        # 4. variance sigma_t^2: beta~_t (eq. 7) or beta_t (section 3.2); 0 into x_0 (Alg. 2: z = 0)
        if t_prev == 0:
            variance = 0.0
        elif self.variance_type == "fixed_small":
            variance = c.beta * c.one_minus_alpha_bar_prev / c.one_minus_alpha_bar
        else:
            variance = c.beta
        # 5. x_{t_prev} = mu~_t + sigma_t z, z ~ N(0, I) (Algorithm 2, line 4): Sampler.step
        return self._rule(t, x0=coef_x0, xt=coef_xt, eps=0.0, variance=variance)
