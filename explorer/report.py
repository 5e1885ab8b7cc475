"""Measure the shipped models and write MODELS.md from what their JSON records.

    python -m explorer.report measure --dataset fashion-mnist   # figures into pretrained/<d>/*.json
    python -m explorer.report table                               # MODELS.md from those records

`measure` evaluates each checkpoint on the test split (-ELBO terms in bits/dim), counts active
units, and scores samples by their Frechet distance on the judge's features (explorer.frechet,
not Inception FID), each beside the train-vs-test floor for the same number of images.
Only the JSON metadata is rewritten; weights are never touched.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from explorer import cli
from explorer.checkpoint import load_checkpoint, read_record
from explorer.data import DATASETS, load_dataset, to_uint8
from explorer.evaluate import evaluate
from explorer.frechet import distance, floor, load_judge
from explorer.paths import pretrained_dir
from explorer.sample import draw

SHIPPED = ("vae", "vae2d", "hvae", "vdm")
VDM_SAMPLERS = (("ddim", 20), ("ddim", 50), ("ddpm", 1000))


@torch.no_grad()
def reconstructions(model, x: torch.Tensor) -> torch.Tensor:
    """Decoded posterior means: VAE mean of p(x | mu(x)); HVAE decode of the encoder-mean z_1."""
    if model.kind == "vae":
        return model.decode_mean(model.encode(x)[0])
    latents = model.encode(x, use_mean=True)
    return model.decode([latents[0].z] + [None] * (len(latents) - 1), temperature=0.0).x_mean


def measure(dataset: str, name: str, n_samples: int, n_ddpm: int, test_limit: int | None,
            seed: int = 0) -> dict:
    """Every figure of one shipped checkpoint; returns the updated metadata (also saved)."""
    stem = pretrained_dir() / dataset / name
    model, meta = load_checkpoint(stem)
    judge, judge_meta = load_judge(dataset)
    test = load_dataset(dataset, "test")
    x = test.tensor()[:test_limit] if test_limit else test.tensor()
    started = time.time()
    meta["evaluation"] = evaluate(model, x, seed=seed)
    samples: dict = {}

    def score(key: str, images, n: int) -> None:
        samples[key] = {"n": n, "frechet_distance": distance(judge, images, test.images[:n]),
                        "floor": floor(judge, dataset, n=n)["train_vs_test"]}
        print(f"  {name} {key}: FD {samples[key]['frechet_distance']:.3f} "
              f"(floor {samples[key]['floor']:.3f}, n={n})", file=sys.stderr)

    if model.kind == "vdm":
        for sampler, steps in VDM_SAMPLERS:
            n, steps = (n_ddpm if steps > 100 else n_samples), min(steps, model.T)
            score(f"{sampler}-{steps}", draw(model, n, seed, sampler=sampler, steps=steps), n)
    else:
        score("prior", draw(model, n_samples, seed), n_samples)
        score("reconstruction", to_uint8(reconstructions(model, x[:n_samples])), n_samples)
        units = model.active_units(x[:2000])
        meta["active_units"] = units
    meta["samples"] = samples
    meta["judge"] = {"test_accuracy": judge_meta.get("test_accuracy")}
    meta["measured_seconds"] = round(time.time() - started, 1)
    record = read_record(stem)
    record["meta"] = meta
    stem.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    return meta


def _fmt_terms(bpd: dict) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in bpd.items() if k != "total")


def table(root: Path | None = None) -> str:
    """The MODELS.md table, from the JSON records in pretrained/."""
    root = root or pretrained_dir()
    rows = ["| dataset | model | params | epochs | training | bits/dim | terms (bits/dim) | "
            "samples: Frechet distance (floor) | active units |",
            "|---|---|---|---|---|---|---|---|---|"]
    commands = []
    for dataset in DATASETS:
        for name in SHIPPED:
            path = root / dataset / f"{name}.json"
            if not path.exists():
                continue
            meta = json.loads(path.read_text())["meta"]
            ev = meta.get("evaluation", {}).get("bits_per_dim", {})
            fd = "; ".join(f"{k} {v['frechet_distance']:.2f} ({v['floor']:.2f}, n={v['n']})"
                           for k, v in meta.get("samples", {}).items())
            minutes = meta.get("training_seconds", 0) / 60
            rows.append(f"| {dataset} | {name} | {meta.get('parameters', 0):,} | "
                        f"{meta.get('epochs', 0):g} | {minutes:.0f} min, {meta.get('hardware', '?')} | "
                        f"{ev.get('total', float('nan')):.3f} | {_fmt_terms(ev)} | {fd or '-'} | "
                        f"{meta.get('active_units', '-')} |")
            commands.append(f"# {dataset} {name}\n{meta.get('command', '?')}")
    return "\n".join(rows) + "\n\nCommands that rebuild them:\n\n```bash\n" + \
        "\n".join(commands) + "\n```\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m explorer.report", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure", help="evaluate shipped checkpoints, record figures in their JSON")
    m.add_argument("--dataset", choices=DATASETS, default="fashion-mnist")
    m.add_argument("--models", default=",".join(SHIPPED), help="comma-separated names")
    m.add_argument("--n-samples", type=int, default=1000, help="images per sample score")
    m.add_argument("--n-ddpm", type=int, default=200, help="images for the DDPM-1000 score")
    m.add_argument("--test-limit", type=int, default=None, help="test images for bits/dim")
    m.add_argument("--threads", type=int, default=None)
    t = sub.add_parser("table", help="print the MODELS.md table")
    t.add_argument("--write", default=None, help="write to this file instead of printing")
    args = p.parse_args(argv)
    if args.command == "table":
        text = table()
        if args.write:
            Path(args.write).write_text(text)
        else:
            print(text)
        return 0
    cli.set_threads(args.threads)
    for name in args.models.split(","):
        if (pretrained_dir() / args.dataset / f"{name}.json").exists():
            meta = measure(args.dataset, name, args.n_samples, args.n_ddpm, args.test_limit)
            print(f"{args.dataset} {name}: {meta['evaluation']['bits_per_dim']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
