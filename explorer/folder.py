"""A folder of one's own pictures as a dataset: `python -m explorer.train --data DIR` trains on
it, `python app.py --models DIR` shows what it wrote as one more dataset.

  * read_folder -- every picture under DIR (any format and size explorer.imageio reads), classes
    from subfolders, train / test by a seeded sha256 of each file's name (in_test_split), and
    clear refusals for a missing, empty or too small folder.
  * folder_gallery -- the gallery written beside the checkpoints: the test part, at most
    FOLDER_GALLERY_MAX pictures.
  * trained_sets -- the folders $EXPLORER_MODELS lists (explorer.data adds them to DATASETS).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from .paths import shown_path

if TYPE_CHECKING:
    from .data import ImageSet

MODELS_ENV = "EXPLORER_MODELS"      # folders of sets trained with --data (python app.py --models)
FOLDER_MIN_IMAGES = 20              # fewer readable pictures than this are refused
FOLDER_TEST_FRACTION = 0.1          # the share of a folder's pictures in its test split
FOLDER_GALLERY_MAX = 2000           # a folder's gallery: its test split, at most this many


def trained_sets(taken: Sequence[str] = (), env: dict | None = None) -> dict[str, Path]:
    """name -> folder of each set trained on one's own pictures that $EXPLORER_MODELS lists
    (folders separated by os.pathsep; each holds the checkpoints and gallery.npz that
    `python -m explorer.train --data` wrote; the folder's name is the dataset's). A name in
    `taken` (the shipped datasets) or listed twice is refused."""
    value = (os.environ if env is None else env).get(MODELS_ENV, "")
    sets = {}
    for folder in (Path(f) for f in value.split(os.pathsep) if f.strip()):
        name = folder.resolve().name
        if name in taken or name in sets:
            raise ValueError(f"{MODELS_ENV}: {shown_path(folder)} is named like the dataset "
                             f"{name!r} already shown; give its folder another name")
        sets[name] = folder
    return sets


@dataclass(frozen=True)
class FolderSplits:
    """A folder of pictures as train and test ImageSets (class = subfolder), and what was
    skipped: (file, why) of every file that is not a readable picture."""

    train: ImageSet
    test: ImageSet
    skipped: tuple[tuple[str, str], ...]


def in_test_split(name: str, seed: int, fraction: float = FOLDER_TEST_FRACTION) -> bool:
    """Whether file `name` is a test image: u = sha256("seed:name") as a number in [0, 1) is
    below `fraction`. A file's split depends on its own name only, so adding pictures to the
    folder never moves the others between splits."""
    return _name_hash(name, seed) < fraction


def _name_hash(name: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def read_folder(folder: str | Path, seed: int = 0,
                test_fraction: float = FOLDER_TEST_FRACTION) -> FolderSplits:
    """Every picture under `folder` (any format and size explorer.imageio reads, made the
    28x28 white-on-black image the models see), split by in_test_split (the lowest hash goes to
    test when none falls below the fraction). Subfolders name the classes; pictures at the top
    are of a class named after the folder. Raises DatasetMissingError for a missing folder and
    ValueError for an empty one or one with fewer than FOLDER_MIN_IMAGES readable pictures."""
    # late: explorer.data imports this module (for trained_sets) as it is imported
    from .data import DatasetMissingError, ImageSet
    from .imageio import read_folder as read_pictures
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetMissingError(f"{shown_path(folder)} is not a folder")
    names, images, skipped = read_pictures(folder, folder.name)
    if not names and not skipped:
        raise ValueError(f"{shown_path(folder)} holds no files: put pictures (PNG, JPEG, ...) "
                         "in it, or in one subfolder per class")
    if len(names) < FOLDER_MIN_IMAGES:
        raise ValueError(f"{shown_path(folder)} has {len(names)} readable pictures (and "
                         f"{len(skipped)} files skipped{_first_skipped(skipped)}); at least "
                         f"{FOLDER_MIN_IMAGES} are needed to train and test on")
    classes = sorted({_class_of(n, folder.name) for n in names})
    labels = np.array([classes.index(_class_of(n, folder.name)) for n in names], dtype=np.int64)
    test = np.array([in_test_split(n, seed, test_fraction) for n in names])
    if not test.any():
        test[int(np.argmin([_name_hash(n, seed) for n in names]))] = True
    whole = ImageSet(folder.name, images, labels, tuple(classes))
    return FolderSplits(whole.subset(~test), whole.subset(test), tuple(skipped))


def _class_of(name: str, top: str) -> str:
    parts = name.split("/")
    return parts[0] if len(parts) > 1 else top


def _first_skipped(skipped) -> str:
    return f", e.g. {skipped[0][0]}: {skipped[0][1]}" if skipped else ""


def folder_gallery(splits: FolderSplits, seed: int = 0) -> ImageSet:
    """A folder's gallery: its test split, or a seeded random FOLDER_GALLERY_MAX of it in order."""
    test = splits.test
    if len(test) <= FOLDER_GALLERY_MAX:
        return test
    rng = np.random.default_rng(seed)
    return test.subset(np.sort(rng.choice(len(test), FOLDER_GALLERY_MAX, replace=False)))
