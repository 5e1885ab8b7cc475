"""DDIM sampling and inversion (Song et al. 2021, "Denoising Diffusion Implicit Models").

p(x_{t_prev} | x_t) = q_sigma(x_{t_prev} | x_t, x0_hat)                                  (eq. 7, 10)
                    = N(sqrt(abar_{t_prev}) x0_hat + sqrt(1 - abar_{t_prev} - sigma_t^2) eps_hat,
                        sigma_t^2 I)                                                      (eq. 12)
sigma_t(eta)^2 = eta^2 (1 - abar_{t_prev}) / (1 - abar_t) (1 - abar_t / abar_{t_prev})     (eq. 16)
eta = 0 is the deterministic DDIM (an Euler step of the probability-flow ODE, eq. 13-14);
eta = 1 is DDPM with the "fixed_small" variance on the same timesteps.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from explorer.diffusion import mix, x0_from_eps
from explorer.samplers.base import KARRAS_RHO, Sampler, SamplerOutput, StepRule
from explorer.schedules import DiscreteSchedule


class DDIMSampler(Sampler):
    """DDIM with stochasticity eta >= 0 on any timesteps; `invert_step` runs eta = 0 upwards."""

    name = "ddim"

    def __init__(self, schedule: DiscreteSchedule, eta: float = 0.0, clip_sample: bool = True,
                 timestep_spacing: str = "linspace", rho: float = KARRAS_RHO):
        if not eta >= 0.0:
            raise ValueError(f"eta must be >= 0, got {eta!r}")
        self.eta = float(eta)
        super().__init__(schedule, clip_sample, timestep_spacing, rho)

    def _extra_config(self) -> dict[str, Any]:
        return {"eta": self.eta}

    @property
    def deterministic(self) -> bool:
        return self.eta == 0.0

    def rule(self, t: int | Tensor) -> StepRule:
        """The step t -> t_prev: p(x_{t_prev} | x_t) of eq. 12."""
        t = int(t)
        # 1. the step t -> t_prev; abar_t is Song et al.'s alpha_t
        t_prev = self.previous_timestep(t)
        c = self.coefficients(t, t_prev)
        # 2. "predicted x_0" of eq. 12 (eq. 9 solved for x_0), clipped, and eps_hat re-derived
        # from it: Sampler.predict_x0
        # 3. sigma_t(eta) (eq. 16); eta = 1 gives the DDPM posterior variance beta~_t
        variance = self.eta ** 2 * c.one_minus_alpha_bar_prev / c.one_minus_alpha_bar * c.beta
        # 4. "direction pointing to x_t" of eq. 12: sqrt(1 - abar_{t_prev} - sigma_t^2) eps_hat
        direction = math.sqrt(max(c.one_minus_alpha_bar_prev - variance, 0.0))
        # 5. mean of eq. 12: sqrt(abar_{t_prev}) x0_hat + direction; 6. "random noise" of
        # eq. 12: sigma_t z, z ~ N(0, I) (Sampler.step)
        return self._rule(t, x0=math.sqrt(c.alpha_bar_prev), xt=0.0, eps=direction,
                          variance=variance)

    def invert_step(self, model_output: Tensor, t: int | Tensor, x_t: Tensor) -> SamplerOutput:
        """Deterministic DDIM inversion x_t -> x_{t_next}, t_next = next_timestep(t) (eq. 12 with
        sigma = 0, run upwards):
            x_{t_next} = sqrt(abar_{t_next}) x0_hat + sqrt(1 - abar_{t_next}) eps_hat.

        model_output is eps_hat at (x_t, t); at t = 0 (x_t is the data) pass eps_hat at
        (x_0, t_next).
        Never clips (clipping would break invertibility). `prev_sample` holds x_{t_next}.
        """
        t = int(t)
        # 1. the step t -> t_next (the reverse of the sampling step t_next -> t)
        t_next = self.next_timestep(t)
        c = self.coefficients(t_next, t)                   # alpha_bar = abar_{t_next}

        # 2. x0_hat from eps_hat (eq. 9); at t = 0 the sample is x_0 itself
        x0_hat = x_t if t == 0 else x0_from_eps(self.schedule, x_t, t, model_output)

        # 3. x_{t_next} = sqrt(abar_{t_next}) x0_hat + sqrt(1 - abar_{t_next}) eps_hat (eq. 12)
        x_next = mix(math.sqrt(c.alpha_bar), math.sqrt(c.one_minus_alpha_bar), x0_hat, model_output)
        return SamplerOutput(prev_sample=x_next, pred_original_sample=x0_hat,
                             pred_noise=model_output, mean=x_next, noise=torch.zeros_like(x_t))
