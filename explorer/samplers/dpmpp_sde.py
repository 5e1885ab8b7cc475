"""SDE-DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++", section 5 / appendix B; diffusers'
`algorithm_type="sde-dpmsolver++"`): DPM-Solver++(2M)'s multistep data prediction on the reverse
SDE instead of the ODE, so every step but the last adds fresh noise, one network evaluation a
step.

With alpha_t = sqrt(abar_t), sigma_t = sqrt(1 - abar_t), lambda_t = log(alpha_t / sigma_t) and
a step s -> t of `timesteps` (h = lambda_t - lambda_s), x0_hat the data prediction at (x_s, s):
    first order (the first step, and the last):
        x_t = (sigma_t / sigma_s) e^{-h} x_s + alpha_t (1 - e^{-2h}) x0_hat
              + sigma_t sqrt(1 - e^{-2h}) z,                              z ~ N(0, I)
    second order, with x0_hat' from the step before (h' = lambda_s - lambda_s', r = h' / h):
        D   = (1 + 1 / (2 r)) x0_hat - 1 / (2 r) x0_hat'                    ("midpoint")
        x_t = (sigma_t / sigma_s) e^{-h} x_s + alpha_t (1 - e^{-2h}) D + sigma_t sqrt(1 - e^{-2h}) z
The first-order step is DDIM with eta = 1 (DDPM's posterior on these timesteps) written in
lambda. The last step reaches t = 0 (h = inf): x_0 = x0_hat, no noise, as diffusers'
`final_sigmas_type="zero"`.
"""

from __future__ import annotations

import math

from torch import Tensor

from explorer.samplers.base import StepRule
from explorer.samplers.dpmpp import DPMSolverPP2MSampler


class DPMSolverPP2MSDESampler(DPMSolverPP2MSampler):
    """SDE-DPM-Solver++(2M): stochastic; its steps must be taken in order (`StepRule.x0_prev`)."""

    name = "dpmpp2m_sde"

    @property
    def deterministic(self) -> bool:
        return False

    def rule(self, t: int | Tensor) -> StepRule:
        """The step t -> t_prev: first order on the first and last steps, midpoint between."""
        t = int(t)
        t_prev = self.previous_timestep(t)
        s = self.schedule
        alpha_prev = math.sqrt(float(s.alpha_bar[t_prev]))
        sigma, sigma_prev = (math.sqrt(float(s.one_minus_alpha_bar[u])) for u in (t, t_prev))
        lam = self._lambda(t)
        h = self._lambda(t_prev) - lam
        if not math.isfinite(h):                                 # into t = 0: x_0 = x0_hat
            return self._rule(t, x0=alpha_prev, xt=0.0, eps=0.0, variance=0.0)
        keep = sigma_prev / sigma * math.exp(-h)
        to_d = -alpha_prev * math.expm1(-2.0 * h)                # alpha_t (1 - e^{-2h})
        variance = sigma_prev ** 2 * -math.expm1(-2.0 * h)       # sigma_t^2 (1 - e^{-2h})
        if t == int(self.timesteps[0]):
            return self._rule(t, x0=to_d, xt=keep, eps=0.0, variance=variance)
        r = (lam - self._lambda(self.next_timestep(t))) / h
        return self._rule(t, x0=to_d * (1.0 + 0.5 / r), xt=keep, eps=0.0, variance=variance,
                          x0_prev=-to_d * 0.5 / r)
