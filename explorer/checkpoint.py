"""Checkpoints: `<stem>.safetensors` (weights) beside `<stem>.json` (kind, config, metadata).

Weights are never pickles; the JSON is enough to rebuild the model class and its config.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from explorer.config import config_from_dict, config_to_dict


class CheckpointError(RuntimeError):
    """A checkpoint is missing or unreadable; the message names the file and how to rebuild it."""


def _registry() -> dict:
    from explorer.models import MODELS  # late import: models import this module's helpers
    return MODELS


# shipped names that are not a model kind: how the CLI builds them
_NAMED_BUILDS = {"vae2d": "vae --set latent_dim=2"}


def rebuild_command(meta: dict | None, stem: Path) -> str:
    """The command recorded in the checkpoint, else the CLI call that builds pretrained/<d>/<name>."""
    if meta and meta.get("command"):
        return meta["command"]
    name, dataset = stem.name, stem.parent.name
    if name == "judge":
        return f"python -m explorer.frechet train --dataset {dataset} --out {stem}"
    build = _NAMED_BUILDS.get(name) or name
    kind, _, extra = build.partition(" ")
    return f"python -m explorer.train {kind} --dataset {dataset} --out {stem}" + (f" {extra}" if extra else "")


def save_checkpoint(model: torch.nn.Module, stem: str | Path, meta: dict | None = None) -> Path:
    """Write model weights to `<stem>.safetensors` and {kind, config, meta} to `<stem>.json`."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, str(stem.with_suffix(".safetensors")))
    record = {"kind": model.kind, "config": config_to_dict(model.config), "meta": meta or {}}
    stem.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    return stem


def read_record(stem: str | Path) -> dict:
    """The JSON record (kind, config, meta) of a checkpoint."""
    path = Path(stem).with_suffix(".json")
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"missing {path}; rebuild it with: "
                              f"{rebuild_command(None, Path(stem))}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"corrupt {path} ({err}); rebuild it with: "
                              f"{rebuild_command(None, Path(stem))}") from None


def load_checkpoint(stem: str | Path, map_location: str = "cpu"):
    """Rebuild the model saved at `stem` on `map_location`; returns (model in eval mode, meta)."""
    stem = Path(stem)
    record = read_record(stem)
    meta = record.get("meta", {})
    models = _registry()
    if record.get("kind") not in models:
        raise CheckpointError(f"{stem.with_suffix('.json')}: unknown kind {record.get('kind')!r}; "
                              f"valid: {sorted(models)}")
    model_cls = models[record["kind"]]
    model = model_cls(config_from_dict(model_cls.config_cls, record["config"]))
    weights = stem.with_suffix(".safetensors")
    try:
        model.load_state_dict(load_file(str(weights)))
    except FileNotFoundError:
        raise CheckpointError(f"missing {weights}; rebuild it with: "
                              f"{rebuild_command(meta, stem)}") from None
    except Exception as err:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(f"corrupt {weights} ({type(err).__name__}: {err}); rebuild it with: "
                              f"{rebuild_command(meta, stem)}") from None
    return model.to(map_location).eval(), meta
