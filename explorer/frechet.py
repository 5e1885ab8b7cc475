"""Frechet distance of sample sets on the features of a small classifier ("the judge").

This is NOT Inception FID: the judge is a small CNN trained here on the dataset's own training
split, and the distance is computed on its 64-d penultimate features. Numbers compare models on
one dataset with one judge; they are not comparable with published FIDs.

    FD = ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^{1/2})       (Frechet 1957; Heusel et al. 2017)

Train a judge: `python -m explorer.frechet train --dataset fashion-mnist` (writes
`pretrained/<dataset>/judge`); score samples: `python -m explorer.evaluate --samples FILE.npy`.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from explorer import cli
from explorer.checkpoint import load_checkpoint, save_checkpoint
from explorer.data import DATASETS, batches, load_dataset, to_float


@dataclass(frozen=True)
class JudgeConfig:
    channels: tuple[int, ...] = (32, 64)   # conv widths at 28 and 14 (each followed by 2x pooling)
    features: int = 64                     # width of the penultimate layer the distance uses
    classes: int = 10                      # number of labels


class Judge(nn.Module):
    """A small CNN classifier p(y | x); `features(x)` is its penultimate activation (B, features)."""

    kind = "judge"
    config_cls = JudgeConfig

    def __init__(self, config: JudgeConfig = JudgeConfig()):
        super().__init__()
        self.config = config
        layers, c = [], 1
        for width in config.channels:
            layers += [nn.Conv2d(c, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                       nn.Conv2d(width, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c = width
        side = 28 // 2 ** len(config.channels)
        self.body = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * side * side, config.features),
                                  nn.ReLU())
        self.head = nn.Linear(config.features, config.classes)

    def features(self, x: Tensor) -> Tensor:
        """(B, 1, 28, 28) in [-1, 1] -> (B, features)."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits (B, classes)."""
        return self.head(self.features(x))


@torch.no_grad()
def judge_features(judge: Judge, images: np.ndarray | Tensor, batch_size: int = 500) -> np.ndarray:
    """Penultimate features of uint8 (N, 28, 28) images or float (N, 1, 28, 28) in [-1, 1]."""
    judge.eval()
    x = images if isinstance(images, Tensor) and images.is_floating_point() else to_float(images)
    return torch.cat([judge.features(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
                     ).double().numpy()


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D) of features (N, D)."""
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu_a: np.ndarray, cov_a: np.ndarray, mu_b: np.ndarray,
                     cov_b: np.ndarray) -> float:
    """Frechet distance between N(mu_a, cov_a) and N(mu_b, cov_b) (squared Wasserstein-2).

    tr((S_a S_b)^{1/2}) is the sum of the square roots of the eigenvalues of S_a S_b, which are
    real and non-negative for covariance matrices (S_a S_b is similar to S_a^{1/2} S_b S_a^{1/2})."""
    eig = np.linalg.eigvals(cov_a @ cov_b)
    trace_sqrt = np.sqrt(np.clip(eig.real, 0.0, None)).sum()
    return float(np.sum((mu_a - mu_b) ** 2) + np.trace(cov_a) + np.trace(cov_b) - 2 * trace_sqrt)


def distance(judge: Judge, a: np.ndarray | Tensor, b: np.ndarray | Tensor) -> float:
    """Frechet distance between two image sets on the judge's features."""
    return frechet_distance(*gaussian_stats(judge_features(judge, a)),
                            *gaussian_stats(judge_features(judge, b)))


def train_judge(dataset: str, epochs: int = 3, batch_size: int = 128, lr: float = 2e-3,
                seed: int = 0, limit: int | None = None) -> tuple[Judge, dict]:
    """Train a judge on the training split; returns it with its test accuracy and the command."""
    torch.manual_seed(seed)
    train, test = load_dataset(dataset, "train"), load_dataset(dataset, "test")
    x, y = train.tensor(), torch.as_tensor(np.array(train.labels))
    if limit:  # a seeded random subset: the MNIST subset is stored sorted by class
        pick = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:limit]
        x, y = x[pick], y[pick]
    judge = Judge(JudgeConfig(classes=len(train.class_names)))
    opt = torch.optim.Adam(judge.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    steps = epochs * math.ceil(len(x) / batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    started = time.time()
    index = torch.arange(len(x))
    for _ in range(epochs):
        judge.train()
        for idx in batches(index, batch_size, shuffle=True, generator=gen):
            # small random shifts: the judge should not hinge on exact pixel positions
            shift = torch.randint(-2, 3, (2,), generator=gen).tolist()
            xb = torch.roll(x[idx], shifts=shift, dims=(2, 3))
            loss = F.cross_entropy(judge(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    judge.eval()
    with torch.no_grad():
        logits = torch.cat([judge(t) for t in test.tensor().split(1000)])
    accuracy = float((logits.argmax(1).numpy() == test.labels).mean())
    meta = {"dataset": dataset, "seed": seed, "epochs": epochs, "test_accuracy": accuracy,
            "training_seconds": round(time.time() - started, 1), "hardware": cli.hardware(),
            "command": "python -m explorer.frechet train " + shlex.join(
                ["--dataset", dataset, "--epochs", str(epochs), "--seed", str(seed)])}
    meta["floor"] = floor(judge, dataset)
    return judge, meta


def reference_images(images: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """The n test images a score of n samples is measured against: a seeded draw without
    replacement (all of them when n >= len(images)). Not the first n: a split may be stored
    sorted by class, as the MNIST subset is, and its first 500 images are digits 0 to 4 only."""
    if n >= len(images):
        return images
    pick = np.random.default_rng([seed, 1]).choice(len(images), n, replace=False)
    return images[np.sort(pick)]


def floor(judge: Judge, dataset: str, n: int | None = None, seed: int = 0) -> dict:
    """The distance between real images: n training images against the n reference test images
    (`reference_images`): the best a sampler of n images can hope for, given finite-sample
    noise."""
    train, test = load_dataset(dataset, "train"), load_dataset(dataset, "test")
    n = min(n or len(test), len(test), len(train))
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(train), n, replace=False)
    return {"n": int(n), "train_vs_test": distance(judge, train.images[pick],
                                                   reference_images(test.images, n, seed))}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m explorer.frechet", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train and save the judge of a dataset")
    t.add_argument("--dataset", choices=DATASETS, default="fashion-mnist")
    t.add_argument("--epochs", type=int, default=3)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--limit", type=int, default=None)
    t.add_argument("--threads", type=int, default=None)
    t.add_argument("--out", default=None, help="stem (default pretrained/<dataset>/judge)")
    args = p.parse_args(argv)
    cli.set_threads(args.threads)
    judge, meta = train_judge(args.dataset, args.epochs, seed=args.seed, limit=args.limit)
    out = args.out or cli.default_stem("judge", args.dataset)
    save_checkpoint(judge, out, meta)
    print(f"judge for {args.dataset}: test accuracy {meta['test_accuracy']:.4f}, "
          f"train-vs-test distance {meta['floor']['train_vs_test']:.3f}; saved {out}",
          file=sys.stderr)
    return 0


def load_judge(dataset: str, stem=None) -> tuple[Judge, dict]:
    """The shipped judge of a dataset (pretrained/<dataset>/judge)."""
    judge, meta = load_checkpoint(stem or cli.default_stem("judge", dataset))
    return judge, meta


if __name__ == "__main__":
    sys.exit(main())
