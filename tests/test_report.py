"""The model report: measure writes figures into the JSON records, table renders them."""

import json

import numpy as np
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
    vdm = json.loads((shipped / "mnist" / "vdm.json").read_text())["meta"]["samples"]
    # how each was drawn: Heun's 5 steps are 9 network evaluations (T = 10 caps the others)
    assert (vdm["heun-5"]["sampler"], vdm["heun-5"]["steps"], vdm["heun-5"]["nfe"]) == ("heun", 5, 9)
    assert (vdm["ddpm-10"]["sampler"], vdm["ddpm-10"]["nfe"]) == ("ddpm", 10)
    hvae = json.loads((shipped / "mnist" / "hvae.json").read_text())["meta"]
    assert len(hvae["active_units"]) == 2
    text = report.table()
    assert "| mnist | hvae |" in text and "train vdm" in text


def test_measure_only_rescores_the_named_samples(shipped):
    """`--only` re-scores the named VDM samples (here the evenly spaced DDIM-10, the same draws
    as the default spacing's when all T = 10 steps are taken) and keeps every other figure."""
    path = shipped / "mnist" / "vdm.json"
    record = json.loads(path.read_text())
    record["meta"].update(evaluation={"bits_per_dim": {"total": 9.0}}, measured_seconds=1.0,
                          samples={"ddpm-10": {"n": 20, "frechet_distance": -1.0, "floor": 0.0}})
    path.write_text(json.dumps(record))
    assert report.main(["measure", "--dataset", "mnist", "--models", "vdm", "--n-samples", "30",
                        "--only", "ddim-10,ddim-10-linspace"]) == 0
    meta = json.loads(path.read_text())["meta"]
    assert meta["evaluation"] == {"bits_per_dim": {"total": 9.0}} and meta["measured_seconds"] == 1
    assert list(meta["samples"]) == ["ddim-10", "ddim-10-linspace", "ddpm-10"]
    assert meta["samples"]["ddpm-10"]["frechet_distance"] == -1.0          # kept as it was,
    assert meta["samples"]["ddpm-10"]["nfe"] == 10                  # saying how it was drawn
    karras, even = meta["samples"]["ddim-10"], meta["samples"]["ddim-10-linspace"]
    assert (karras["timestep_spacing"], karras["rho"], even["timestep_spacing"]) == (
        "karras", report.KARRAS_RHO, "linspace")
    assert karras["n"] == 30 and karras["frechet_distance"] == even["frechet_distance"] >= 0


def test_spread_repeats_the_headline_scores_with_other_draws(shipped):
    """Draw seed 0 of the spread is the table's own score (the same draws against the same
    reference); other seeds draw other images; the table's spread row is the records' mean,
    standard deviation and VAE / VDM ratios."""
    assert report.main(["measure", "--dataset", "mnist", "--models", "vae,vdm", "--n-samples", "30",
                        "--only", "prior,ddim-10"]) == 0
    assert "Draw-to-draw" not in report.table()                  # no spread recorded yet
    assert report.main(["spread", "--dataset", "mnist", "--n-samples", "30",
                        "--seeds", "0,1,2"]) == 0
    vae, vdm = (json.loads((shipped / "mnist" / f"{name}.json").read_text())["meta"]
                for name in ("vae", "vdm"))
    for meta, key in ((vae, "prior"), (vdm, "ddim-10")):       # the tiny VDM has T = 10
        got = meta["spread"][key]
        assert (got["n"], got["reference_seed"], got["seeds"]) == (30, 0, [0, 1, 2])
        assert got["frechet_distance"][0] == pytest.approx(meta["samples"][key]["frechet_distance"])
        assert len(set(got["frechet_distance"])) == 3
    a = np.array(vae["spread"]["prior"]["frechet_distance"])
    b = np.array(vdm["spread"]["ddim-10"]["frechet_distance"])
    row = next(line for line in report.table().splitlines()
               if line.startswith("| mnist | 3 x 30 |"))
    assert f"| prior {a.mean():.2f} +- {a.std(ddof=1):.2f} |" in row
    assert f"| ddim-10 {b.mean():.2f} +- {b.std(ddof=1):.2f} |" in row
    assert f"| {a.mean() / b.mean():.2f} | {a[0] / b[0]:.2f}, {a[1] / b[1]:.2f}, " \
           f"{a[2] / b[2]:.2f} |" in row


