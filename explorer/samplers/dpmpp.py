"""DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++: Fast Solver for Guided Sampling of Diffusion
Probabilistic Models", Algorithm 2): a multistep solver of the probability-flow ODE in data
prediction, second order from its second step on, one network evaluation a step.

With alpha_t = sqrt(abar_t), sigma_t = sqrt(1 - abar_t) and lambda_t = log(alpha_t / sigma_t)
(half the log-SNR), a step s -> t of `timesteps` with h = lambda_t - lambda_s and x0_hat the data
prediction at (x_s, s):
    first order (the first step, and the last):
        x_t = (sigma_t / sigma_s) x_s - alpha_t (e^{-h} - 1) x0_hat                    (eq. 8)
    second order, with x0_hat' from the step before (at s', h' = lambda_s - lambda_s'), r = h'/h:
        D   = (1 + 1 / (2 r)) x0_hat - 1 / (2 r) x0_hat'
        x_t = (sigma_t / sigma_s) x_s - alpha_t (e^{-h} - 1) D                    (Algorithm 2)
The first-order step is DDIM with eta = 0 written in lambda. The last step reaches t = 0, where
sigma_0 = 0 and lambda_0 = inf: x_0 = x0_hat, as diffusers' `final_sigmas_type="zero"` (with
which its DPMSolverMultistepScheduler also takes that step at first order). The solver needs only
lambda at the chosen timesteps, so any schedule (the learned one too) and either spacing serves.
"""

from __future__ import annotations

import math

from torch import Tensor

from explorer.samplers.base import Sampler, StepRule


class DPMSolverPP2MSampler(Sampler):
    """DPM-Solver++(2M): deterministic; its steps must be taken in order (each after the first
    reads the x0_hat of the step before: `StepRule.x0_prev`)."""

    name = "dpmpp2m"

    @property
    def deterministic(self) -> bool:
        return True

    def _lambda(self, t: int) -> float:
        """lambda_t = log(alpha_t / sigma_t) = log SNR(t) / 2 (inf at t = 0)."""
        return 0.5 * float(self.schedule.log_snr[t])

    def rule(self, t: int | Tensor) -> StepRule:
        """The step t -> t_prev: eq. 8 on the first and last steps, Algorithm 2 between."""
        t = int(t)
        t_prev = self.previous_timestep(t)
        s = self.schedule
        alpha_prev = math.sqrt(float(s.alpha_bar[t_prev]))
        sigma, sigma_prev = (math.sqrt(float(s.one_minus_alpha_bar[u])) for u in (t, t_prev))
        # -alpha_t (e^{-h} - 1), and sigma_t / sigma_s; at t_prev = 0: h = inf, x_0 = x0_hat
        lam = self._lambda(t)
        h = self._lambda(t_prev) - lam
        to_d = -alpha_prev * math.expm1(-h) if math.isfinite(h) else alpha_prev
        keep = sigma_prev / sigma
        first = t == int(self.timesteps[0]) or t_prev == 0
        if first:
            return self._rule(t, x0=to_d, xt=keep, eps=0.0, variance=0.0)
        r = (lam - self._lambda(self.next_timestep(t))) / h
        return self._rule(t, x0=to_d * (1.0 + 0.5 / r), xt=keep, eps=0.0, variance=0.0,
                          x0_prev=-to_d * 0.5 / r)
