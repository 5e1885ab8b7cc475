"""A folder of one's own pictures as a dataset (explorer.folder.read_folder) and training on it
(python -m explorer.train --data DIR), shown by the app as one more dataset (--models DIR)."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explorer import data, train
from explorer.checkpoint import CheckpointError, read_record
from explorer.data import DatasetMissingError, load_dataset, load_gallery
from explorer.folder import FOLDER_MIN_IMAGES, in_test_split, read_folder
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


def test_a_model_missing_from_a_trained_set_says_to_train_on_the_folder(tmp_path, monkeypatch):
    """The rebuild hint of a missing record names --data, never --dataset <the folder's name>:
    the pictures' folder another record of the set names, else DIR for a set $EXPLORER_MODELS
    lists; a folder that is neither keeps --dataset."""
    trained = tmp_path / "digits"
    trained.mkdir()
    with pytest.raises(CheckpointError) as err:
        read_record(trained / "hvae")
    assert f"explorer.train hvae --dataset digits --out {trained / 'hvae'}" in str(err.value)
    monkeypatch.setattr(data, "TRAINED_SETS", {"digits": trained})
    with pytest.raises(CheckpointError) as err:
        read_record(trained / "hvae")
    assert str(err.value) == (f"missing {trained / 'hvae.json'}; rebuild it with: python -m "
                              f"explorer.train hvae --data DIR --out {trained / 'hvae'}")
    record = {"kind": "vdm", "meta": {"data": "photos/digits"}}      # what --data wrote
    (trained / "vdm.json").write_text(json.dumps(record))
    with pytest.raises(CheckpointError) as err:
        read_record(trained / "vae2d")
    assert str(err.value).endswith("rebuild it with: python -m explorer.train vae --data "
                                   f"photos/digits --out {trained / 'vae2d'} --set latent_dim=2")


# the app with a trained set: launched in a child process, since explorer.data reads
# $EXPLORER_MODELS once, at import; it prints what gradio_client got back as JSON
APP_SCRIPT = """
import json, sys
import numpy as np
from PIL import Image
import app
from bench.client import gradio_client
from ui.compute import page_compute
_, url, _ = app.launch(server_name="127.0.0.1", prevent_thread_lock=True, quiet=True)
client = gradio_client(url)
pair = client.predict("digits", 2, None, 2, 0, api_name="/vae_encode")[0]
clean = client.predict("digits", 2, None, "learned", 3, 0, api_name="/vdm_forward")[0]
try:
    client.predict("digits", 2, None, 2, 0, api_name="/hvae_encode")
    hvae = "answered"
except Exception as e:
    hvae = str(e)
radio = next(c for c in client.config["components"] if c.get("props", {}).get("elem_id") == "dataset")
print(json.dumps({"choices": radio["props"]["choices"], "pair": pair, "clean": clean,
                  "hvae": hvae, "page_compute": page_compute("digits")}))
app.demo.close()
"""


def test_the_app_shows_a_trained_set_as_a_dataset(folder, tmp_path):
    trained = tmp_path / "digits"
    for kind, tiny in (("vae", ["latent_dim=4", "channels=[8,8,8]"]),
                       ("vdm", ["T=20", "channels=[8,16]", "attention=false"])):
        assert train.main([kind, "--data", str(folder), "--epochs", "1", "--batch-size", "16",
                           "--eval-limit", "0", "--threads", "1", "--quiet", "--out",
                           str(trained / kind), "--set", *tiny]) == 0
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", APP_SCRIPT], cwd=root, capture_output=True,
                          text=True, timeout=300, check=False,
                          env={**os.environ, "EXPLORER_MODELS": str(trained),
                               "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr[-3000:]
    got = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("{")))
    assert got["choices"][-1][0] == "digits" and len(got["choices"]) == 3
    for result in (got["pair"], got["clean"]):     # the VAE and VDM tabs drew gallery image 2
        assert np.asarray(Image.open(result)).size > 0
    assert "hierarchical VAE for digits is not available" in got["hvae"]
    assert f"python -m explorer.train hvae --data {folder} --out" in got["hvae"]
    assert got["page_compute"] is None                 # no ONNX graph: the server computes
    assert len(load_gallery("digits", trained / "gallery.npz")) == len(read_folder(folder).test)
