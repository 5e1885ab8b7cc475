"""Checkpoints: `<stem>.safetensors` (weights) beside `<stem>.json` (kind, config, the weights'
SHA-256, metadata).

Weights are never pickles; the JSON is enough to rebuild the model class and its config. The
digest is written with the weights and checked when they are read, so weights damaged on disk
refuse to load instead of giving nan losses; a record written before digests were kept loads
unchecked (`verify_weights` calls it "unrecorded").
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
from safetensors.torch import load, save

from explorer.config import config_from_dict, config_to_dict
from explorer.paths import shown_path

DIGEST_KEY = "weights_sha256"        # the record's field: hex SHA-256 of the .safetensors bytes
DIGEST_SHOWN = 12                    # hex digits of a digest a message shows


class CheckpointError(RuntimeError):
    """A checkpoint is missing or unreadable; the message names the file and how to rebuild it."""


def _registry() -> dict:
    from explorer.models import MODELS  # late import: models import this module's helpers
    return MODELS


# shipped names that are not a model kind: how the CLI builds them
_NAMED_BUILDS = {"vae2d": "vae --set latent_dim=2"}


def rebuild_command(meta: dict | None, stem: Path) -> str:
    """The command recorded in the checkpoint, else the CLI call that builds pretrained/<d>/<name>
    (`--dataset <d>`), or `--data <folder>` for a set trained on one's own pictures."""
    if meta and meta.get("command"):
        return meta["command"]
    name, dataset = stem.name, stem.parent.name
    if name == "judge":
        return f"python -m explorer.frechet train --dataset {dataset} --out {shown_path(stem)}"
    build = _NAMED_BUILDS.get(name) or name
    kind, _, extra = build.partition(" ")
    pictures = trained_from(stem.parent)
    source = f"--data {pictures}" if pictures else f"--dataset {dataset}"
    return (f"python -m explorer.train {kind} {source} --out {shown_path(stem)}"
            + (f" {extra}" if extra else ""))


def trained_from(folder: Path) -> str | None:
    """The folder of pictures a set trained with `python -m explorer.train --data` was read from,
    as another record in `folder` says (its meta's "data"), "DIR" when none says but `folder` is
    one of the trained sets ($EXPLORER_MODELS, python app.py --models), else None."""
    for path in sorted(folder.glob("*.json")):
        try:
            pictures = json.loads(path.read_text())["meta"]["data"]
        except (OSError, ValueError, KeyError, TypeError):   # unreadable, or not a --data record
            continue
        if pictures:
            return str(pictures)
    from explorer.data import TRAINED_SETS  # late: only a message needs it
    return "DIR" if folder.resolve() in {f.resolve() for f in TRAINED_SETS.values()} else None


def sha256(data: bytes) -> str:
    """Hex SHA-256 digest of `data`."""
    return hashlib.sha256(data).hexdigest()


def save_checkpoint(model: torch.nn.Module, stem: str | Path, meta: dict | None = None) -> Path:
    """Write model weights to `<stem>.safetensors` and {kind, config, weights_sha256 (of the
    bytes written), meta} to `<stem>.json`."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    data = save(state)
    stem.with_suffix(".safetensors").write_bytes(data)
    record = {"kind": model.kind, "config": config_to_dict(model.config),
              DIGEST_KEY: sha256(data), "meta": meta or {}}
    stem.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    return stem


def read_record(stem: str | Path) -> dict:
    """The JSON record (kind, config, weights_sha256, meta) of a checkpoint."""
    path = Path(stem).with_suffix(".json")
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"missing {shown_path(path)}; rebuild it with: "
                              f"{rebuild_command(None, Path(stem))}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"corrupt {shown_path(path)} ({err}); rebuild it with: "
                              f"{rebuild_command(None, Path(stem))}") from None
    except OSError as err:   # its strerror, not str(err), which holds the absolute path
        raise CheckpointError(f"unreadable {shown_path(path)} ({err.strerror}); rebuild it with: "
                              f"{rebuild_command(None, Path(stem))}") from None


def read_weights(stem: str | Path, record: dict) -> bytes:
    """The bytes of `<stem>.safetensors`, checked against the SHA-256 its record holds (not
    checked when the record holds none). Raises CheckpointError when the file is missing or
    damaged, naming it and the command that rebuilds it."""
    stem = Path(stem)
    weights = stem.with_suffix(".safetensors")
    rebuild = rebuild_command(record.get("meta"), stem)
    try:
        data = weights.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"missing {shown_path(weights)}; rebuild it with: "
                              f"{rebuild}") from None
    except OSError as err:   # its strerror, not str(err), which holds the absolute path
        raise CheckpointError(f"unreadable {shown_path(weights)} ({err.strerror}); rebuild it "
                              f"with: {rebuild}") from None
    expected = record.get(DIGEST_KEY)
    if expected is not None and (found := sha256(data)) != expected:
        raise CheckpointError(f"damaged {shown_path(weights)} (sha256 {found[:DIGEST_SHOWN]}, its "
                              f"record expects {str(expected)[:DIGEST_SHOWN]}); rebuild it with: "
                              f"{rebuild}")
    return data


def verify_weights(stem: str | Path) -> str:
    """"ok" when `<stem>.safetensors` has the SHA-256 its record holds, "unrecorded" when the
    record holds none; raises CheckpointError (missing, corrupt record, damaged) otherwise."""
    record = read_record(stem)
    read_weights(stem, record)
    return "ok" if DIGEST_KEY in record else "unrecorded"


def load_checkpoint(stem: str | Path, map_location: str = "cpu"):
    """Rebuild the model saved at `stem` on `map_location`; returns (model in eval mode, meta).
    Weights unlike the digest their record holds raise CheckpointError ("damaged ...")."""
    stem = Path(stem)
    record = read_record(stem)
    meta = record.get("meta", {})
    models = _registry()
    if record.get("kind") not in models:
        raise CheckpointError(f"{shown_path(stem.with_suffix('.json'))}: unknown kind "
                              f"{record.get('kind')!r}; valid: {sorted(models)}")
    model_cls = models[record["kind"]]
    model = model_cls(config_from_dict(model_cls.config_cls, record["config"]))
    data = read_weights(stem, record)
    try:
        model.load_state_dict(load(data))
    except Exception as err:  # safetensors raises its own error types for corrupt headers
        raise CheckpointError(f"corrupt {shown_path(stem.with_suffix('.safetensors'))} "
                              f"({type(err).__name__}: {err}); rebuild it with: "
                              f"{rebuild_command(meta, stem)}") from None
    return model.to(map_location).eval(), meta
