"""Weights on disk against the SHA-256 their record holds: an intact copy of a shipped checkpoint
loads, a damaged one refuses with the command that rebuilds it (it would otherwise load its nan
weights silently), `python -m explorer.report verify` says which file is which, and messages
show paths inside the project relative to it, never the checkout's absolute path."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from explorer import paths, report
from explorer.checkpoint import DIGEST_KEY, CheckpointError, load_checkpoint
from explorer.data import load_gallery

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "pretrained"
DAMAGE = slice(400_000, 600_000)               # 200 KB inside the tensor data of vae.safetensors


def copy_shipped(to: Path, names=("vae",), dataset="mnist") -> Path:
    """`to/<dataset>/<name>.{json,safetensors}` copied from the shipped files; returns the folder."""
    folder = to / dataset
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        for suffix in (".json", ".safetensors"):
            shutil.copyfile(SHIPPED / dataset / f"{name}{suffix}", folder / f"{name}{suffix}")
    return folder


def damage(weights: Path) -> None:
    """Overwrite 200 KB of the weights with 0xff bytes (float32 nan), the header left intact."""
    data = bytearray(weights.read_bytes())
    data[DAMAGE] = b"\xff" * (DAMAGE.stop - DAMAGE.start)
    weights.write_bytes(bytes(data))


def record(stem: Path) -> dict:
    return json.loads(stem.with_suffix(".json").read_text())


def run_verify(pretrained: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != paths.PRETRAINED_ENV}
    if pretrained is not None:
        env[paths.PRETRAINED_ENV] = str(pretrained)
    return subprocess.run([sys.executable, "-m", "explorer.report", "verify"], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)


RECORDS = sorted(p for p in SHIPPED.glob("*/*.json") if p.with_suffix(".safetensors").exists())


@pytest.mark.parametrize("path", RECORDS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_shipped_record_holds_the_digest_of_its_weights(path):
    weights = path.with_suffix(".safetensors").read_bytes()
    assert json.loads(path.read_text())[DIGEST_KEY] == hashlib.sha256(weights).hexdigest()


def test_an_intact_copy_loads_the_shipped_model(tmp_path):
    folder = copy_shipped(tmp_path)
    copy, meta = load_checkpoint(folder / "vae")
    shipped, _ = load_checkpoint(SHIPPED / "mnist" / "vae")
    assert meta["dataset"] == "mnist"
    for (name, a), (_, b) in zip(copy.state_dict().items(), shipped.state_dict().items()):
        assert torch.equal(a, b), name


def test_a_damaged_copy_refuses_to_load_and_names_the_rebuild_command(tmp_path):
    stem = copy_shipped(tmp_path) / "vae"
    damage(stem.with_suffix(".safetensors"))
    found = hashlib.sha256(stem.with_suffix(".safetensors").read_bytes()).hexdigest()
    expected, command = record(stem)[DIGEST_KEY], record(stem)["meta"]["command"]
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(stem)
    assert str(err.value) == (f"damaged {stem}.safetensors (sha256 {found[:12]}, its record "
                              f"expects {expected[:12]}); rebuild it with: {command}")


def test_a_record_without_the_digest_still_loads_unchecked(tmp_path):
    """Checkpoints saved before digests were kept load as before, damage and all: the nan weights
    the digest is there to catch."""
    stem = copy_shipped(tmp_path) / "vae"
    damage(stem.with_suffix(".safetensors"))
    old = {k: v for k, v in record(stem).items() if k != DIGEST_KEY}
    stem.with_suffix(".json").write_text(json.dumps(old, indent=2) + "\n")
    model, _ = load_checkpoint(stem)
    assert any(torch.isnan(p).any() for p in model.state_dict().values())


def test_rewriting_the_meta_keeps_the_digest(tmp_path):
    stem = copy_shipped(tmp_path) / "vae"
    before = record(stem)
    report._write_meta(stem, {**before["meta"], "note": "re-measured"})
    assert record(stem)[DIGEST_KEY] == before[DIGEST_KEY]
    assert list(record(stem)) == list(before)


def test_report_verify_passes_the_shipped_weights():
    done = run_verify()
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == len(list(SHIPPED.glob("*/*.safetensors")))
    assert all(line.startswith("ok pretrained/") for line in lines), lines


def test_report_verify_fails_on_a_damaged_copy(tmp_path):
    for folder in SHIPPED.iterdir():
        if folder.is_dir():
            names = [p.stem for p in folder.glob("*.json")
                     if p.with_suffix(".safetensors").exists()]
            copy_shipped(tmp_path, names, folder.name)
    damage(tmp_path / "mnist" / "vae.safetensors")
    done = run_verify(tmp_path)
    assert done.returncode == 1
    bad = [line for line in done.stdout.splitlines() if not line.startswith("ok ")]
    assert len(bad) == 1 and bad[0].startswith(f"damaged {tmp_path}/mnist/vae.safetensors (sha256")
    assert "rebuild it with: python -m explorer.train vae --dataset mnist" in bad[0]


def test_report_verify_names_a_missing_file(tmp_path):
    copy_shipped(tmp_path, ("vae",))
    lines = dict(report._verify_line(tmp_path / "mnist" / name) for name in ("vae", "vdm"))
    assert lines[True] == f"ok {tmp_path}/mnist/vae.safetensors"
    assert lines[False].startswith(f"missing {tmp_path}/mnist/vdm.json; rebuild it with: ")


# ---------------------------------------------------------------- paths in messages

def test_shown_path_is_relative_to_the_project_inside_it_and_as_given_outside(tmp_path):
    assert paths.shown_path(REPO / "pretrained" / "mnist" / "vae.json") == "pretrained/mnist/vae.json"
    assert paths.shown_path(tmp_path / "vae.json") == str(tmp_path / "vae.json")


def test_a_missing_checkpoint_inside_the_project_shows_no_absolute_path():
    stem = REPO / "pretrained" / "no-such-dataset" / "vae"          # nothing is created there
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(stem)
    assert str(err.value) == ("missing pretrained/no-such-dataset/vae.json; rebuild it with: "
                              "python -m explorer.train vae --dataset no-such-dataset "
                              "--out pretrained/no-such-dataset/vae")
    with pytest.raises(FileNotFoundError) as err:
        load_gallery("mnist", REPO / "pretrained" / "no-such-dataset" / "gallery.npz")
    assert str(REPO) not in str(err.value) and "pretrained/no-such-dataset/gallery.npz" in str(err.value)


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """tmp_path taken for the project root, with a copy of the shipped MNIST VAE and judge."""
    root = tmp_path.resolve()
    monkeypatch.setattr(paths, "PROJECT_ROOT", root)
    copy_shipped(root / "pretrained", ("vae", "judge"))
    return root


@pytest.mark.parametrize("harm", ["damaged", "missing", "corrupt", "unreadable"])
def test_weights_messages_inside_the_project_show_no_absolute_path(checkout, harm):
    stem = checkout / "pretrained" / "mnist" / "vae"
    weights = stem.with_suffix(".safetensors")
    if harm == "damaged":
        damage(weights)
    elif harm == "missing":
        weights.unlink()
    elif harm == "corrupt":                        # no digest to catch it: the header check does
        stem.with_suffix(".json").write_text(json.dumps(
            {k: v for k, v in record(stem).items() if k != DIGEST_KEY}))
        weights.write_bytes(b"not a safetensors file")
    else:
        weights.unlink()
        weights.mkdir()                            # reading a folder: IsADirectoryError
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(stem)
    message = str(err.value)
    assert message.startswith(f"{harm} pretrained/mnist/vae.safetensors")
    assert str(checkout) not in message
    assert message.endswith(f"rebuild it with: {record(stem)['meta']['command']}")


def test_a_missing_judge_record_inside_the_project_shows_a_relative_rebuild_command(checkout):
    stem = checkout / "pretrained" / "mnist" / "judge"
    stem.with_suffix(".json").unlink()
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(stem)
    assert str(err.value) == ("missing pretrained/mnist/judge.json; rebuild it with: python -m "
                              "explorer.frechet train --dataset mnist --out pretrained/mnist/judge")
