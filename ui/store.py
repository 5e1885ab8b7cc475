"""Models and galleries, loaded once at import and shared read-only by every session.

`STORE.model(dataset, name)` returns a pretrained model in eval mode or raises `ModelMissing`
with CheckpointError's message (the missing file and the command that rebuilds it). Anything
slow that depends only on (model, dataset, ...) -- the gallery's latents, 2-D maps -- goes
through `STORE.cached(key, compute)`: computed once, by one thread, while others wait for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from explorer.checkpoint import CheckpointError, load_checkpoint
from explorer.data import DATASETS, ImageSet, load_gallery
from explorer.models import HVAE, VAE, VDM
from explorer.paths import checkpoint_stem

from .common import ModelMissing, to_model_input
from .picture import Unreadable

# name in pretrained/<dataset>/ -> (class, what the app calls it)
MODEL_FILES = {"vae": (VAE, "VAE"), "vae2d": (VAE, "2-D VAE"), "hvae": (HVAE, "hierarchical VAE"),
               "vdm": (VDM, "variational diffusion model")}


class Store:
    """Every pretrained model and gallery, plus a thread-safe cache of derived results."""

    def __init__(self) -> None:
        self.reload()

    def reload(self) -> None:
        """(Re)read pretrained/ (or $EXPLORER_PRETRAINED_DIR) and forget every cached result."""
        self.galleries: dict[str, ImageSet] = {}
        self.errors: dict[tuple[str, str], str] = {}
        self.models: dict[tuple[str, str], torch.nn.Module] = {}
        self.meta: dict[tuple[str, str], dict] = {}
        for dataset in DATASETS:
            try:
                self.galleries[dataset] = load_gallery(dataset)
            except (FileNotFoundError, ValueError) as e:
                self.errors[(dataset, "gallery")] = str(e)
            for name, (cls, title) in MODEL_FILES.items():
                self._load(dataset, name, cls, title)
        self._cache: dict[tuple, Any] = {}
        self._locks: dict[tuple, threading.Lock] = {}
        self._guard = threading.Lock()

    def _load(self, dataset: str, name: str, cls: type, title: str) -> None:
        stem = checkpoint_stem(dataset, name)
        try:
            model, meta = load_checkpoint(stem)
        except CheckpointError as e:
            self.errors[(dataset, name)] = f"The {title} for {dataset} is not available: {e}"
            return
        if not isinstance(model, cls) or (name == "vae2d" and model.config.latent_dim != 2):
            self.errors[(dataset, name)] = (f"{stem}.json holds a {model.kind} model, not a "
                                            f"{title}; rebuild it")
            return
        model.requires_grad_(False)                                    # read-only, shared
        if isinstance(model, VDM):
            _ = model.schedule                                         # tabulate once, now
        self.models[(dataset, name)] = model
        self.meta[(dataset, name)] = meta

    # ------------------------------------------------------------ access

    def model(self, dataset: str, name: str) -> torch.nn.Module:
        """The pretrained model `name` (vae, vae2d, hvae, vdm) of `dataset`, or ModelMissing."""
        check_dataset(dataset)
        if (dataset, name) not in self.models:
            raise ModelMissing(self.errors.get((dataset, name), f"unknown model {name!r}"))
        return self.models[(dataset, name)]

    def gallery(self, dataset: str) -> ImageSet:
        """The dataset's shipped gallery (uint8 images, labels, class names), or ModelMissing."""
        check_dataset(dataset)
        if dataset not in self.galleries:
            raise ModelMissing(self.errors[(dataset, "gallery")])
        return self.galleries[dataset]

    def missing(self, dataset: str, names: tuple[str, ...]) -> list[str]:
        """Messages for the models in `names` (and the gallery) that `dataset` lacks."""
        keys = [(dataset, "gallery")] + [(dataset, n) for n in names]
        return [self.errors[k] for k in keys if k in self.errors]

    def default_dataset(self) -> str:
        """The first dataset with the most models present (fashion-mnist when all are equal)."""
        return max(DATASETS, key=lambda d: (sum((d, n) in self.models for n in MODEL_FILES),
                                            -DATASETS.index(d)))

    # ------------------------------------------------------------ cache

    def cached(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """compute() once per key; concurrent callers of the same key wait for the first."""
        if key in self._cache:
            return self._cache[key]
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._cache:
                self._cache[key] = compute()
        return self._cache[key]

    def is_cached(self, key: tuple) -> bool:
        return key in self._cache


def check_dataset(dataset: str) -> str:
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; valid: {', '.join(DATASETS)}")
    return dataset


def gallery_image(dataset: str, index) -> np.ndarray:
    """Gallery image `index` of `dataset`, uint8 (28, 28); a clear error when out of range."""
    gallery = STORE.gallery(dataset)
    if index is None or not float(index).is_integer():
        raise ValueError(f"gallery index must be a whole number, got {index!r}")
    index = int(index)
    if not 0 <= index < len(gallery):
        raise ValueError(f"gallery index {index} is out of range: {dataset} has images "
                         f"0..{len(gallery) - 1}")
    return gallery.images[index]


def chosen(index, image) -> bool:
    """Whether a slot holds an image (a gallery index or a picture)."""
    return index is not None or image is not None


def resolve_input(dataset: str, index, image=None) -> np.ndarray:
    """The uint8 (28, 28) input: the picture `image` (a path, PIL image, array or drawing)
    when given, else gallery image `index`."""
    check_dataset(dataset)
    if isinstance(image, Unreadable):
        raise ValueError(image.message)
    if image is not None:
        return to_model_input(image, dataset)
    if index is None:
        raise ValueError("choose an image: click the gallery or the map, upload or draw one")
    return gallery_image(dataset, index)


def default_pair(dataset: str) -> tuple[int, int]:
    """Default endpoints A and B: the first gallery images of two different classes."""
    labels = STORE.gallery(dataset).labels
    a = 0
    others = np.flatnonzero(labels != labels[a])
    return a, int(others[0]) if len(others) else min(1, len(labels) - 1)


STORE = Store()
