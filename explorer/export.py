"""The networks a page needs, as ONNX graphs exported from the shipped weights, so a browser
(onnxruntime-web) can run them:

    python -m explorer.export --dataset fashion-mnist     # pretrained/<dataset>/*.onnx + onnx.json

- `vdm_eps.onnx`: the VDM's noise prediction eps_theta(x_t, t): x_t (B, 1, 28, 28) float32,
  t (B,) int64 in 1..T -> eps (B, 1, 28, 28);
- `vae_decoder.onnx`: the mean of p(x|z) clamped to [-1, 1]: z (B, D) -> x (B, 1, 28, 28);
- `hvae_decoder.onnx`: the HVAE's top-down pass at temperature 0 with some layers given:
  z_1 .. z_L (each (B, *shape_l)) and `given` (L,) float32 of 0 / 1 -> x (B, 1, 28, 28). A layer
  with given[l] = 1 is kept; one with 0 is its prior mean given the layer above (the top:
  N(0, I)'s mean, 0), as `HVAE.decode(latents, temperature=0)` with None for those layers.

`onnx.json` beside them records, for each graph, its file's SHA-256, the SHA-256 of the weights it
was exported from (a graph whose weights changed since is stale: `check_exports`), its inputs and
outputs, and the opset. The graphs are checked against the torch models on random inputs by
tests/test_export.py (onnxruntime on the CPU).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from explorer.checkpoint import DIGEST_KEY, load_checkpoint, read_record
from explorer.data import DATASETS
from explorer.models import HVAE, VAE, VDM
from explorer.paths import checkpoint_stem, pretrained_dir, shown_path

OPSET = 17
MANIFEST = "onnx.json"


class VDMEps(nn.Module):
    """eps_theta(x_t, t) of a VDM."""

    def __init__(self, model: VDM):
        super().__init__()
        self.model = model

    def forward(self, x_t: Tensor, t: Tensor) -> Tensor:
        return self.model.predict_noise(x_t, t)


class VAEDecoder(nn.Module):
    """The mean of p(x|z), clamped to the data range."""

    def __init__(self, model: VAE):
        super().__init__()
        self.model = model

    def forward(self, z: Tensor) -> Tensor:
        return self.model.decode_mean(z)


class HVAEDecoder(nn.Module):
    """HVAE.decode at temperature 0 with the layers marked in `given` fixed (module docstring)."""

    def __init__(self, model: HVAE):
        super().__init__()
        self.model = model

    def forward(self, *inputs: Tensor) -> Tensor:
        *zs, given = inputs
        model = self.model
        top = len(zs) - 1
        out: list[Tensor] = [zs[top]] * len(zs)
        out[top] = zs[top] * given[top]                     # the prior mean of z_L is 0
        for i in reversed(range(top)):
            mean, _ = model.prior_params(i, out[i + 1])
            out[i] = given[i] * zs[i] + (1 - given[i]) * mean
        mean, _ = model.likelihood_params(out[0])
        return mean.clamp(-1.0, 1.0)


def graphs(dataset: str) -> dict[str, tuple[nn.Module, tuple, dict]]:
    """name -> (module, example inputs, io names and axes) for every graph of `dataset`."""
    vdm = load_checkpoint(checkpoint_stem(dataset, "vdm"))[0]
    vae = load_checkpoint(checkpoint_stem(dataset, "vae"))[0]
    hvae = load_checkpoint(checkpoint_stem(dataset, "hvae"))[0]
    batch = {0: "batch"}
    shapes = hvae.config.latent_shapes
    z_names = [f"z_{i + 1}" for i in range(len(shapes))]
    return {
        "vdm_eps": (VDMEps(vdm), (torch.randn(2, 1, 28, 28), torch.tensor([1, vdm.T])),
                    {"inputs": ["x_t", "t"], "outputs": ["eps"],
                     "axes": {"x_t": batch, "t": batch, "eps": batch}}),
        "vae_decoder": (VAEDecoder(vae), (torch.randn(2, vae.config.latent_dim),),
                        {"inputs": ["z"], "outputs": ["x"], "axes": {"z": batch, "x": batch}}),
        "hvae_decoder": (HVAEDecoder(hvae), (*[torch.randn(2, *s) for s in shapes],
                                             torch.ones(len(shapes))),
                         {"inputs": [*z_names, "given"], "outputs": ["x"],
                          "axes": {**{n: batch for n in z_names}, "x": batch}}),
    }


SOURCES = {"vdm_eps": "vdm", "vae_decoder": "vae", "hvae_decoder": "hvae"}


def to_onnx(module: nn.Module, example: tuple, names: dict) -> bytes:
    """The ONNX graph of module(*example) (TorchScript exporter, opset OPSET), as bytes.

    The TorchScript exporter, not torch 2.13's default torch.export-based one: that one stops
    at the U-Net's attention (its translation of scaled_dot_product_attention takes 4-D queries
    only; the model's are 3-D), and these graphs are checked against torch anyway."""
    buffer = io.BytesIO()
    module.eval()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", "You are using the legacy TorchScript", DeprecationWarning)
        torch.onnx.export(module, example, buffer, input_names=names["inputs"],
                          output_names=names["outputs"], dynamic_axes=names["axes"],
                          opset_version=OPSET, dynamo=False)
    return buffer.getvalue()


