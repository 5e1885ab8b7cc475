"""Checkpoints: safetensors + JSON rebuild an identical model; bad files give clear messages."""

import hashlib
import json

import pytest
import torch

from explorer.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from explorer.frechet import JudgeConfig
from explorer.models import MODELS, HVAEConfig, VAEConfig, VDMConfig

TINY = {
    "vae": VAEConfig(latent_dim=4, channels=(8, 8, 8)),
    "hvae": HVAEConfig(latent_shapes=((2, 7, 7), (4, 1, 1)), channels=(8, 8, 8), hidden=16),
    "vdm": VDMConfig(schedule="learned", T=10, channels=(8, 8), attention=False),
    "judge": JudgeConfig(channels=(4, 8), features=8),
}


def _outputs(model, x):
    if model.kind == "judge":
        return model(x)
    return model.elbo(x, generator=torch.Generator().manual_seed(0)).total


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_round_trip_rebuilds_an_identical_model(kind, tmp_path, images):
    torch.manual_seed(1)
    model = MODELS[kind](TINY[kind]).eval()
    stem = save_checkpoint(model, tmp_path / kind, meta={"dataset": "mnist", "seed": 1})
    assert stem.with_suffix(".safetensors").exists() and stem.with_suffix(".json").exists()
    loaded, meta = load_checkpoint(stem)
    assert type(loaded) is type(model) and loaded.config == model.config
    assert meta == {"dataset": "mnist", "seed": 1}
    with torch.no_grad():
        assert torch.equal(_outputs(loaded, images), _outputs(model, images))


def test_the_record_holds_the_sha256_of_the_weights_written(tmp_path):
    stem = save_checkpoint(MODELS["vae"](TINY["vae"]), tmp_path / "vae", meta={"seed": 1})
    record = json.loads(stem.with_suffix(".json").read_text())
    assert list(record) == ["kind", "config", "weights_sha256", "meta"]
    digest = hashlib.sha256(stem.with_suffix(".safetensors").read_bytes()).hexdigest()
    assert record["weights_sha256"] == digest


def test_missing_weights_name_the_file_and_the_rebuild_command(tmp_path):
    stem = save_checkpoint(MODELS["vae"](TINY["vae"]), tmp_path / "vae",
                           meta={"command": "python -m explorer.train vae --dataset mnist"})
    stem.with_suffix(".safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"vae\.safetensors.*explorer\.train vae"):
        load_checkpoint(stem)


def test_corrupt_weights_and_json(tmp_path):
    stem = save_checkpoint(MODELS["vae"](TINY["vae"]), tmp_path / "vae")
    stem.with_suffix(".safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(stem)
    stem.with_suffix(".json").write_text("{broken")
    with pytest.raises(CheckpointError, match=r"corrupt .*vae\.json"):
        load_checkpoint(stem)
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(tmp_path / "nothing-here")
