"""A trained ToyVDM on disk, like the shipped models: `toy.safetensors` (weights) beside `toy.json`
(kind, ToyConfig, the weights' SHA-256, and in its meta the data points it learned, the training
config and iteration), written and checked by explorer.checkpoint. The folder is the whole model:
`load_toy` gives back the network and the points its exact denoiser needs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from safetensors.torch import load

from explorer.checkpoint import CheckpointError, read_record, read_weights, save_checkpoint
from explorer.config import config_from_dict, config_to_dict
from explorer.paths import shown_path
from explorer.toy.model import ToyConfig, ToyVDM
from explorer.toy.train import TrainConfig, as_points

STEM = "toy"
REBUILD = "training it again in the 2-D playground (explorer.toy.train) and saving it"


def save_toy(model: ToyVDM, points, folder: str | Path, train_config: TrainConfig | None = None,
             iteration: int | None = None) -> Path:
    """Write `<folder>/toy.safetensors` and `<folder>/toy.json`; returns the stem `<folder>/toy`."""
    meta = {"command": REBUILD, "points": as_points(points).tolist()}  # (n, 2), float32 values
    if train_config is not None:
        meta["train"] = config_to_dict(train_config)
    if iteration is not None:
        meta["iteration"] = int(iteration)
    return save_checkpoint(model, Path(folder) / STEM, meta)


def load_toy(folder: str | Path) -> tuple[ToyVDM, np.ndarray]:
    """(model in eval mode, points (n, 2) float32) saved by save_toy in `folder`. A missing or
    damaged file raises CheckpointError naming it."""
    stem = Path(folder) / STEM
    if not stem.with_suffix(".json").is_file():
        raise CheckpointError(f"missing {shown_path(stem.with_suffix('.json'))}; make it by {REBUILD}")
    record = read_record(stem)
    if record.get("kind") != ToyVDM.kind:
        raise CheckpointError(f"{shown_path(stem.with_suffix('.json'))}: kind "
                              f"{record.get('kind')!r}, expected {ToyVDM.kind!r}")
    model = ToyVDM(config_from_dict(ToyConfig, record["config"]))
    try:
        model.load_state_dict(load(read_weights(stem, record)))
        points = as_points(record["meta"]["points"]).numpy()
    except CheckpointError:
        raise
    except Exception as err:  # safetensors' own errors, wrong shapes, points missing
        raise CheckpointError(f"corrupt {shown_path(stem)} ({type(err).__name__}: {err})") from None
    return model.eval(), points


def train_record(folder: str | Path) -> tuple[TrainConfig | None, int | None]:
    """The training config and iteration `save_toy` recorded in `folder` (None where not given)."""
    meta = read_record(Path(folder) / STEM).get("meta", {})
    config = config_from_dict(TrainConfig, meta["train"]) if "train" in meta else None
    return config, meta.get("iteration")
