"""Train a model: `python -m explorer.train {vae,hvae,vdm} --dataset {fashion-mnist,mnist} ...`.

Writes `<out>.safetensors` + `<out>.json` (config, dataset, seed, epochs, training time, the
command that rebuilds it, and test-set figures) after every epoch.

On several processes: `torchrun --nproc_per_node N -m explorer.train ...` (add --nnodes and
--rdzv-* for several machines) trains with DistributedDataParallel, --batch-size images a step
over all of them; rank 0 alone writes the checkpoint, the record and the progress bar
(explorer/distributed.py).
"""

from __future__ import annotations

import argparse
import copy
import functools
import math
import shlex
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from explorer import cli, distributed
from explorer.checkpoint import load_checkpoint, save_checkpoint
from explorer.data import DatasetMissingError, batches, load_dataset, save_gallery
from explorer.evaluate import evaluate
from explorer.folder import FolderSplits, folder_gallery, read_folder
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
    p.add_argument("--batch-size", type=int, default=128,
                   help="images a step, all processes together (each takes its share)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak Adam learning rate")
    p.add_argument("--warmup-steps", type=int, default=200, help="linear learning-rate warm-up")
    p.add_argument("--ema", type=float, default=0.0,
                   help="exponential moving average of the weights (e.g. 0.999); 0 = off")
    p.add_argument("--limit", type=int, default=None, help="train on a seeded random subset of N images")
    p.add_argument("--eval-limit", type=int, default=2000,
                   help="test images for the figures saved in the JSON (0 = skip)")
    p.add_argument("--set", dest="overrides", nargs="*", metavar="KEY=VALUE",
                   help="config fields, e.g. --set latent_dim=2")
    p.add_argument("--data", default=None, metavar="DIR",
                   help="train on a folder of your own pictures (any format and size; one "
                        "subfolder per class, or none), split into train / test by a seeded "
                        "hash of each file's name; a gallery of the test part is written beside "
                        "the checkpoint, for python app.py --models")
    p.add_argument("--out", default=None,
                   help="checkpoint stem (default pretrained/<dataset>/<model>; with --data, "
                        "trained/<folder name>/<model>)")
    p.add_argument("--init", default=None, metavar="STEM",
                   help="continue training the checkpoint at STEM (its config, with any --set "
                        "fields that leave the network's shape alone; fresh optimizer)")
    p.add_argument("--precision", choices=distributed.PRECISIONS, default="auto",
                   help="bf16: the forward under torch.autocast(bfloat16); auto: bf16 on a "
                        "CUDA device that has it, fp32 elsewhere")
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


def training_sets(args) -> tuple[str, torch.Tensor, FolderSplits | None]:
    """(dataset name, training images (N, 1, 28, 28) in [-1, 1], the folder's splits or None):
    --dataset's training split, or --data's train part (each its seeded subset of --limit)."""
    if not args.data:
        return args.dataset, training_images(args.dataset, args.limit, args.seed), None
    try:
        splits = read_folder(args.data, seed=args.seed)
    except (ValueError, DatasetMissingError) as err:
        raise SystemExit(f"--data: {err}") from None
    train = splits.train.tensor()
    if args.limit:
        train = train[torch.randperm(len(train),
                                     generator=torch.Generator().manual_seed(args.seed))[:args.limit]]
    return splits.train.name, train, splits


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


def train_step(objective: torch.nn.Module, model: torch.nn.Module, opt: torch.optim.Optimizer,
               x: torch.Tensor, step: int, generator: torch.Generator, lr: float):
    """One optimizer step on the batch x at learning rate lr: the loss (through `objective`,
    which in DDP averages the gradients over the ranks), gradients clipped to norm 1, Adam.
    Returns (loss, -ELBO terms)."""
    for group in opt.param_groups:
        group["lr"] = lr
    loss, terms = objective(x, step, generator)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss, terms


def epoch_batches(train: torch.Tensor, batch_size: int, world: distributed.World, epoch: int,
                  seed: int, generator: torch.Generator):
    """This process's minibatches of one epoch: one process shuffles with `generator` (as it
    always has); several take their shards of a DistributedSampler permutation (seed + epoch)."""
    if not world.distributed:
        yield from batches(train, batch_size, shuffle=True, generator=generator)
        return
    for idx in distributed.shard_batches(len(train), batch_size, world, epoch, seed):
        yield train[idx]


