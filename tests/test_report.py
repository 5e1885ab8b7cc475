"""The model report: measure writes figures into the JSON records, table renders them."""

import json

import pytest
import torch

from explorer import report
from explorer.checkpoint import save_checkpoint
from explorer.frechet import Judge
from explorer.models import HVAE, VAE, VDM, HVAEConfig, VAEConfig, VDMConfig


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """Tiny untrained models and judge in a temporary pretrained/ (MNIST subset as test data)."""
    monkeypatch.setenv("EXPLORER_PRETRAINED_DIR", str(tmp_path))
    torch.manual_seed(0)
    models = {"vae": VAE(VAEConfig(latent_dim=4, channels=(8, 8, 8))),
              "hvae": HVAE(HVAEConfig(latent_shapes=((2, 7, 7), (4, 1, 1)), channels=(8, 8, 8),
                                      hidden=16)),
              "vdm": VDM(VDMConfig(T=10, channels=(8, 8), attention=False))}
    for name, model in models.items():
        save_checkpoint(model, tmp_path / "mnist" / name,
                        {"dataset": "mnist", "parameters": 1, "epochs": 1, "command": f"train {name}"})
    save_checkpoint(Judge(), tmp_path / "mnist" / "judge", {"test_accuracy": 0.1})
    return tmp_path


def test_measure_records_every_figure_and_table_renders_them(shipped):
    assert report.main(["measure", "--dataset", "mnist", "--n-samples", "40", "--n-ddpm", "20",
                        "--test-limit", "60"]) == 0
    for name in ("vae", "hvae", "vdm"):
        meta = json.loads((shipped / "mnist" / f"{name}.json").read_text())["meta"]
        bpd = meta["evaluation"]["bits_per_dim"]
        assert bpd["total"] == pytest.approx(sum(v for k, v in bpd.items() if k != "total"))
        keys = {"ddim-10", "ddpm-10"} if name == "vdm" else {"prior", "reconstruction"}
        assert keys <= set(meta["samples"])
        assert all(v["frechet_distance"] >= 0 and v["floor"] >= 0 for v in meta["samples"].values())
    hvae = json.loads((shipped / "mnist" / "hvae.json").read_text())["meta"]
    assert len(hvae["active_units"]) == 2
    text = report.table()
    assert "| mnist | hvae |" in text and "train vdm" in text


def test_training_time_is_split_by_the_hardware_each_run_used():
    meta = {"runs": [{"hardware": "x86_64 CPU, 1 threads", "training_seconds": 600},
                     {"hardware": "NVIDIA H100 (CUDA)", "training_seconds": 120},
                     {"hardware": "x86_64 CPU, 1 threads", "training_seconds": 300}]}
    assert report._training_time(meta) == "15 min, x86_64 CPU, 1 threads + 2 min, NVIDIA H100 (CUDA)"
    assert report._training_time({"hardware": "cpu", "training_seconds": 60}) == "1 min, cpu"
    fitted = {"runs": meta["runs"] + [{"hardware": "x86_64 CPU, 2 threads", "steps": 0,
                                       "training_seconds": 15}]}   # fit_prior trains nothing
    assert report._training_time(fitted) == report._training_time(meta)
