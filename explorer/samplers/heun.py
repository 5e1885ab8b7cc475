"""Heun's second-order method on the probability-flow ODE (Karras et al. 2022, "Elucidating the
Design Space of Diffusion-Based Generative Models", Algorithm 1 with S_churn = 0): two network
evaluations a step, the last step (into sigma = 0) one.

In the variable x~ = x_t / alpha_t (alpha_t = sqrt(abar_t)) with noise level
sigma_t = sqrt((1 - abar_t) / abar_t), the ODE is dx~/dsigma = eps_hat = (x~ - x0_hat) / sigma.
A step t -> t' (h = sigma_t' - sigma_t < 0) is
    Euler:     x~'  = x~ + h eps_hat(x~, t)                                       (Alg. 1, l. 5-6)
    corrector: x~_t' = x~ + h (eps_hat(x~, t) + eps_hat(x~', t')) / 2              (Alg. 1, l. 7-8)
The Euler step is DDIM with eta = 0. Written in x_t as StepRules (`Sampler.step` applies them),
with x0_hat the data prediction of each evaluation:
    Euler      t -> t':  x'    = (sigma~_t' / sigma~_t) x_t + alpha_t' (1 - e^{-h_lambda}) x0_hat
                         (sigma~ = sqrt(1 - abar), h_lambda the step in half log-SNR: DPM-Solver's
                         eq. 8, the same map)
    corrector t' -> t':  x_t'  = x' + c (x0_hat(x_t, t) - x0_hat(x', t')),
                         c = alpha_t' (sigma_t' - sigma_t) / (2 sigma_t')
since eps_hat(x~, t) = (x~' - x0_hat(x_t, t)) / sigma_t' once x~' is the Euler point. So the
corrector is a rule whose x0_prev is the Euler evaluation's x0_hat, at the same t' it lands on.

`timesteps` lists the evaluations, as diffusers' HeunDiscreteScheduler does:
t_0, t_1, t_1, t_2, t_2, ..., t_{n-1} (2n - 1 for n steps); step() takes them in order.
"""

from __future__ import annotations

import math

from torch import Tensor

from explorer.samplers.base import Sampler, StepRule


class HeunSampler(Sampler):
    """Heun's method (deterministic): `num_inference_steps` n steps, `nfe` = 2n - 1 evaluations,
    taken in order (a corrector reads the x0_hat of the Euler evaluation before it)."""

    name = "heun"

    @property
    def deterministic(self) -> bool:
        return True

    @classmethod
    def evaluations(cls, steps: int) -> int:
        """Euler and corrector on every step but the last (into sigma = 0): 2 steps - 1."""
        return 2 * steps - 1

    @classmethod
    def plan(cls, steps: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
        """Euler t -> t_prev, then (unless t_prev = 0) the corrector at t_prev, for each step."""
        evaluations = []
        for t, t_prev in zip(steps, steps[1:] + (0,)):
            evaluations.append((t, t_prev))
            if t_prev > 0:
                evaluations.append((t_prev, t_prev))
        return tuple(evaluations)

    def _sigma(self, t: int) -> float:
        """sigma_t = sqrt((1 - abar_t) / abar_t), the noise level of x~ = x_t / sqrt(abar_t)."""
        return math.exp(-0.5 * float(self.schedule.log_snr[t]))

    def rule(self, t: int | Tensor) -> StepRule:
        """The rule of the evaluation at t: only for a t evaluated once (t_0, or the last);
        `rule_at` names any evaluation."""
        return self.rule_at(self.position(t))

    def rule_at(self, index: int) -> StepRule:
        """Evaluation `index`: an Euler step t -> t', or the corrector at t' (t' = t)."""
        t, t_prev = self._plan[index]
        s = self.schedule
        alpha_prev = math.sqrt(float(s.alpha_bar[t_prev]))
        if t_prev == t:                                       # corrector: Euler came from t_e
            t_e = self._plan[index - 1][0]
            sigma_e, sigma = self._sigma(t_e), self._sigma(t)
            c = alpha_prev * (sigma - sigma_e) / (2.0 * sigma)
            return self._rule(t, x0=-c, xt=1.0, eps=0.0, variance=0.0, x0_prev=c, t_prev=t)
        # sigma~_t' / sigma~_t, and alpha_t' (1 - e^{-h_lambda}) = alpha_t' - keep alpha_t
        alpha = math.sqrt(float(s.alpha_bar[t]))
        keep = math.sqrt(float(s.one_minus_alpha_bar[t_prev]) / float(s.one_minus_alpha_bar[t]))
        return self._rule(t, x0=alpha_prev - keep * alpha, xt=keep, eps=0.0, variance=0.0,
                          t_prev=t_prev)
