"""Where things live on disk: the shipped `pretrained/` folder and per-model checkpoint stems,
and how a message shows a path (relative to the project, so no server layout leaks out)."""

from __future__ import annotations

import os
from pathlib import Path

PRETRAINED_ENV = "EXPLORER_PRETRAINED_DIR"
PROJECT_ROOT = Path(__file__).resolve().parent.parent      # the folder that holds `explorer/`


def pretrained_dir() -> Path:
    """The folder of shipped models and galleries: $EXPLORER_PRETRAINED_DIR, else ./pretrained
    next to the `explorer` package (the repository's `pretrained/`)."""
    env = os.environ.get(PRETRAINED_ENV)
    return Path(env) if env else PROJECT_ROOT / "pretrained"


def checkpoint_stem(dataset: str, name: str) -> Path:
    """`pretrained/<dataset>/<name>` (add .json / .safetensors for the two files)."""
    return pretrained_dir() / dataset / name


def shown_path(path: str | Path) -> str:
    """`path` as a message shows it: relative to the project root when it lies inside it
    ("pretrained/mnist/vae.json"), else as given."""
    try:
        return Path(path).resolve().relative_to(PROJECT_ROOT).as_posix()
    except (ValueError, OSError):
        return str(path)
