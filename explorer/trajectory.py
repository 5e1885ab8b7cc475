"""One reverse run x_T -> x_0 that a person drives: step it, run it, rewind it, branch it.

A `Trajectory` records the sample before every step taken, so it can be rewound to any step;
each step's noise comes from `step_generator(seed, index)`, so replaying a rewound run with the
same seed repeats it exactly, and `branch(seed)` makes every later step draw other noise. It holds
only small tensors and plain values (a UI keeps one per session in its state) and rebuilds its
sampler on the model's schedule when it steps (`explorer.sampling.sample_progressive` runs it).

    run = Trajectory.start("ddim", steps=50, eta=0.0, seed=0)
    for step in run.run(model.predict_noise, model.schedule):   # or run.advance(...) once
        ...                                                      # step.x_t, .pred_noise, .pred_x0
    run.rewind(10); run.branch(seed=7)                            # back to step 10, new noise on
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
from torch import Tensor

from explorer.config import check_choice
from explorer.samplers import (DEFAULT_TIMESTEP_SPACING, SAMPLERS, TIMESTEP_SPACINGS, Sampler,
                               make_sampler, network_evaluations, run_timesteps)
from explorer.sampling import DenoiseStep, EpsModel, sample_progressive, step_generator
from explorer.schedules import DiscreteSchedule

SHAPE = (1, 1, 28, 28)


@dataclass
class Trajectory:
    """A seeded reverse run of one image and the steps taken so far.

    `xs[k]` is x_{t_k}, the sample before step k (xs[0] = x_T); `x0s[k]` and `eps[k]` are step
    k's predictions x0_hat and eps_hat. A step is one network evaluation (one `Sampler.step`):
    Heun's `steps` steps are `evaluations` = 2 steps - 1 of them. `branches` lists (from step, seed): step k draws its noise
    with the seed of the last branch starting at or before k. Tensors are (1, 1, 28, 28)."""

    sampler: str
    steps: int
    eta: float
    branches: list[tuple[int, int]]
    xs: list[Tensor] = field(default_factory=list)
    x0s: list[Tensor] = field(default_factory=list)
    eps: list[Tensor] = field(default_factory=list)
    t_start: int | None = None
    timestep_spacing: str = DEFAULT_TIMESTEP_SPACING

    @classmethod
    def start(cls, sampler: str, steps: int, eta: float = 0.0, seed: int = 0,
              x_T: Tensor | None = None, t_start: int | None = None,
              prior: Callable[[Tensor], Tensor] | None = None,
              timestep_spacing: str = DEFAULT_TIMESTEP_SPACING) -> "Trajectory":
        """A new run at x_T ~ p(x_T) drawn from `seed` (or the given x_T, (1, 1, 28, 28)):
        `prior` maps the seed's z ~ N(0, I) to x_T (a model's `prior_from_standard`); without it
        x_T = z. Its `steps` timesteps are spaced by `timestep_spacing` (`spaced_timesteps`)."""
        check_choice("sampler", sampler, SAMPLERS)
        check_choice("timestep_spacing", timestep_spacing, TIMESTEP_SPACINGS)
        if x_T is None:
            x_T = torch.randn(SHAPE, generator=step_generator(seed, -1))
            x_T = prior(x_T) if prior is not None else x_T
        return cls(sampler, int(steps), float(eta), [(0, int(seed))], [x_T.detach().clone()],
                   t_start=t_start, timestep_spacing=timestep_spacing)

    # ---- where the run is ----

    def make_sampler(self, schedule: DiscreteSchedule) -> Sampler:
        """This run's sampler on `schedule`, its timesteps set (raises on a bad step count)."""
        kwargs = {"eta": self.eta} if self.sampler == "ddim" else {}
        sampler = make_sampler(self.sampler, schedule, timestep_spacing=self.timestep_spacing,
                               **kwargs)
        sampler.set_timesteps(self.steps, self.t_start)
        return sampler

    def timesteps(self, schedule: DiscreteSchedule) -> tuple[int, ...]:
        """The t of every step of the run on `schedule`, in the order run (the sampler's
        `timesteps`: descending, Heun's corrector and next Euler step sharing theirs)."""
        return run_timesteps(self.sampler, schedule, self.steps, self.t_start,
                             self.timestep_spacing)

    @property
    def evaluations(self) -> int:
        """The run's steps as taken: one network evaluation each (`steps`; Heun 2 steps - 1)."""
        return network_evaluations(self.sampler, self.steps)

    @property
    def taken(self) -> int:
        """Steps (network evaluations) taken so far (0 .. evaluations)."""
        return len(self.x0s)

    @property
    def done(self) -> bool:
        return self.taken >= self.evaluations

    @property
    def x(self) -> Tensor:
        """The current sample: x_T before any step, x_0 when done."""
        return self.xs[-1]

    def seed_of(self, index: int) -> int:
        """The seed of step `index`'s noise."""
        return [seed for start, seed in self.branches if start <= index][-1]

    # ---- moving ----

    def run(self, eps_model: EpsModel, schedule: DiscreteSchedule) -> Iterator[DenoiseStep]:
        """Take the remaining steps one by one, recording and yielding each (a generator: stop
        consuming it and the run stays where it is)."""
        if self.done:
            return
        sampler = self.make_sampler(schedule)
        for step in sample_progressive(eps_model, sampler, x_T=self.x, start=self.taken,
                                       x0_before=self.x0s[-1] if self.x0s else None,
                                       generator=lambda k: step_generator(self.seed_of(k), k)):
            self.x0s.append(step.pred_x0)
            self.eps.append(step.pred_noise)
            self.xs.append(step.x_prev)
            yield step

    def advance(self, eps_model: EpsModel, schedule: DiscreteSchedule) -> DenoiseStep | None:
        """Take one step; None when the run is done."""
        return next(self.run(eps_model, schedule), None)

    def rewind(self, taken: int) -> None:
        """Go back to the moment `taken` steps had been taken (0 = back to x_T)."""
        if not 0 <= taken <= self.taken:
            raise ValueError(f"can rewind to a step in 0..{self.taken}, got {taken}")
        del self.xs[taken + 1:], self.x0s[taken:], self.eps[taken:]

    def branch(self, seed: int) -> None:
        """From the next step on, draw noise with `seed` (the steps taken are kept)."""
        self.branches = [b for b in self.branches if b[0] < self.taken] + [(self.taken, int(seed))]
