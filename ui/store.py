"""Models and galleries, loaded once at import and shared read-only by every session.

`STORE.model(dataset, name)` returns a pretrained model in eval mode or raises `ModelMissing`
with CheckpointError's message (the missing file and the command that rebuilds it). Anything
slow that depends only on (model, dataset, ...) -- the gallery's latents, 2-D maps -- goes
through `STORE.cached(key, compute, group)`: computed once, by one thread, while others wait
for it, and kept while it is among the `KEEP[group]` most recently used of its group (a t-SNE
map is ~9 MB: the maps any number of visitors ask for cost at most KEEP["maps"] of them).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from explorer.checkpoint import CheckpointError, load_checkpoint
from explorer.data import DATASETS, TRAINED_SETS, ImageSet, load_gallery
from explorer.models import HVAE, VAE, VDM
from explorer.paths import checkpoint_stem, shown_path

from .common import ModelMissing, to_model_input
from .picture import Unreadable

# name in pretrained/<dataset>/ -> (class, what the app calls it)
MODEL_FILES = {"vae": (VAE, "VAE"), "vae2d": (VAE, "2-D VAE"), "hvae": (HVAE, "hierarchical VAE"),
               "vdm": (VDM, "variational diffusion model")}


# entries kept per group of the cache, least recently used dropped first
KEEP = {"maps": 6, "map-figures": 6, "map-csv": 6, "tables": 32}


class Store:
    """Every pretrained model and gallery, plus a thread-safe cache of derived results."""

    def __init__(self) -> None:
        self.reload()

    def reload(self) -> None:
        """(Re)read pretrained/ (or $EXPLORER_PRETRAINED_DIR) and the folders of sets trained on
        one's own pictures ($EXPLORER_MODELS, python app.py --models) and forget every cached
        result."""
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
        self._cache: OrderedDict[tuple, Any] = OrderedDict()
        self._groups: dict[tuple, str] = {}
        self._locks: dict[tuple, threading.Lock] = {}
        self._guard = threading.Lock()

    def _load(self, dataset: str, name: str, cls: type, title: str) -> None:
        stem = model_stem(dataset, name)
        try:
            model, meta = load_checkpoint(stem)
        except CheckpointError as e:
            self.errors[(dataset, name)] = f"The {title} for {dataset} is not available: {e}"
            return
        if not isinstance(model, cls) or (name == "vae2d" and model.config.latent_dim != 2):
            self.errors[(dataset, name)] = (f"{shown_path(stem.with_suffix('.json'))} holds a "
                                            f"{model.kind} model, not a "
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

    def cached(self, key: tuple, compute: Callable[[], Any], group: str = "tables") -> Any:
        """compute() once per key; concurrent callers of the same key wait for the first. The
        result stays while it is among the KEEP[group] most recently used of its group."""
        if group not in KEEP:
            raise ValueError(f"unknown cache group {group!r}; valid: {', '.join(KEEP)}")
        with self._guard:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            with self._guard:
                if key in self._cache:
                    return self._cache[key]
            value = compute()
            with self._guard:
                self._cache[key] = value
                self._groups[key] = group
                self._trim(group)
        return value

    def _trim(self, group: str) -> None:
        """Drop the least recently used entries of `group` beyond KEEP[group] (guard held)."""
        keys = [k for k in self._cache if self._groups[k] == group]
        for old in keys[:max(0, len(keys) - KEEP[group])]:
            del self._cache[old], self._groups[old]
            self._locks.pop(old, None)

    def is_cached(self, key: tuple) -> bool:
        return key in self._cache

    def cache_sizes(self) -> dict[str, int]:
        """Entries held per group (for the memory test and the benchmark)."""
        with self._guard:
            groups = list(self._groups.values())
        return {g: groups.count(g) for g in KEEP}


def model_stem(dataset: str, name: str):
    """Where model `name` of `dataset` lives: pretrained/<dataset>/<name>, or <folder>/<name>
    for a set trained on one's own pictures (python app.py --models <folder>)."""
    if dataset in TRAINED_SETS:
        return TRAINED_SETS[dataset] / name
    return checkpoint_stem(dataset, name)


def check_dataset(dataset: str) -> str:
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; valid: {', '.join(DATASETS)}")
    return dataset


def gallery_image(dataset: str, index, name: str = "index") -> np.ndarray:
    """Gallery image `index` of `dataset`, uint8 (28, 28); out of range, a ValueError naming the
    parameter (`name`) and the dataset's range."""
    gallery = STORE.gallery(dataset)
    last = len(gallery) - 1
    if isinstance(index, bool) or not isinstance(index, (int, float, np.integer)) or \
            not float(index).is_integer() or not 0 <= index <= last:
        raise ValueError(f"{name}: {index!r} is not valid; valid: a whole number in 0..{last} "
                         f"({dataset}'s gallery)")
    return gallery.images[int(index)]


def chosen(index, image) -> bool:
    """Whether a slot holds an image (a gallery index or a picture)."""
    return index is not None or image is not None


def resolve_input(dataset: str, index, image=None, names: tuple[str, str] = ("index", "image")
                  ) -> np.ndarray:
    """The uint8 (28, 28) input: the picture `image` (a path, PIL image, array or drawing)
    when given, else gallery image `index`. A refusal names the parameter (`names`: what the
    caller calls index and image)."""
    check_dataset(dataset)
    if isinstance(image, Unreadable):
        raise ValueError(f"{names[1]}: {image.message}")
    if image is not None:
        try:
            return to_model_input(image, dataset)
        except ValueError as e:
            raise ValueError(f"{names[1]}: {e}") from None
    if index is None:
        raise ValueError(f"{names[0]} and {names[1]} are both empty: choose an image (a gallery "
                         "index, or a picture upload)")
    return gallery_image(dataset, index, names[0])


def default_pair(dataset: str) -> tuple[int, int]:
    """Default endpoints A and B: the first gallery images of two different classes."""
    labels = STORE.gallery(dataset).labels
    a = 0
    others = np.flatnonzero(labels != labels[a])
    return a, int(others[0]) if len(others) else min(1, len(labels) - 1)


STORE = Store()