def build_model(args, device: str, dataset: str):
    """(model, config, the --init checkpoint's record or {}): a fresh model from --set, or the
    --init checkpoint (of the same kind and dataset) with any --set fields that leave its
    network's shape alone."""
    model_cls = MODELS[args.model]
    if not args.init:
        config = cli.build_config(model_cls.config_cls, cli.parse_overrides(args.overrides))
        return model_cls(config).to(device), config, {}
    model, previous = load_checkpoint(args.init, map_location=device)
    if model.kind != args.model or previous.get("dataset", dataset) != dataset:
        raise SystemExit(f"{shown_path(args.init)} holds a {model.kind} for "
                         f"{previous.get('dataset')}, not a {args.model} for {dataset}")
    config = model.config
    if args.overrides:   # e.g. a new training loss; the weights must still fit the network
        config = cli.build_config(model_cls.config_cls, cli.parse_overrides(args.overrides),
                                  base=config)
        state, model = model.state_dict(), model_cls(config).to(device)
        try:
            model.load_state_dict(state)
        except RuntimeError as err:
            hint = ("; a trained VDM's prior is fitted by python -m explorer.fit_prior"
                    if "prior" in cli.parse_overrides(args.overrides) else "")
            raise SystemExit(f"--set {' '.join(args.overrides)} changes the network of "
                             f"{shown_path(args.init)}, so its weights do not fit{hint}: "
                             f"{err}") from None
    return model, config, previous


def main(argv=None) -> int:
    args = parse_args(argv)
    world = distributed.start(args.device)
    try:
        code = _train(args, world)
    except BaseException:
        distributed.stop(world)                 # no barrier: the other ranks may never come
        raise
    distributed.stop(world, together=True)
    return code


def _train(args, world: distributed.World) -> int:
    cli.set_threads(distributed.threads_per_process(world, args.threads))
    torch.manual_seed(args.seed)
    say = functools.partial(print, file=sys.stderr) if world.main else (lambda *_, **__: None)
    dataset, train, splits = training_sets(args)
    model, config, previous = build_model(args, world.device, dataset)
    if not args.init and hasattr(model, "fit_prior"):   # a fitted p(x_T) is set before training
        model.fit_prior(train)
    ema = copy.deepcopy(model).eval() if args.ema > 0 else None
    out = Path(args.out) if args.out else (Path("trained") / dataset / args.model if splits
                                           else cli.default_stem(args.model, args.dataset))
    if splits is not None and world.main:
        say(folder_summary(args.data, splits))
        save_gallery(folder_gallery(splits, args.seed), out.parent / "gallery.npz")
    objective = distributed.wrap(model, world, distributed.use_bf16(args.precision, world.device))

    gen = torch.Generator().manual_seed(distributed.rank_seed(args.seed, world))
    steps_per_epoch = distributed.steps_per_epoch(len(train), args.batch_size, world)
    total_steps = max(1, round(args.epochs * steps_per_epoch))
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    n_params = sum(p.numel() for p in model.parameters())
    say(f"training {args.model} ({n_params:,} parameters) on {len(train):,} {dataset} "
        f"images for {total_steps:,} steps on {world.size} process(es); config {config}")

    where = distributed.devices(world, f"{world.device}: {cli.hardware()}")
    step, epoch, started, meta, probe_start = 0, 0, time.time(), {}, None
    speed = Speed()
    epoch_bpd, curve = [], []
    bar = tqdm(total=total_steps, disable=args.quiet or not world.main, unit="step",
               dynamic_ncols=True)
    while step < total_steps:
        model.train()
        for x in epoch_batches(train, args.batch_size, world, epoch, args.seed, gen):
            if step >= total_steps:
                break
            loss, terms = train_step(objective, model, opt, x.to(world.device),
                                     previous.get("steps", 0) + step, gen,
                                     lr_at(step, total_steps, args.lr, args.warmup_steps))
            if ema is not None:  # decay warmed up as (1 + n) / (10 + n), capped at --ema
                decay = min(args.ema, (1 + step) / (10 + step))
                with torch.no_grad():
                    for p_ema, p in zip(ema.parameters(), model.parameters()):
                        p_ema.lerp_(p, 1.0 - decay)
            step += 1
            speed.count(step, len(x) * world.size)
            if args.max_minutes and step == PROBE_SKIP:
                probe_start = time.time()
            elif args.max_minutes and step == PROBE_SKIP + PROBE_STEPS:
                now = time.time()
                total_steps = distributed.broadcast_int(   # rank 0's clock decides for all
                    fit_steps(total_steps, step, PROBE_STEPS / (now - probe_start),
                              args.max_minutes * 60 - (now - started)), world)
                args.epochs = total_steps / steps_per_epoch   # what _reconstruct records
                bar.total = total_steps
            bpd = nats_to_bpd(float(terms.total.detach().mean()), PIXELS)
            epoch_bpd.append(bpd)
            bar.update(1)
            bar.set_postfix(bpd=f"{bpd:.3f}", loss=f"{float(loss.detach()):.4g}")
            if step % steps_per_epoch == 0 or step == total_steps:
                curve.append(mean_and_sem(distributed.mean_over_ranks(epoch_bpd, world)))
                run = _run_record(args, world, where, step, steps_per_epoch, started, speed,
                                  curve)
                if world.main:
                    meta = _save(args, dataset, ema or model, out, run, n_params, previous)
                if args.quiet:  # one line per epoch for logs of background runs
                    say(f"epoch {step / steps_per_epoch:.2f}: train -ELBO {curve[-1][0]:.4f} "
                        f"bits/dim, {time.time() - started:.0f} s", flush=True)
                epoch_bpd = []
        epoch += 1
    bar.close()
    if not world.main:
        return 0
    if args.eval_limit:
        test = (splits.test if splits else load_dataset(args.dataset, "test")).tensor()
        test = test[:args.eval_limit]
        meta["evaluation"] = evaluate(ema or model, test, 250, seed=args.seed)
        save_checkpoint(ema or model, out, meta)
        say(f"test -ELBO: {meta['evaluation']['bits_per_dim']}")
    say(f"saved {out}.safetensors / .json ({speed.per_second():.1f} images/s)")
    return 0


