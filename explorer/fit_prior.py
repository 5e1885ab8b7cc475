"""Fit a VDM checkpoint's prior p(x_T) to its training data:
`python -m explorer.fit_prior --dataset fashion-mnist [--checkpoint STEM] [--rank 64]`.

The network and the schedule are untouched: the prior's moments (explorer.priors) depend on the
data and on gamma_T alone. The checkpoint is rewritten with config prior="fitted" and the call is
appended to its record's chain of commands; its evaluation figures are then stale until
`python -m explorer.report measure` runs again.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import time

from explorer import cli
from explorer.checkpoint import load_checkpoint, save_checkpoint
from explorer.data import DATASETS
from explorer.paths import shown_path
from explorer.train import chain, training_images


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m explorer.fit_prior",
                                description=__doc__.split("\n")[0])
    p.add_argument("--dataset", choices=DATASETS, default="fashion-mnist")
    p.add_argument("--checkpoint", default=None,
                   help="VDM checkpoint stem (default pretrained/<dataset>/vdm)")
    p.add_argument("--rank", type=int, default=64, help="principal directions of the data kept")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    stem = args.checkpoint or cli.default_stem("vdm", args.dataset)
    old, meta = load_checkpoint(stem)
    if old.kind != "vdm" or meta.get("dataset", args.dataset) != args.dataset:
        raise SystemExit(f"{shown_path(stem)} holds a {old.kind} for {meta.get('dataset')}, "
                         f"not a vdm for {args.dataset}")
    started = time.time()
    model = type(old)(dataclasses.replace(old.config, prior="fitted", prior_rank=args.rank))
    missing, unexpected = model.load_state_dict(
        {k: v for k, v in old.state_dict().items() if not k.startswith("prior.")}, strict=False)
    if unexpected or any(not k.startswith("prior.") for k in missing):
        raise SystemExit(f"{shown_path(stem)}: weights do not fit the VDM "
                         f"({missing}, {unexpected})")
    model.fit_prior(training_images(args.dataset, meta.get("training_images"), meta.get("seed", 0)))
    argv = ["--dataset", args.dataset, "--rank", str(args.rank)]
    if args.checkpoint:
        argv += ["--checkpoint", str(args.checkpoint)]
    run = {"command": "python -m explorer.fit_prior " + shlex.join(argv), "epochs": 0, "steps": 0,
           "training_seconds": round(time.time() - started, 1), "hardware": cli.hardware()}
    meta = {**meta, **chain(meta.get("runs", []) + [run])}
    save_checkpoint(model.eval(), stem, meta)
    print(f"{stem}: prior fitted (rank {args.rank}) to {args.dataset}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
