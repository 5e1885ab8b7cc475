"""Pieces shared by the train / evaluate / sample command lines."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
from pathlib import Path

import torch

from explorer.paths import checkpoint_stem

MODEL_KINDS = ("vae", "hvae", "vdm")
DATASET_CHOICES = ("fashion-mnist", "mnist")


def add_common_args(parser: argparse.ArgumentParser, model_required: bool = True) -> None:
    parser.add_argument("model", choices=MODEL_KINDS, help="which model",
                        **({} if model_required else {"nargs": "?"}))
    parser.add_argument("--dataset", choices=DATASET_CHOICES, default="fashion-mnist")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random draw")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: all cores)")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda where one is available")


def default_stem(model: str, dataset: str) -> Path:
    """Where a model's checkpoint lives by default: pretrained/<dataset>/<model>."""
    return checkpoint_stem(dataset, model)


def set_threads(threads: int | None) -> None:
    torch.set_num_threads(threads or os.cpu_count() or 1)


def parse_overrides(pairs: list[str] | None) -> dict:
    """`key=value` strings -> dict; values parse as JSON when they can (numbers, lists, bools)."""
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise SystemExit(f"--set takes key=value, got {pair!r}")
        key, raw = pair.split("=", 1)
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def build_config(config_cls, overrides: dict, base=None):
    """`base` (default: config_cls's defaults) with overrides applied (unknown keys raise)."""
    from explorer.config import config_from_dict
    base = dataclasses.asdict(base if base is not None else config_cls())
    unknown = set(overrides) - set(base)
    if unknown:
        raise SystemExit(f"unknown {config_cls.__name__} field(s) {sorted(unknown)}; "
                         f"valid: {sorted(base)}")
    return config_from_dict(config_cls, {**base, **overrides})


def hardware() -> str:
    """A one-line description of where this ran."""
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA)"
    return f"{platform.processor() or platform.machine()} CPU, {torch.get_num_threads()} threads"