def test_training_time_is_split_by_the_hardware_each_run_used():
    meta = {"runs": [{"hardware": "x86_64 CPU, 1 threads", "training_seconds": 600},
                     {"hardware": "NVIDIA H100 (CUDA)", "training_seconds": 120},
                     {"hardware": "x86_64 CPU, 1 threads", "training_seconds": 300}]}
    assert report._training_time(meta) == "15 min, x86_64 CPU, 1 threads + 2 min, NVIDIA H100 (CUDA)"
    assert report._training_time({"hardware": "cpu", "training_seconds": 60}) == "1 min, cpu"
    fitted = {"runs": meta["runs"] + [{"hardware": "x86_64 CPU, 2 threads", "steps": 0,
                                       "training_seconds": 15}]}   # fit_prior trains nothing
    assert report._training_time(fitted) == report._training_time(meta)


def test_card_says_what_the_record_holds_and_nothing_else():
    """The app's "About the model" line: figures from the record, the prior and loss from the
    config; floors once when the scores share one, per score when they differ."""
    meta = {"parameters": 640117, "epochs": 10.24, "training_images": None,
            "runs": [{"hardware": "cpu", "training_seconds": 1800},
                     {"hardware": "gpu", "training_seconds": 600}],
            "evaluation": {"bits_per_dim": {"reconstruction": 0.2, "total": 2.9494}},
            "samples": {"ddim-50": {"n": 1000, "frechet_distance": 23.91, "floor": 11.34},
                        "ddpm-1000": {"n": 1000, "frechet_distance": 17.8, "floor": 11.34}}}
    text = report.card(meta, VDMConfig(prior="fitted", prior_rank=64, loss="weighted",
                                       weight_scale=9.0, weight_logsnr=0.0))
    assert text.startswith("640,117 parameters; 10.2 epochs on the training split "
                           "(30 min, cpu + 10 min, gpu); test -ELBO **2.949 bits/dim**")
    assert "floor 11.3): DDIM-50 **23.9**, DDPM-1000 **17.8**" in text
    assert "N(m, S) fitted to q(x_T) (mean and rank-64 covariance)" in text
    assert "w = 1 + 9 sigmoid(0 - log SNR(t))" in text
    vae = {"epochs": 3, "training_images": 128,
           "samples": {"prior": {"n": 40, "frechet_distance": 196.8, "floor": 11.3},
                       "reconstruction": {"n": 20, "frechet_distance": 34.1, "floor": 12.0}}}
    text = report.card(vae, VAEConfig())
    assert "3 epochs on the first 128 training images" in text and "parameters" not in text
    assert "prior samples **196.8** (floor 11.3), reconstructions **34.1** (floor 12.0)" in text
    assert "p(x_T)" not in text and "sigmoid" not in text
    assert report.card({}, VDMConfig()) == ("its record holds no training or evaluation "
                                            "figures; prior p(x_T) = N(0, I).")


@pytest.mark.parametrize("dataset", ["fashion-mnist", "mnist"])
def test_the_shipped_vdm_scores_plot_against_their_network_evaluations(dataset):
    """"About the model" plots every score of the shipped VDM's record at the network
    evaluations its sampler makes (Heun: 2 n - 1 for n steps), one line per sampler and spacing,
    over the floor."""
    from ui.plots import sampler_quality_plot
    from explorer.checkpoint import load_checkpoint
    from explorer.samplers import make_sampler
    model, meta = load_checkpoint(report.pretrained_dir() / dataset / "vdm")
    samples = meta["samples"]
    assert {report.sample_key(*s) for s in report.VDM_SAMPLERS} <= set(samples)
    fig = sampler_quality_plot(samples)
    points = {(trace.name, x): y for trace in fig.data for x, y in zip(trace.x, trace.y)}
    assert len(points) == len(samples)
    for sampler, steps, spacing in report.VDM_SAMPLERS:
        score = samples[report.sample_key(sampler, steps, spacing)]
        sampler_run = make_sampler(sampler, model.schedule)
        sampler_run.set_timesteps(steps)
        nfe = sampler_run.nfe
        assert score["nfe"] == nfe == (2 * steps - 1 if sampler == "heun" else steps)
        assert score["frechet_distance"] in points.values()
    assert fig.layout.shapes[0].y0 == min(s["floor"] for s in samples.values())
    assert sampler_quality_plot({"prior": {"n": 1, "frechet_distance": 3.0, "floor": 1.0}}) is None
