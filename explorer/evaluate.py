"""Evaluate a model's -ELBO on held-out data:
`python -m explorer.evaluate {vae,hvae,vdm} --dataset ... [--json]`.

Prints every term of the negative ELBO per image in nats and bits/dim on the 8-bit test set.
For the VDM the diffusion term is the unbiased estimate (T-1) L_t at a stratified t, averaged over
`--t-samples` draws; `--exact` sums all T steps (T network calls per image).

`python -m explorer.evaluate --samples FILE.npy --dataset ...` instead scores a uint8 (N, 28, 28)
sample file by its Frechet distance to the test set on the features of the dataset's judge
classifier (not Inception FID; see explorer.frechet), printed beside the train-vs-test floor.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from explorer import cli
from explorer.checkpoint import load_checkpoint
from explorer.data import load_dataset, load_gallery
from explorer.likelihood import nats_to_bpd
from explorer.paths import shown_path

PIXELS = 28 * 28


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m explorer.evaluate",
                                description=__doc__.split("\n")[0])
    cli.add_common_args(p, model_required=False)
    p.add_argument("--samples", default=None, metavar="FILE.npy",
                   help="score a sample file by its Frechet distance (no model needed)")
    p.add_argument("--checkpoint", default=None,
                   help="checkpoint stem (default pretrained/<dataset>/<model>)")
    p.add_argument("--split", choices=("test", "gallery"), default="test",
                   help="test split of the installed dataset, or the shipped gallery")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N images")
    p.add_argument("--batch-size", type=int, default=250)
    p.add_argument("--exact", action="store_true", help="VDM: sum the diffusion term over all T")
    p.add_argument("--t-samples", type=int, default=1,
                   help="VDM: draws of t per image for the diffusion estimate")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p.parse_args(argv)


@torch.no_grad()
def evaluate(model, images: torch.Tensor, batch_size: int = 250, seed: int = 0,
             exact: bool = False, t_samples: int = 1) -> dict:
    """Mean -ELBO terms of `images` (N, 1, 28, 28): {'nats': {...}, 'bits_per_dim': {...},
    'standard_error_bits_per_dim': s.e. of the mean total over images and draws}."""
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    repeats = 1 if exact else max(1, t_samples)
    kwargs = {"exact": True} if exact else {}
    sums: dict[str, float] = {}
    totals = []
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device)
        for _ in range(repeats):
            terms = model.elbo(x, generator=gen, **kwargs)
            totals.append(terms.total.double().cpu())
            for k, v in {**terms, "total": terms.total}.items():
                sums[k] = sums.get(k, 0.0) + float(v.sum()) / repeats
    nats = {k: v / len(images) for k, v in sums.items()}
    per_draw = torch.cat(totals)
    se = float(per_draw.std() / len(per_draw) ** 0.5) if len(per_draw) > 1 else float("nan")
    return {"nats": nats, "bits_per_dim": {k: nats_to_bpd(v, PIXELS) for k, v in nats.items()},
            "standard_error_bits_per_dim": nats_to_bpd(se, PIXELS), "images": len(images)}


def score_samples(path: str, dataset: str, judge_stem=None) -> dict:
    """Frechet distance of the samples in `path` to the test split (or the gallery when the
    dataset is not installed), with the judge's train-vs-test floor for the same count."""
    from explorer.data import DatasetMissingError
    from explorer.frechet import distance, floor, load_judge
    samples = np.load(path, allow_pickle=False)
    if samples.dtype != np.uint8 or samples.ndim != 3 or samples.shape[1:] != (28, 28):
        raise SystemExit(f"{shown_path(path)}: expected uint8 (N, 28, 28), got {samples.dtype} "
                         f"{samples.shape}")
    judge, meta = load_judge(dataset, judge_stem)
    try:
        reference, against = load_dataset(dataset, "test").images, "test"
        base = floor(judge, dataset, n=min(len(samples), len(reference)))
    except DatasetMissingError:
        reference, against = load_gallery(dataset).images, "gallery"
        base = meta.get("floor", {})
    return {"samples": path, "n": len(samples), "dataset": dataset, "against": against,
            "frechet_distance": distance(judge, samples, reference), "floor": base,
            "judge_test_accuracy": meta.get("test_accuracy")}


def main(argv=None) -> int:
    args = parse_args(argv)
    cli.set_threads(args.threads)
    if args.samples:
        result = score_samples(args.samples, args.dataset)
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            print(f"{args.samples}: Frechet distance {result['frechet_distance']:.3f} to the "
                  f"{args.dataset} {result['against']} set on the judge's features (not Inception "
                  f"FID); train-vs-test floor {result['floor'].get('train_vs_test', float('nan')):.3f}")
        return 0
    if args.model is None:
        raise SystemExit("name a model (vae, hvae, vdm) or pass --samples FILE.npy")
    if args.exact and args.model != "vdm":
        raise SystemExit("--exact applies to the vdm only (VAE / HVAE terms are closed-form or "
                         "one-sample estimates)")
    stem = args.checkpoint or cli.default_stem(args.model, args.dataset)
    model, meta = load_checkpoint(stem, map_location=args.device)
    data = (load_gallery(args.dataset) if args.split == "gallery"
            else load_dataset(args.dataset, "test"))
    images = data.tensor()[:args.limit] if args.limit else data.tensor()
    started = time.time()
    result = evaluate(model, images, args.batch_size, args.seed, args.exact, args.t_samples)
    result.update(model=args.model, dataset=args.dataset, split=args.split, checkpoint=str(stem),
                  seconds=round(time.time() - started, 1), exact=args.exact)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{args.model} on {args.dataset} {args.split} ({result['images']} images), -ELBO terms:")
    print(f"  {'term':<16}{'nats':>12}{'bits/dim':>12}")
    for k, v in result["nats"].items():
        print(f"  {k:<16}{v:>12.2f}{result['bits_per_dim'][k]:>12.4f}")
    print(f"  (standard error of the total: {result['standard_error_bits_per_dim']:.4f} bits/dim)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
