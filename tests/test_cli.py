"""The command lines end to end on the MNIST subset: train a tiny model, evaluate, sample."""

import json
import shutil

import numpy as np
import pytest
import torch

from explorer import evaluate, fit_prior, sample, train
from explorer.checkpoint import load_checkpoint

TINY_SET = {
    "vae": ["latent_dim=4", "channels=[8,8,8]"],
    "hvae": ["latent_shapes=[[2,7,7],[4,1,1]]", "channels=[8,8,8]", "hidden=16"],
    "vdm": ["T=20", "channels=[8,16]", "attention=false"],
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny checkpoint of each kind, trained for a few steps on 256 MNIST images."""
    root = tmp_path_factory.mktemp("ckpt")
    stems = {}
    for kind, overrides in TINY_SET.items():
        stem = root / kind
        assert train.main([kind, "--dataset", "mnist", "--epochs", "2", "--batch-size", "64",
                           "--limit", "256", "--eval-limit", "100", "--seed", "3", "--quiet",
                           "--out", str(stem), "--set", *overrides]) == 0
        stems[kind] = stem
    return stems


@pytest.mark.parametrize("kind", sorted(TINY_SET))
def test_train_records_what_rebuilds_it(trained, kind):
    record = json.loads(trained[kind].with_suffix(".json").read_text())
    meta = record["meta"]
    assert record["kind"] == kind
    assert meta["dataset"] == "mnist" and meta["seed"] == 3 and meta["epochs"] == 2
    assert len(meta["runs"]) == 1 and meta["runs"][0]["command"] == meta["command"]
    assert meta["training_seconds"] > 0 and meta["parameters"] > 0
    assert meta["command"].startswith(f"python -m explorer.train {kind} --dataset mnist")
    bpd = meta["evaluation"]["bits_per_dim"]
    assert bpd["total"] == pytest.approx(sum(v for k, v in bpd.items() if k != "total"))


@pytest.mark.parametrize("kind", sorted(TINY_SET))
def test_evaluate_json_terms_sum_to_total(trained, kind, capsys):
    assert evaluate.main([kind, "--dataset", "mnist", "--checkpoint", str(trained[kind]),
                          "--limit", "50", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    nats = out["nats"]
    assert out["images"] == 50
    assert nats["total"] == pytest.approx(sum(v for k, v in nats.items() if k != "total"))
    assert out["bits_per_dim"]["total"] == pytest.approx(nats["total"] / (784 * np.log(2)))


def test_evaluate_exact_vdm_agrees_with_the_estimate(trained, capsys):
    args = ["vdm", "--dataset", "mnist", "--checkpoint", str(trained["vdm"]), "--limit", "20",
            "--json"]
    evaluate.main(args + ["--exact"])
    exact = json.loads(capsys.readouterr().out)["nats"]
    evaluate.main(args + ["--t-samples", "40"])
    estimate = json.loads(capsys.readouterr().out)["nats"]
    assert estimate["diffusion"] == pytest.approx(exact["diffusion"], rel=0.15)


@pytest.mark.parametrize("kind,extra", [("vae", []), ("hvae", []),
                                        ("vdm", ["--sampler", "ddim", "--steps", "5"]),
                                        ("vdm", ["--sampler", "ddpm", "--steps", "20"])])
def test_sample_writes_uint8_and_is_seeded(trained, kind, extra, tmp_path):
    paths = [tmp_path / f"{i}.npy" for i in range(3)]
    for path, seed in zip(paths, (7, 7, 8)):
        assert sample.main([kind, "--dataset", "mnist", "--checkpoint", str(trained[kind]),
                            "--n", "6", "--seed", str(seed), "--out", str(path), *extra]) == 0
    a, b, c = (np.load(p) for p in paths)
    assert a.shape == (6, 28, 28) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_bad_arguments_exit_with_a_message(trained, tmp_path):
    with pytest.raises(SystemExit, match="steps"):
        sample.main(["vdm", "--dataset", "mnist", "--checkpoint", str(trained["vdm"]),
                     "--steps", "0", "--out", str(tmp_path / "x.npy")])
    with pytest.raises(SystemExit, match="unknown VAEConfig"):
        train.main(["vae", "--dataset", "mnist", "--set", "latent_size=3", "--quiet"])


def test_init_continues_a_checkpoint_and_accumulates_its_record(trained, tmp_path):
    start, out = tmp_path / "start", tmp_path / "more"        # a copy, with a note of its own
    shutil.copyfile(trained["vae"].with_suffix(".safetensors"), start.with_suffix(".safetensors"))
    record = json.loads(trained["vae"].with_suffix(".json").read_text())
    record["meta"]["note"] = "stopped after epoch 2"
    start.with_suffix(".json").write_text(json.dumps(record))
    assert train.main(["vae", "--dataset", "mnist", "--epochs", "1", "--batch-size", "64",
                       "--limit", "128", "--eval-limit", "0", "--quiet", "--init",
                       str(start), "--out", str(out)]) == 0
    meta = json.loads(out.with_suffix(".json").read_text())["meta"]
    assert meta["epochs"] == 3 and len(meta["runs"]) == 2
    assert meta["note"] == "stopped after epoch 2"              # an earlier run's note stays
    assert meta["command"].count("python -m explorer.train vae") == 2
    assert "--init" in meta["runs"][1]["command"]
    with pytest.raises(SystemExit, match="do not fit"):
        train.main(["vae", "--dataset", "mnist", "--init", str(trained["vae"]), "--set",
                    "latent_dim=3"])
    with pytest.raises(SystemExit, match="holds a vae"):
        train.main(["hvae", "--dataset", "mnist", "--init", str(trained["vae"])])


def test_init_with_set_continues_the_weights_under_a_new_loss(trained, tmp_path):
    """--init --set loss=weighted fine-tunes the same network on the weighted ELBO: the config
    changes, the learned schedule does not move, the record's chain rebuilds it."""
    out = tmp_path / "weighted"
    assert train.main(["vdm", "--dataset", "mnist", "--epochs", "1", "--batch-size", "64",
                       "--limit", "128", "--eval-limit", "0", "--quiet", "--init",
                       str(trained["vdm"]), "--out", str(out), "--set", "loss=weighted",
                       "weight_scale=4"]) == 0
    before, _ = load_checkpoint(trained["vdm"])
    after, meta = load_checkpoint(out)
    assert before.config.loss == "elbo"
    assert after.config.loss == "weighted" and after.config.weight_scale == 4
    assert type(after.config.weight_scale) is float       # "4" on the command line, a float field
    assert after.config.channels == before.config.channels
    for name, p in before.gamma.named_parameters():
        assert torch.equal(p, dict(after.gamma.named_parameters())[name])
    assert not torch.equal(before.unet.stem.weight, after.unet.stem.weight)
    assert len(meta["runs"]) == 2
    assert "--init" in meta["runs"][1]["command"]
    assert "--set loss=weighted weight_scale=4" in meta["runs"][1]["command"]
    with pytest.raises(SystemExit, match="explorer.fit_prior"):   # a standard prior has no buffers
        train.main(["vdm", "--dataset", "mnist", "--init", str(trained["vdm"]), "--set",
                    "prior=fitted"])


def test_max_minutes_shortens_the_run_and_records_the_length_it_ran(tmp_path):
    """A budget already spent by the end of the timing probe stops the run right there; the
    record's command rebuilds that length, without the budget."""
    out = tmp_path / "short"
    steps_per_epoch = 128 // 8
    assert train.main(["vae", "--dataset", "mnist", "--epochs", "20", "--batch-size", "8",
                       "--limit", "128", "--eval-limit", "0", "--quiet", "--max-minutes", "1e-6",
                       "--out", str(out), "--set", *TINY_SET["vae"]]) == 0
    meta = json.loads(out.with_suffix(".json").read_text())["meta"]
    probed = train.PROBE_SKIP + train.PROBE_STEPS
    assert meta["steps"] == probed < 20 * steps_per_epoch
    assert f"--epochs {probed / steps_per_epoch:g} " in meta["command"]
    assert "max-minutes" not in meta["command"]


def test_fit_steps_keeps_what_fits_the_time_left():
    assert train.fit_steps(1000, 110, steps_per_second=10.0, seconds_left=50.0) == 110 + 475
    assert train.fit_steps(1000, 110, steps_per_second=10.0, seconds_left=1e4) == 1000
    assert train.fit_steps(1000, 110, steps_per_second=10.0, seconds_left=-5.0) == 110


def test_the_recorded_command_names_a_device_other_than_the_cpu():
    args = train.parse_args(["vdm", "--dataset", "mnist", "--device", "cuda", "--epochs", "3"])
    assert train._reconstruct(args)[-2:] == ["--device", "cuda"]
    assert "--device" not in train._reconstruct(train.parse_args(["vdm", "--dataset", "mnist"]))


def test_a_fitted_prior_is_fitted_to_the_images_a_run_trains_on(tmp_path):
    out = tmp_path / "fitted"
    assert train.main(["vdm", "--dataset", "mnist", "--epochs", "0.25", "--batch-size", "64",
                       "--limit", "128", "--seed", "3", "--eval-limit", "0", "--quiet", "--ema",
                       "0.9", "--out", str(out), "--set", *TINY_SET["vdm"], "prior=fitted",
                       "prior_rank=4"]) == 0
    model, _ = load_checkpoint(out)
    seen = train.training_images("mnist", 128, 3)
    assert torch.allclose(model.prior.mean, seen.flatten(1).mean(0), atol=1e-5)
    assert model.prior.basis.shape == (784, 4) and float(model.prior.excess[-1]) > 0


def test_fit_prior_converts_a_checkpoint_and_records_the_call(trained, tmp_path):
    stem = tmp_path / "vdm"
    for suffix in (".safetensors", ".json"):
        shutil.copyfile(trained["vdm"].with_suffix(suffix), stem.with_suffix(suffix))
    before, _ = load_checkpoint(stem)
    assert fit_prior.main(["--dataset", "mnist", "--checkpoint", str(stem), "--rank", "6"]) == 0
    after, meta = load_checkpoint(stem)
    assert after.config.prior == "fitted" and after.config.prior_rank == 6
    assert all(torch.equal(v, after.state_dict()[k]) for k, v in before.state_dict().items())
    seen = train.training_images("mnist", meta["training_images"], meta["seed"])
    assert torch.allclose(after.prior.mean, seen.flatten(1).mean(0), atol=1e-5)
    assert meta["command"].endswith(" && python -m explorer.fit_prior --dataset mnist --rank 6 "
                                    f"--checkpoint {stem}")
    assert meta["runs"][-1]["steps"] == 0 and meta["epochs"] == 2
    with pytest.raises(SystemExit, match="not a vdm"):
        fit_prior.main(["--dataset", "mnist", "--checkpoint", str(trained["vae"])])
