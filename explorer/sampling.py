"""The sampling loops: the model predicts eps_hat, a Sampler steps, and the loop yields every step.

Like improved-diffusion's p_sample_loop_progressive, `sample_progressive` is a generator: the UI
streams its DenoiseSteps, `sample` just drains it. DDIM inversion (x_0 -> x_T) and decoding
(x_T -> x_0) are the deterministic eta = 0 pair. Shapes: x is (B, C, H, W), t is (B,) long.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator, Sequence, Union

import numpy as np
import torch
from torch import Tensor

from explorer.noise import standard_normal
from explorer.samplers import DDIMSampler, Sampler
from explorer.schedules import DiscreteSchedule

EpsModel = Callable[[Tensor, Tensor], Tensor]
"""eps_hat = model(x_t, t): x_t (B, C, H, W) and t (B,) long in 1..T -> eps_hat (B, C, H, W)."""
StepGenerator = Union[torch.Generator, Callable[[int], torch.Generator], None]
"""One generator for a whole run, or step index -> that step's generator (-1: the draw of x_T)."""


@dataclass
class DenoiseStep:
    """One step x_t -> x_{t_prev} of the reverse process; tensors are (B, C, H, W)."""
    index: int                # 0 .. nfe-1, in the order run
    t: int                    # current timestep
    t_prev: int               # the timestep stepped to (0 on the last step; t itself on the
                              # corrector of a 2nd-order step)
    x_t: Tensor               # the input sample
    pred_noise: Tensor        # eps_hat
    pred_x0: Tensor           # x0_hat
    posterior_mean: Tensor    # mean of p(x_{t_prev} | x_t)
    noise: Tensor             # scaled noise added (zeros when deterministic)
    x_prev: Tensor            # x_{t_prev} = posterior_mean + noise


@dataclass
class InversionStep:
    """One DDIM inversion step x_t -> x_{t_next} (deterministic); tensors are (B, C, H, W)."""
    index: int
    t: int                    # current timestep (0 = the data)
    t_next: int               # the noisier timestep stepped to
    x_t: Tensor
    pred_noise: Tensor        # eps_hat used (evaluated at (x_0, t_next) on the first step)
    pred_x0: Tensor
    x_next: Tensor


def _t_batch(t: int, x: Tensor) -> Tensor:
    return torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)   # (B,)


@torch.no_grad()
def sample_progressive(eps_model: EpsModel, sampler: Sampler, shape: Sequence[int] | None = None,
                       x_T: Tensor | None = None, generator: StepGenerator = None,
                       device: torch.device | str | None = None,
                       dtype: torch.dtype = torch.float32, start: int = 0,
                       x0_before: Tensor | None = None) -> Iterator[DenoiseStep]:
    """Run the reverse process x_T -> x_0 once over `sampler.timesteps`, yielding every step.

    x_T ~ N(0, I) of `shape` is drawn from `generator` unless given; each step draws
    x_{t_prev} ~ p(x_{t_prev} | x_t) with the same generator, so a seed fixes the whole run.
    `generator` may also be a function of the step index giving that step's generator (each
    step's noise then depends on its index alone: see `step_generator`). With `start` = k the
    run resumes at timesteps[k], x_T being the sample x_{t_k} there (a rewound run), and
    `x0_before` the x0_hat of step k - 1 (a multistep sampler's next step reads it).
    """
    if not 0 <= start < len(sampler.timesteps):
        raise ValueError(f"start must be in 0..{len(sampler.timesteps) - 1}, got {start}")
    generator_of = generator if callable(generator) else lambda index: generator
    if x_T is None:
        if shape is None:
            raise ValueError("give shape or x_T")
        first = generator_of(-1)
        x_T = standard_normal(shape, first, device, dtype)
    x = x_T                                                            # (B, C, H, W)
    timesteps = sampler.timesteps.tolist()
    sampler.resume(start, x0_before)
    for index in range(start, len(timesteps)):
        t = timesteps[index]
        eps_hat = eps_model(x, _t_batch(t, x))                         # (B, C, H, W)
        out = sampler.step(eps_hat, t, x, generator=generator_of(index))
        yield DenoiseStep(index=index, t=t, t_prev=sampler.target(index), x_t=x,
                          pred_noise=out.pred_noise, pred_x0=out.pred_original_sample,
                          posterior_mean=out.mean, noise=out.noise, x_prev=out.prev_sample)
        x = out.prev_sample


def step_generator(seed: int, index: int) -> torch.Generator:
    """The CPU generator of step `index` (-1: the draw of x_T) of a run seeded `seed`: seeded by
    numpy's SeedSequence of (seed, index), so the steps' noises are independent streams and a run
    can be rewound to any step and replayed exactly, or branched with another seed."""
    entropy = [int(seed), int(index) + 1]
    state = np.random.SeedSequence(entropy).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def sample(eps_model: EpsModel, sampler: Sampler, shape: Sequence[int] | None = None,
           x_T: Tensor | None = None, generator: torch.Generator | None = None,
           device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """x_0 of one run of `sample_progressive` (same arguments, same draws): (B, C, H, W)."""
    last = None
    for last in sample_progressive(eps_model, sampler, shape, x_T, generator, device, dtype):
        pass
    return last.x_prev


@torch.no_grad()
def ddim_invert_progressive(eps_model: EpsModel, schedule: DiscreteSchedule, x0: Tensor,
                            steps: int) -> Iterator[InversionStep]:
    """Deterministic DDIM inversion x_0 -> x_T over `steps` timesteps (0, then 1 .. T ascending),
    yielding every step. The first step uses eps_hat(x_0, t_next): eps is undefined at t = 0."""
    sampler = DDIMSampler(schedule, eta=0.0, clip_sample=False)
    sampler.set_timesteps(steps)
    x = x0                                                             # (B, C, H, W)
    ascending = [0] + sampler.timesteps.flip(0).tolist()[:-1]          # t, from 0 up to t_{n-1}
    for index, t in enumerate(ascending):
        t_next = sampler.next_timestep(t)
        eps_hat = eps_model(x, _t_batch(t if t > 0 else t_next, x))    # (B, C, H, W)
        out = sampler.invert_step(eps_hat, t, x)
        yield InversionStep(index=index, t=t, t_next=t_next, x_t=x, pred_noise=eps_hat,
                            pred_x0=out.pred_original_sample, x_next=out.prev_sample)
        x = out.prev_sample


def ddim_invert(eps_model: EpsModel, schedule: DiscreteSchedule, x0: Tensor, steps: int) -> Tensor:
    """x_T from x_0 by DDIM eta = 0 run backwards (drains ddim_invert_progressive): (B, C, H, W)."""
    last = None
    for last in ddim_invert_progressive(eps_model, schedule, x0, steps):
        pass
    return last.x_next


def ddim_decode(eps_model: EpsModel, schedule: DiscreteSchedule, x_T: Tensor, steps: int,
                clip_sample: bool = False) -> Tensor:
    """x_0 from x_T by deterministic DDIM (eta = 0) over `steps` timesteps: (B, C, H, W).
    Without clipping it is the inverse of `ddim_invert` up to discretisation error."""
    sampler = DDIMSampler(schedule, eta=0.0, clip_sample=clip_sample)
    sampler.set_timesteps(steps)
    return sample(eps_model, sampler, x_T=x_T)
