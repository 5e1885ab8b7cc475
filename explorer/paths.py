"""Where things live on disk: the shipped `pretrained/` folder and per-model checkpoint stems."""

from __future__ import annotations

import os
from pathlib import Path

PRETRAINED_ENV = "EXPLORER_PRETRAINED_DIR"


def pretrained_dir() -> Path:
    """The folder of shipped models and galleries: $EXPLORER_PRETRAINED_DIR, else ./pretrained
    next to the `explorer` package (the repository's `pretrained/`)."""
    env = os.environ.get(PRETRAINED_ENV)
    return Path(env) if env else Path(__file__).resolve().parent.parent / "pretrained"


def checkpoint_stem(dataset: str, name: str) -> Path:
    """`pretrained/<dataset>/<name>` (add .json / .safetensors for the two files)."""
    return pretrained_dir() / dataset / name