def export(dataset: str, folder: Path | None = None) -> dict:
    """Write every graph of `dataset` and its manifest into `folder` (pretrained/<dataset>/);
    returns the manifest."""
    folder = Path(folder) if folder is not None else pretrained_dir() / dataset
    manifest = {"opset": OPSET, "graphs": {}}
    for name, (module, example, names) in graphs(dataset).items():
        data = to_onnx(module, example, names)
        (folder / f"{name}.onnx").write_bytes(data)
        source = read_record(checkpoint_stem(dataset, SOURCES[name]))
        manifest["graphs"][name] = {
            "file": f"{name}.onnx", "sha256": hashlib.sha256(data).hexdigest(),
            "from": SOURCES[name], "from_sha256": source.get(DIGEST_KEY),
            "inputs": names["inputs"], "outputs": names["outputs"],
            "shapes": {n: list(t.shape) for n, t in zip(names["inputs"], example)}}
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def check_exports(dataset: str, folder: Path | None = None) -> list[str]:
    """What is wrong with the shipped graphs of `dataset` (missing, damaged, or exported from
    other weights than the shipped ones); [] when nothing is."""
    folder = Path(folder) if folder is not None else pretrained_dir() / dataset
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        return [f"missing {shown_path(folder / MANIFEST)}; export with: "
                f"python -m explorer.export --dataset {dataset}"]
    problems = []
    for name, entry in manifest["graphs"].items():
        path = folder / entry["file"]
        if not path.exists():
            problems.append(f"missing {shown_path(path)}")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
            problems.append(f"damaged {shown_path(path)}")
        source = read_record(checkpoint_stem(dataset, entry["from"])).get(DIGEST_KEY)
        if source != entry["from_sha256"]:
            problems.append(f"stale {shown_path(path)}: exported from other {entry['from']} "
                            f"weights than the shipped ones")
    return [f"{p}; export again with: python -m explorer.export --dataset {dataset}"
            for p in problems]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="export the page's networks as ONNX graphs")
    p.add_argument("--dataset", choices=DATASETS, action="append",
                   help="a dataset (repeat for more; default: every dataset)")
    p.add_argument("--check", action="store_true", help="only check the shipped graphs")
    args = p.parse_args(argv)
    bad = 0
    for dataset in args.dataset or DATASETS:
        if args.check:
            problems = check_exports(dataset)
            print("\n".join(problems) or f"ok {dataset}")
            bad += len(problems)
        else:
            manifest = export(dataset)
            for entry in manifest["graphs"].values():
                path = pretrained_dir() / dataset / entry["file"]
                print(f"{shown_path(path)}: {path.stat().st_size / 1e6:.2f} MB")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
