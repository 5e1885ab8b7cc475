"""What ships in pretrained/ against what the pretrained-models issue asks of it: every model for
both datasets with a record that rebuilds it and holds its figures, weights within budget, the
bits/dim order VDM < HVAE < VAE, the HVAE beating the VAE on prior samples, no collapsed HVAE
layer, and the VDM's DDIM-50 ten times closer to the data than the VAE's prior samples. The figures
are the ones `python -m explorer.report measure` / `spread` wrote: this guards a re-shipped model
against going unnoticed below the targets."""

import json
from pathlib import Path

import numpy as np
import pytest

from explorer.checkpoint import load_checkpoint
from explorer.data import DATASETS

SHIPPED = Path(__file__).resolve().parent.parent / "pretrained"
MODELS = ("vae", "vae2d", "hvae", "vdm")
WEIGHTS_BUDGET = 40_000_000                    # bytes, all weights together
FASHION_TARGETS = {"vae": 3.30, "hvae": 3.15, "vdm": 3.00}     # test bits/dim, at most


def meta(dataset: str, name: str) -> dict:
    return json.loads((SHIPPED / dataset / f"{name}.json").read_text())["meta"]


def test_the_weights_fit_the_budget():
    files = list(SHIPPED.glob("*/*.safetensors"))
    assert len(files) == len(DATASETS) * (len(MODELS) + 1)          # and a judge each
    assert sum(f.stat().st_size for f in files) <= WEIGHTS_BUDGET


@pytest.mark.parametrize("dataset", DATASETS)
@pytest.mark.parametrize("name", MODELS)
def test_each_model_loads_and_its_record_rebuilds_and_measures_it(dataset, name):
    model, record = load_checkpoint(SHIPPED / dataset / name)
    assert model.kind == ("vae" if name == "vae2d" else name) and record["dataset"] == dataset
    for key in ("seed", "epochs", "training_seconds", "hardware", "parameters"):
        assert record[key] is not None
    assert record["command"].startswith(f"python -m explorer.train {model.kind} --dataset {dataset}")
    bpd = record["evaluation"]["bits_per_dim"]
    assert bpd["total"] == pytest.approx(sum(v for k, v in bpd.items() if k != "total"))
    for score in record["samples"].values():   # (a reconstruction may beat the floor)
        assert score["floor"] > 0 and score["frechet_distance"] > 0 and score["n"] >= 1000
    assert (SHIPPED / dataset / "gallery.npz").is_file()
    if name == "vae2d":
        assert model.config.latent_dim == 2


@pytest.mark.parametrize("dataset", DATASETS)
def test_bits_per_dim_fall_along_the_road_vae_hvae_vdm(dataset):
    bpd = {name: meta(dataset, name)["evaluation"]["bits_per_dim"]["total"]
           for name in ("vae", "hvae", "vdm")}
    assert bpd["vdm"] < bpd["hvae"] < bpd["vae"]
    if dataset == "fashion-mnist":
        assert all(bpd[name] <= target for name, target in FASHION_TARGETS.items())


@pytest.mark.parametrize("dataset", DATASETS)
def test_the_hvae_beats_the_vae_and_keeps_every_layer(dataset):
    hvae, vae = meta(dataset, "hvae"), meta(dataset, "vae")
    assert (hvae["samples"]["prior"]["frechet_distance"]
            < vae["samples"]["prior"]["frechet_distance"])
    assert len(hvae["active_units"]) >= 2 and min(hvae["active_units"]) > 0


@pytest.mark.parametrize("dataset", DATASETS)
def test_the_vdm_samples_ten_times_closer_than_the_vae_prior(dataset):
    """On the mean of the recorded draws (`report spread`), every draw against the same test
    images; the step trade-off DDIM-20 / DDIM-50 / DDPM-1000 is measured too."""
    vdm, vae = meta(dataset, "vdm"), meta(dataset, "vae")
    assert {"ddim-20", "ddim-50", "ddpm-1000"} <= set(vdm["samples"])
    ddim, prior = vdm["spread"]["ddim-50"], vae["spread"]["prior"]
    assert ddim["seeds"] == prior["seeds"] and len(ddim["seeds"]) >= 5
    assert ddim["frechet_distance"][0] == pytest.approx(
        vdm["samples"]["ddim-50"]["frechet_distance"], rel=1e-3)      # seed 0: the table's
    assert np.mean(prior["frechet_distance"]) >= 10 * np.mean(ddim["frechet_distance"])
