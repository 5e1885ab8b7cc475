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
from explorer.samplers.heun import HeunSampler
from explorer.schedules import DiscreteSchedule

# what the app offers (the page takes their steps itself: ui/static/lib/sampler.js); SOLVERS adds
# the higher-order solvers, not offered there yet
SAMPLERS: tuple[str, ...] = ("ddpm", "ddim")
SOLVERS: tuple[str, ...] = (*SAMPLERS, "dpmpp2m", "heun")
_CLASSES: dict[str, type[Sampler]] = {"ddpm": DDPMSampler, "ddim": DDIMSampler,
                                      "dpmpp2m": DPMSolverPP2MSampler, "heun": HeunSampler}


def make_sampler(name: str, schedule: DiscreteSchedule, **kwargs: Any) -> Sampler:
    """One of SOLVERS by name, on schedule; kwargs go to its constructor (e.g. eta for "ddim")."""
    check_choice("sampler", name, SOLVERS)
    return _CLASSES[name](schedule, **kwargs)


def sampler_from_config(config: dict[str, Any], schedule: DiscreteSchedule) -> Sampler:
    """Rebuild a sampler from its `config` dict (its "name" picks the class)."""
    name = check_choice("sampler", config.get("name"), SOLVERS)
    return _CLASSES[name].from_config(config, schedule)


__all__ = ["DEFAULT_TIMESTEP_SPACING", "KARRAS_RHO", "SAMPLERS", "TIMESTEP_SPACINGS",
           "SOLVERS", "VARIANCE_TYPES", "DDIMSampler", "DDPMSampler", "DPMSolverPP2MSampler",
           "HeunSampler", "Sampler", "SamplerOutput",
           "StepCoefficients", "StepRule", "make_sampler", "sampler_from_config",
           "spaced_timesteps"]
