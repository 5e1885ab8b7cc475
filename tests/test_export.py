"""The shipped ONNX graphs (explorer/export.py) are the shipped networks: onnxruntime on the CPU
gives what torch gives on random inputs (every timestep range of the VDM, each HVAE layer given
alone, all, none), they were exported from the weights that ship beside them, and they fit the
size limits (each file < 10 MB, pretrained/ <= 60 MB)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from explorer import export
from explorer.checkpoint import DIGEST_KEY, load_checkpoint
from explorer.data import DATASETS
from explorer.paths import PRETRAINED_ENV, checkpoint_stem, pretrained_dir

ort = pytest.importorskip("onnxruntime")

TOLERANCE = 1e-4                      # float32 graphs vs torch (measured: ~3e-6)


def session(dataset: str, name: str):
    return ort.InferenceSession(str(pretrained_dir() / dataset / f"{name}.onnx"),
                                providers=["CPUExecutionProvider"])


def model(dataset: str, name: str):
    return load_checkpoint(checkpoint_stem(dataset, name))[0]


@pytest.mark.parametrize("dataset", DATASETS)
def test_the_shipped_graphs_are_whole_and_from_the_shipped_weights(dataset):
    assert export.check_exports(dataset) == []
    for name in export.SOURCES:
        assert (pretrained_dir() / dataset / f"{name}.onnx").stat().st_size < 10 * 2**20


def test_pretrained_stays_within_60_mb():
    total = sum(p.stat().st_size for p in pretrained_dir().rglob("*") if p.is_file())
    assert total <= 60 * 2**20


@pytest.mark.parametrize("dataset", DATASETS)
def test_vdm_eps_graph_predicts_the_noise_torch_predicts(dataset):
    vdm, graph = model(dataset, "vdm"), session(dataset, "vdm_eps")
    g = torch.Generator().manual_seed(0)
    x_t = torch.randn(5, 1, 28, 28, generator=g)
    for t in ([1, 2, 3, 4, 5], [100, 250, 500, 750, 999], [vdm.T] * 5):
        t = torch.tensor(t)
        with torch.no_grad():
            expected = vdm.predict_noise(x_t, t).numpy()
        got = graph.run(None, {"x_t": x_t.numpy(), "t": t.numpy()})[0]
        assert np.abs(got - expected).max() < TOLERANCE


@pytest.mark.parametrize("dataset", DATASETS)
def test_vae_decoder_graph_decodes_as_torch(dataset):
    vae, graph = model(dataset, "vae"), session(dataset, "vae_decoder")
    z = torch.randn(6, vae.config.latent_dim, generator=torch.Generator().manual_seed(1)) * 2
    with torch.no_grad():
        expected = vae.decode_mean(z).numpy()
    got = graph.run(None, {"z": z.numpy()})[0]
    assert got.shape == (6, 1, 28, 28) and np.abs(got - expected).max() < TOLERANCE


@pytest.mark.parametrize("dataset", DATASETS)
def test_hvae_decoder_graph_is_decode_at_temperature_zero(dataset):
    """Any set of layers given (None for the rest in HVAE.decode), as the interpolation uses it."""
    hvae, graph = model(dataset, "hvae"), session(dataset, "hvae_decoder")
    shapes = hvae.config.latent_shapes
    g = torch.Generator().manual_seed(2)
    zs = [torch.randn(4, *s, generator=g) for s in shapes]
    masks = [[i == k for i in range(len(shapes))] for k in range(len(shapes))]
    masks += [[True] * len(shapes), [False] * len(shapes)]
    for mask in masks:
        latents = [z if keep else None for z, keep in zip(zs, mask)]
        with torch.no_grad():
            expected = hvae.decode(latents, 0.0, n=4).x_mean.numpy()
        feed = {f"z_{i + 1}": z.numpy() for i, z in enumerate(zs)}
        got = graph.run(None, {**feed, "given": np.array(mask, np.float32)})[0]
        assert np.abs(got - expected).max() < TOLERANCE, mask


def test_graphs_exported_from_other_weights_are_called_stale(tmp_path, monkeypatch):
    copy = tmp_path / "pretrained"
    shutil.copytree(pretrained_dir(), copy)
    monkeypatch.setenv(PRETRAINED_ENV, str(copy))
    record = copy / "mnist" / "vae.json"
    text = record.read_text()
    import json
    data = json.loads(text)
    data[DIGEST_KEY] = "0" * 64
    record.write_text(json.dumps(data, indent=2) + "\n")
    (copy / "mnist" / "vdm_eps.onnx").write_bytes(b"not a graph")
    problems = export.check_exports("mnist")
    assert any(p.startswith("stale pretrained") or "stale" in p and "vae_decoder" in p
               for p in problems)
    assert any("damaged" in p and "vdm_eps" in p for p in problems)
    assert all("python -m explorer.export --dataset mnist" in p for p in problems)
    assert export.check_exports("fashion-mnist") == []
