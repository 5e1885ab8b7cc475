"""A folder of one's own pictures as a dataset (explorer.data.read_folder) and training on it
(python -m explorer.train --data DIR)."""

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from explorer import train
from explorer.data import (FOLDER_MIN_IMAGES, DatasetMissingError, in_test_split, load_dataset,
                           load_gallery, read_folder)
from explorer.imageio import to_model_input

N_PER_CLASS = 30


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Two classes of MNIST digits as 28x28 PNGs (one subfolder each), plus files that are not
    pictures: a text file, a truncated PNG, an empty file, and a hidden file (not counted)."""
    root = tmp_path_factory.mktemp("pictures") / "digits"
    test = load_dataset("mnist", "test")
    for digit in (3, 7):
        (root / f"d{digit}").mkdir(parents=True)
        for i, k in enumerate(np.flatnonzero(test.labels == digit)[:N_PER_CLASS]):
            Image.fromarray(test.images[k]).save(root / f"d{digit}" / f"{i:03d}.png")
    (root / "notes.txt").write_text("not a picture")
    (root / "d3" / "broken.png").write_bytes((root / "d3" / "000.png").read_bytes()[:40])
    (root / "d7" / "empty.png").write_bytes(b"")
    (root / ".DS_Store").write_bytes(b"\0\1")
    return root


def test_a_folder_reads_every_picture_by_class_and_counts_the_rest(folder):
    splits = read_folder(folder, seed=0)
    assert len(splits.train) + len(splits.test) == 2 * N_PER_CLASS
    assert splits.train.class_names == ("d3", "d7") and splits.train.name == "digits"
    assert sorted(name for name, _ in splits.skipped) == ["d3/broken.png", "d7/empty.png",
                                                          "notes.txt"]
    # a 28x28 PNG is taken as it is: the pixels written are the pixels read
    path = folder / "d7" / "004.png"
    expected = np.asarray(Image.open(path))
    both = np.concatenate([splits.train.images, splits.test.images])
    assert any(np.array_equal(img, expected) for img in both)
    assert np.array_equal(to_model_input(path), expected)


def test_the_split_is_the_seeded_hash_of_each_name(folder):
    def by_hand(name, seed):         # sha256("seed:name") as a fraction of 2^64, under 0.1
        return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:8], "big") \
            < 0.1 * 2 ** 64
    names = [p.relative_to(folder).as_posix() for p in folder.rglob("*.png")
             if p.stat().st_size > 100]
    for seed in (0, 1):
        splits = read_folder(folder, seed=seed)
        expected = sum(by_hand(n, seed) for n in names)
        assert len(splits.test) == max(1, expected)
        assert [in_test_split(n, seed) for n in names] == [by_hand(n, seed) for n in names]
    # over many names the test share is the fraction, within 4 binomial standard deviations
    n = 20000
    share = np.mean([in_test_split(f"img{i}.png", 3) for i in range(n)])
    assert abs(share - 0.1) < 4 * np.sqrt(0.1 * 0.9 / n)


def test_bad_folders_get_clear_messages(tmp_path):
    with pytest.raises(DatasetMissingError, match="is not a folder"):
        read_folder(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no files"):
        read_folder(tmp_path / "empty")
    few = tmp_path / "few"
    few.mkdir()
    for i in range(3):
        Image.fromarray(np.full((28, 28), 40 * i + 60, np.uint8)).save(few / f"{i}.png")
    (few / "x.txt").write_text("hello")
    with pytest.raises(ValueError, match=f"has 3 readable pictures .*1 files skipped, e.g. x.txt"
                                         f".*at least {FOLDER_MIN_IMAGES}"):
        read_folder(few)
    with pytest.raises(SystemExit, match="--data: .*holds no files"):
        train.main(["vae", "--data", str(tmp_path / "empty"), "--quiet"])


def test_training_on_a_folder_writes_the_model_and_a_gallery_of_its_test_part(folder, tmp_path):
    out = tmp_path / "trained" / "vae"
    assert train.main(["vae", "--data", str(folder), "--epochs", "1", "--batch-size", "16",
                       "--eval-limit", "50", "--threads", "1", "--quiet", "--out", str(out),
                       "--set", "latent_dim=4", "channels=[8,8,8]"]) == 0
    meta = json.loads(out.with_suffix(".json").read_text())["meta"]
    assert meta["dataset"] == "digits" and meta["data"].endswith("digits")
    assert meta["command"].startswith(f"python -m explorer.train vae --data {folder} ")
    splits = read_folder(folder, seed=0)
    assert meta["steps"] == -(-len(splits.train) // 16)
    assert meta["evaluation"]["images"] == len(splits.test)
    gallery = load_gallery("digits", out.parent / "gallery.npz")
    assert np.array_equal(gallery.images, splits.test.images)
    assert gallery.class_names == ("d3", "d7")