def mean_and_sem(values: list[float]) -> tuple[float, float]:
    """(mean, standard error of the mean s / sqrt(n)) of n values, each rounded to 4 digits."""
    n = len(values)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1) if n > 1 else 0.0
    return round(mean, 4), round(math.sqrt(var / n), 4)


class Speed:
    """Training images per second, all processes together, over the steps after the first
    PROBE_SKIP (start-up, first-call allocations), or over every step of a shorter run."""

    def __init__(self):
        self.started, self.since, self.images, self.after = time.time(), None, 0, 0

    def count(self, step: int, images: int) -> None:
        self.images += images
        if step == PROBE_SKIP:
            self.since = time.time()
        elif step > PROBE_SKIP:
            self.after += images

    def per_second(self) -> float:
        if self.after:
            return self.after / (time.time() - self.since)
        return self.images / max(time.time() - self.started, 1e-9)


def _run_record(args, world, where: list[str], step, steps_per_epoch, started, speed: Speed,
                curve: list[float]) -> dict:
    """This run's part of the record: its command, length, wall time, speed, where it ran
    (every rank's device) and each epoch's train -ELBO (bits/dim, all ranks together) with the
    standard error of that mean over the epoch's steps."""
    return {"command": launcher(world) + " " + shlex.join(_reconstruct(args)),
            "epochs": round(step / steps_per_epoch, 3), "steps": step,
            "training_seconds": round(time.time() - started, 1), "hardware": cli.hardware(),
            "world_size": world.size, "backend": world.backend or "none",
            "devices": where,
            "images_per_second": round(speed.per_second(), 1),
            "train_bits_per_dim": [m for m, _ in curve],
            "train_bits_per_dim_sem": [e for _, e in curve]}


def launcher(world: distributed.World) -> str:
    """How the run was started: python -m, or torchrun with its processes per machine (and
    machines, when several)."""
    if not world.distributed:
        return "python -m explorer.train"
    nodes = world.size // world.local_size
    return (f"torchrun --nproc_per_node {world.local_size}"
            + (f" --nnodes {nodes}" if nodes > 1 else "") + " -m explorer.train")


def folder_summary(folder, splits: FolderSplits) -> str:
    """What --data read: the split, the classes and the files skipped (the first few named)."""
    skipped = "".join(f"\n  skipped {name}: {why}" for name, why in splits.skipped[:5])
    more = len(splits.skipped) - 5
    return (f"{shown_path(folder)}: {len(splits.train)} training and {len(splits.test)} test "
            f"pictures in {len(splits.train.class_names)} class(es); {len(splits.skipped)} "
            f"files skipped{skipped}" + (f"\n  ... and {more} more" if more > 0 else ""))


def _save(args, dataset: str, model, out, run: dict, n_params, previous: dict) -> dict:
    """Write the checkpoint; figures accumulate over a chain of --init continuations."""
    runs = previous.get("runs", []) + [run]
    meta = {
        "dataset": dataset, "seed": args.seed,
        "hardware": run["hardware"], "parameters": n_params,
        "batch_size": args.batch_size, "lr": args.lr, "ema": args.ema,
        "training_images": args.limit, **chain(runs),
    }
    if args.data:   # a folder of the user's own pictures
        meta["data"] = shown_path(args.data)
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
    source = ["--data", str(args.data)] if args.data else ["--dataset", args.dataset]
    argv = [args.model, *source, "--seed", str(args.seed), "--epochs",
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
    if args.precision != "auto":
        argv += ["--precision", args.precision]
    if args.init:
        argv += ["--init", str(args.init)]
    if args.out:
        argv += ["--out", str(args.out)]
    return argv


if __name__ == "__main__":
    raise SystemExit(main())
