"""Train a model: `python -m explorer.train {vae,hvae,vdm} --dataset {fashion-mnist,mnist} ...`.

Writes `<out>.safetensors` + `<out>.json` (config, dataset, seed, epochs, training time, the
command that rebuilds it, and test-set figures) after every epoch.
"""

from __future__ import annotations

import argparse
import copy
import math
import shlex
import sys
import time

import torch
from tqdm import tqdm

from explorer import cli
from explorer.checkpoint import load_checkpoint, save_checkpoint
from explorer.data import batches, load_dataset
from explorer.evaluate import evaluate
from explorer.likelihood import nats_to_bpd
from explorer.models import MODELS
from explorer.paths import shown_path

PIXELS = 28 * 28
PROBE_STEPS = 100   # steps timed (after PROBE_SKIP warm-up steps) to fit a run to --max-minutes
PROBE_SKIP = 10


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m explorer.train", description=__doc__.split("\n")[0])
    cli.add_common_args(p)
    p.add_argument("--epochs", type=float, default=10, help="passes over the training set")
    p.add_argument("--max-minutes", type=float, default=None,
                   help=f"wall-clock budget: after the first {PROBE_SKIP + PROBE_STEPS} steps the "
                        "run is shortened to the steps that fit, and the learning-rate schedule "
                        "plans for those")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=2e-3, help="peak Adam learning rate")
    p.add_argument("--warmup-steps", type=int, default=200, help="linear learning-rate warm-up")
    p.add_argument("--ema", type=float, default=0.0,
                   help="exponential moving average of the weights (e.g. 0.999); 0 = off")
    p.add_argument("--limit", type=int, default=None, help="train on a seeded random subset of N images")
    p.add_argument("--eval-limit", type=int, default=2000,
                   help="test images for the figures saved in the JSON (0 = skip)")
    p.add_argument("--set", dest="overrides", nargs="*", metavar="KEY=VALUE",
                   help="config fields, e.g. --set latent_dim=2")
    p.add_argument("--out", default=None, help="checkpoint stem (default pretrained/<dataset>/<model>)")
    p.add_argument("--init", default=None, metavar="STEM",
                   help="continue training the checkpoint at STEM (its config, with any --set "
                        "fields that leave the network's shape alone; fresh optimizer)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def training_images(dataset: str, limit: int | None, seed: int) -> torch.Tensor:
    """The images a run trains on, (N, 1, 28, 28) in [-1, 1]: the training split, or its seeded
    random subset of `limit` (not the first ones: the MNIST subset is stored sorted by class)."""
    train = load_dataset(dataset, "train").tensor()
    if limit:
        pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:limit]
        train = train[pick]
    return train


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warm-up to peak, then cosine decay to peak / 20."""
    if step < warmup:
        return peak * (step + 1) / warmup
    frac = min((step - warmup) / max(total - warmup, 1), 1.0)
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * frac)))


def fit_steps(total: int, done: int, steps_per_second: float, seconds_left: float) -> int:
    """The run's new length: `total`, or fewer when the rest would outrun `seconds_left` at the
    measured speed (5% of the time is kept for the per-epoch checkpoints)."""
    return max(done, min(total, done + int(0.95 * seconds_left * steps_per_second)))


def main(argv=None) -> int:
    args = parse_args(argv)
    cli.set_threads(args.threads)
    torch.manual_seed(args.seed)
    model_cls = MODELS[args.model]
    previous: dict = {}
    if args.init:
        model, previous = load_checkpoint(args.init, map_location=args.device)
        if model.kind != args.model or previous.get("dataset", args.dataset) != args.dataset:
            raise SystemExit(f"{shown_path(args.init)} holds a {model.kind} for "
                             f"{previous.get('dataset')}, not a {args.model} for {args.dataset}")
        config = model.config
        if args.overrides:   # e.g. a new training loss; the weights must still fit the network
            config = cli.build_config(model_cls.config_cls, cli.parse_overrides(args.overrides),
                                      base=config)
            state, model = model.state_dict(), model_cls(config).to(args.device)
            try:
                model.load_state_dict(state)
            except RuntimeError as err:
                hint = ("; a trained VDM's prior is fitted by python -m explorer.fit_prior"
                        if "prior" in cli.parse_overrides(args.overrides) else "")
                raise SystemExit(f"--set {' '.join(args.overrides)} changes the network of "
                                 f"{shown_path(args.init)}, so its weights do not fit{hint}: "
                                 f"{err}") from None
    else:
        config = cli.build_config(model_cls.config_cls, cli.parse_overrides(args.overrides))
        model = model_cls(config).to(args.device)
    train = training_images(args.dataset, args.limit, args.seed)
    if not args.init and hasattr(model, "fit_prior"):   # a fitted p(x_T) is set before training
        model.fit_prior(train)
    ema = copy.deepcopy(model).eval() if args.ema > 0 else None
    out = args.out or cli.default_stem(args.model, args.dataset)

    gen = torch.Generator().manual_seed(args.seed)
    steps_per_epoch = math.ceil(len(train) / args.batch_size)
    total_steps = max(1, round(args.epochs * steps_per_epoch))
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"training {args.model} ({n_params:,} parameters) on {len(train):,} {args.dataset} "
          f"images for {total_steps:,} steps; config {config}", file=sys.stderr)

    step, started, meta, epoch_bpd, probe_start = 0, time.time(), {}, [], None
    bar = tqdm(total=total_steps, disable=args.quiet, unit="step", dynamic_ncols=True)
    while step < total_steps:
        model.train()
        for x in batches(train, args.batch_size, shuffle=True, generator=gen):
            if step >= total_steps:
                break
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total_steps, args.lr, args.warmup_steps)
            loss, terms = model.training_loss(x.to(args.device), step=previous.get("steps", 0) + step,
                                              generator=gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            if ema is not None:  # decay warmed up as (1 + n) / (10 + n), capped at --ema
                decay = min(args.ema, (1 + step) / (10 + step))
                with torch.no_grad():
                    for p_ema, p in zip(ema.parameters(), model.parameters()):
                        p_ema.lerp_(p, 1.0 - decay)
            step += 1
            if args.max_minutes and step == PROBE_SKIP:
                probe_start = time.time()
            elif args.max_minutes and step == PROBE_SKIP + PROBE_STEPS:
                now = time.time()
                total_steps = fit_steps(total_steps, step, PROBE_STEPS / (now - probe_start),
                                        args.max_minutes * 60 - (now - started))
                args.epochs = total_steps / steps_per_epoch   # what _reconstruct records
                bar.total = total_steps
            bpd = nats_to_bpd(float(terms.total.detach().mean()), PIXELS)
            epoch_bpd.append(bpd)
            bar.update(1)
            bar.set_postfix(bpd=f"{bpd:.3f}", loss=f"{float(loss.detach()):.4g}")
            if step % steps_per_epoch == 0 or step == total_steps:
                meta = _save(args, ema or model, out, step, steps_per_epoch, started, n_params,
                             previous)
                if args.quiet:  # one line per epoch for logs of background runs
                    print(f"epoch {step / steps_per_epoch:.2f}: train -ELBO "
                          f"{sum(epoch_bpd) / len(epoch_bpd):.4f} bits/dim, "
                          f"{time.time() - started:.0f} s", file=sys.stderr, flush=True)
                epoch_bpd = []
    bar.close()
    if args.eval_limit:
        test = load_dataset(args.dataset, "test").tensor()[:args.eval_limit]
        meta["evaluation"] = evaluate(ema or model, test, 250, seed=args.seed)
        save_checkpoint(ema or model, out, meta)
        print(f"test -ELBO: {meta['evaluation']['bits_per_dim']}", file=sys.stderr)
    print(f"saved {out}.safetensors / .json", file=sys.stderr)
    return 0


def _save(args, model, out, step, steps_per_epoch, started, n_params, previous: dict) -> dict:
    """Write the checkpoint; figures accumulate over a chain of --init continuations."""
    run = {"command": "python -m explorer.train " + shlex.join(_reconstruct(args)),
           "epochs": round(step / steps_per_epoch, 3), "steps": step,
           "training_seconds": round(time.time() - started, 1), "hardware": cli.hardware()}
    runs = previous.get("runs", []) + [run]
    meta = {
        "dataset": args.dataset, "seed": args.seed,
        "hardware": run["hardware"], "parameters": n_params,
        "batch_size": args.batch_size, "lr": args.lr, "ema": args.ema,
        "training_images": args.limit, **chain(runs),
    }
    if previous.get("note"):  # what an earlier run of the chain said of itself stays said
        meta["note"] = previous["note"]
    save_checkpoint(model, out, meta)
    return meta


def chain(runs: list[dict]) -> dict:
    """The totals a record keeps of its chain of runs (each one continuing the last): epochs,
    steps, training seconds, the joined command that rebuilds it all, and the runs."""
    return {"epochs": round(sum(r["epochs"] for r in runs), 3),
            "steps": sum(r["steps"] for r in runs),
            "training_seconds": round(sum(r["training_seconds"] for r in runs), 1),
            "command": " && ".join(r["command"] for r in runs), "runs": runs}


def _reconstruct(args) -> list[str]:
    """The argument list that rebuilds this run."""
    argv = [args.model, "--dataset", args.dataset, "--seed", str(args.seed), "--epochs",
            f"{args.epochs:g}", "--batch-size", str(args.batch_size), "--lr", f"{args.lr:g}",
            "--warmup-steps", str(args.warmup_steps)]
    if args.ema:
        argv += ["--ema", f"{args.ema:g}"]
    if args.limit:
        argv += ["--limit", str(args.limit)]
    if args.overrides:
        argv += ["--set", *args.overrides]
    if args.device != "cpu":
        argv += ["--device", args.device]
    if args.init:
        argv += ["--init", str(args.init)]
    if args.out:
        argv += ["--out", str(args.out)]
    return argv


if __name__ == "__main__":
    raise SystemExit(main())
