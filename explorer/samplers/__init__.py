"""Samplers of the reverse process, one algorithm a file, all sharing the `Sampler` contract.

    sampler = make_sampler("ddim", schedule, eta=0.0)
    sampler.set_timesteps(50)
    # the loop lives in explorer.sampling (sample_progressive / sample)
"""

from __future__ import annotations

from typing import Any

from explorer.config import check_choice
from explorer.samplers.base import (DEFAULT_TIMESTEP_SPACING, KARRAS_RHO, TIMESTEP_SPACINGS,
                                   Sampler, SamplerOutput, StepCoefficients, StepRule,
                                   spaced_timesteps)
from explorer.samplers.ddim import DDIMSampler
from explorer.samplers.ddpm import VARIANCE_TYPES, DDPMSampler
from explorer.samplers.dpmpp import DPMSolverPP2MSampler
from explorer.samplers.dpmpp_sde import DPMSolverPP2MSDESampler
from explorer.samplers.heun import HeunSampler
from explorer.schedules import DiscreteSchedule

# every sampler by name: what the app's reverse run offers (the page takes their steps itself:
# ui/static/lib/sampler.js), explorer.sample and the report
SAMPLERS: tuple[str, ...] = ("ddpm", "ddim", "dpmpp2m", "dpmpp2m_sde", "heun")
_CLASSES: dict[str, type[Sampler]] = {"ddpm": DDPMSampler, "ddim": DDIMSampler,
                                      "dpmpp2m": DPMSolverPP2MSampler,
                                      "dpmpp2m_sde": DPMSolverPP2MSDESampler, "heun": HeunSampler}


def run_timesteps(name: str, schedule: DiscreteSchedule, steps: int, t_start: int | None = None,
                  spacing: str = "linspace") -> tuple[int, ...]:
    """The t of every network evaluation of a run of sampler `name` (its `timesteps` once
    `set_timesteps(steps, t_start)`), built from the cached grid without making a sampler."""
    check_choice("sampler", name, SAMPLERS)
    grid = spaced_timesteps(schedule, steps, t_start, spacing)
    return tuple(t for t, _ in _CLASSES[name].plan(grid))


def network_evaluations(name: str, steps: int) -> int:
    """The network evaluations (step() calls) of a run of sampler `name` over `steps` steps."""
    check_choice("sampler", name, SAMPLERS)
    return _CLASSES[name].evaluations(steps)


def make_sampler(name: str, schedule: DiscreteSchedule, **kwargs: Any) -> Sampler:
    """One of SAMPLERS by name, on schedule; kwargs go to its constructor (e.g. eta for "ddim")."""
    check_choice("sampler", name, SAMPLERS)
    return _CLASSES[name](schedule, **kwargs)


def sampler_from_config(config: dict[str, Any], schedule: DiscreteSchedule) -> Sampler:
    """Rebuild a sampler from its `config` dict (its "name" picks the class)."""
    name = check_choice("sampler", config.get("name"), SAMPLERS)
    return _CLASSES[name].from_config(config, schedule)


__all__ = ["DEFAULT_TIMESTEP_SPACING", "KARRAS_RHO", "SAMPLERS", "TIMESTEP_SPACINGS",
           "VARIANCE_TYPES", "DDIMSampler", "DDPMSampler", "DPMSolverPP2MSampler",
           "DPMSolverPP2MSDESampler",
           "HeunSampler", "Sampler", "SamplerOutput",
           "StepCoefficients", "StepRule", "make_sampler", "network_evaluations", "run_timesteps", "sampler_from_config",
           "spaced_timesteps"]
