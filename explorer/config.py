"""Frozen-dataclass configs <-> JSON, and the ELBO-terms container every model returns."""

from __future__ import annotations

import dataclasses
import math
import typing
from collections import OrderedDict

import torch
from torch import Tensor


def config_to_dict(config) -> dict:
    """A frozen dataclass config as a JSON-ready dict (tuples become lists)."""
    return dataclasses.asdict(config)


def config_from_dict(cls, data: dict):
    """Rebuild a frozen dataclass config from `config_to_dict` output.

    Unknown keys raise (a typo must not silently become a default); list values of tuple-typed
    fields become tuples again, and whole numbers given to float fields (`--set weight_scale=9`)
    become floats, so the rebuilt config compares equal to the saved one.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields {sorted(unknown)}; valid: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        origin = typing.get_origin(hints[name])
        if isinstance(value, list) and (origin is tuple or hints[name] is tuple):
            value = _as_tuple(value)
        elif hints[name] is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        kwargs[name] = value
    return cls(**kwargs)


def _as_tuple(value):
    """Lists (nested too) -> tuples, as JSON turned the config's tuples into lists."""
    return tuple(_as_tuple(v) for v in value) if isinstance(value, list) else value


def check_choice(name: str, value: str, choices) -> str:
    """Return value if it is one of choices, else raise a ValueError that lists them."""
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(map(repr, choices))}")
    return value


class ELBOTerms(OrderedDict):
    """Per-example terms of a negative ELBO, in nats, each a (B,) tensor; they sum to `total`.

    The order is the order the terms are written in the derivation (reconstruction first).
    """

    @property
    def total(self) -> Tensor:
        """-ELBO per example, (B,) nats: the sum of every term."""
        return torch.stack(list(self.values()), dim=0).sum(dim=0)

    def bits_per_dim(self, dims: int) -> "ELBOTerms":
        """The same terms in bits per dimension: nats / (dims ln 2)."""
        return ELBOTerms((k, v / (dims * math.log(2.0))) for k, v in self.items())

    def mean(self) -> dict[str, float]:
        """Batch means of every term and of the total, as floats (nats)."""
        out = {k: float(v.detach().mean()) for k, v in self.items()}
        out["total"] = float(self.total.detach().mean())
        return out
