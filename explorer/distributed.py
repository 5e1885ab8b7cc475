"""Training on several processes: torchrun + DistributedDataParallel (DDP).

`torchrun --nproc_per_node N -m explorer.train ...` starts N copies of the trainer; each learns
its place from the variables torchrun sets (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
MASTER_ADDR/PORT) and joins one process group: gloo between CPU processes, nccl between GPUs.
Without those variables the trainer is one process, exactly as before.

One step with W processes and a global batch of B images: rank r takes its own B/W images
(a DistributedSampler shards each epoch's seeded permutation), computes its batch-mean loss L_r
and DDP all-reduces the gradients to their mean over the ranks, so every rank applies

    (1/W) sum_r grad L_r = grad (1/B) sum_i loss_i,

the gradient one process would take at batch B, and the ranks' weights stay identical. That holds
when the loss is a batch mean (the -ELBO, L_simple; a free-bits floor on the batch-mean KL is
taken per rank instead) and each image sees the random draws it would see alone
(tests/test_distributed.py checks it for the three models).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

PRECISIONS = ("auto", "fp32", "bf16")   # bf16: the forward under torch.autocast(bfloat16)


@dataclass(frozen=True)
class World:
    """Where this process stands in a run."""

    rank: int = 0               # this process, 0..size-1; rank 0 alone writes and reports
    size: int = 1               # processes in the run (torchrun's WORLD_SIZE)
    local_rank: int = 0         # this process on its machine: picks its GPU
    local_size: int = 1         # processes on this machine
    device: str = "cpu"         # where it computes: cpu, or cuda:<local_rank>
    backend: str | None = None  # gloo (CPU) | nccl (CUDA); None for one process

    @property
    def main(self) -> bool:
        """Whether this process writes the checkpoint, the record and the progress bar."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def world_from_env(device: str = "cpu", env: Mapping[str, str] = os.environ) -> World:
    """The World torchrun's variables describe (one process when WORLD_SIZE is unset or 1).
    A CUDA device becomes cuda:<LOCAL_RANK>: one GPU per process."""
    size = int(env.get("WORLD_SIZE", 1))
    if size <= 1:
        return World(device=device)
    rank, local_rank = int(env["RANK"]), int(env.get("LOCAL_RANK", 0))
    cuda = device.startswith("cuda")
    return World(rank=rank, size=size, local_rank=local_rank,
                 local_size=int(env.get("LOCAL_WORLD_SIZE", 1)),
                 device=f"cuda:{local_rank}" if cuda else device,
                 backend="nccl" if cuda else "gloo")


def start(device: str = "cpu") -> World:
    """This process's World, its process group joined when there are several."""
    world = world_from_env(device)
    if world.distributed:
        if world.backend == "nccl":
            torch.cuda.set_device(world.local_rank)
        dist.init_process_group(world.backend, rank=world.rank, world_size=world.size)
    return world


def stop(world: World, together: bool = False) -> None:
    """Leave the process group (nothing for one process). `together`: first wait until every
    rank is leaving too (a run that ended well): a gloo rank whose peers tear their connections
    down while it still holds them can abort at exit ("terminate called without an active
    exception", seen on a loaded 2-core machine while rank 0 was still saving)."""
    if world.distributed and dist.is_initialized():
        if together:
            dist.barrier()
        dist.destroy_process_group()


def threads_per_process(world: World, requested: int | None) -> int:
    """torch CPU threads for this process: --threads, else this machine's cores shared evenly
    among its processes (N processes of all the cores each would oversubscribe them N times)."""
    return requested or max(1, (os.cpu_count() or 1) // world.local_size)


def rank_seed(seed: int, world: World) -> int:
    """The seed of this rank's random draws: `seed` itself for one process (runs unchanged),
    else an independent stream per rank derived from it (numpy's SeedSequence spawn key)."""
    if not world.distributed:
        return seed
    return int(np.random.SeedSequence(seed, spawn_key=(world.rank,)).generate_state(1)[0])


def per_rank_batch(batch_size: int, world: World) -> int:
    """B / W images a step for each rank; B must split evenly."""
    if batch_size % world.size:
        raise SystemExit(f"--batch-size {batch_size} does not split evenly over {world.size} "
                         f"processes; use a multiple of {world.size}")
    return batch_size // world.size


def steps_per_epoch(n: int, batch_size: int, world: World) -> int:
    """Steps of one pass over n images: ceil(n / B) for one process; with W, each rank's
    ceil(n / W) images (the sampler pads with repeats) in batches of B / W."""
    return math.ceil(math.ceil(n / world.size) / per_rank_batch(batch_size, world))


def shard_batches(n: int, batch_size: int, world: World, epoch: int, seed: int) -> Iterator[Tensor]:
    """This rank's index batches (B / W each, the last possibly smaller) for one epoch: its
    shard of the permutation DistributedSampler draws from seed + epoch (the same on every
    rank, so the shards are disjoint and together cover the epoch)."""
    sampler = DistributedSampler(range(n), num_replicas=world.size, rank=world.rank,
                                 shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    order = torch.tensor(list(sampler), dtype=torch.long)
    per = per_rank_batch(batch_size, world)
    for start_at in range(0, len(order), per):
        yield order[start_at:start_at + per]


def use_bf16(precision: str, device: str) -> bool:
    """auto: bf16 on a CUDA device that has it (convolutions and matmuls at half the memory
    traffic; the losses' log/exp/sum stay float32 under autocast), float32 on the CPU, where
    bf16 is slower on most processors. bf16 asked for on a CPU runs there too."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    if precision == "auto":
        return device.startswith("cuda") and torch.cuda.is_bf16_supported()
    return precision == "bf16"


class Objective(nn.Module):
    """model.training_loss(x, step, generator) as forward(): DDP prepares its gradient
    all-reduce in forward(), so the loss must be computed through it."""

    def __init__(self, model: nn.Module, bf16: bool = False):
        super().__init__()
        self.model = model
        self.bf16 = bf16

    def forward(self, x: Tensor, step: int, generator: torch.Generator | None = None):
        device_type = x.device.type
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=self.bf16):
            loss, terms = self.model.training_loss(x, step=step, generator=generator)
        return (loss.float() if self.bf16 else loss), terms


def wrap(model: nn.Module, world: World, bf16: bool = False) -> nn.Module:
    """The module a training step calls: Objective(model), in DDP when there are several
    processes (parameters broadcast from rank 0 now; gradients averaged over ranks in every
    backward). The graph is static (the same parameters take part in every step), which also
    lets a parameter sit out (L_simple leaves a learned schedule without a gradient). Buffers are not synced each step: every rank computes the same ones (a fitted prior)."""
    objective = Objective(model, bf16)
    if not world.distributed:
        return objective
    ids = [world.local_rank] if world.backend == "nccl" else None
    return DistributedDataParallel(objective, device_ids=ids, static_graph=True,
                                   forward_sync_buffers=False)


def broadcast_int(value: int, world: World) -> int:
    """Rank 0's `value` on every rank (a decision all ranks must share, such as the run's
    length fitted to --max-minutes from rank 0's clock)."""
    if not world.distributed:
        return value
    t = torch.tensor([value], dtype=torch.long, device=world.device)
    dist.broadcast(t, src=0)
    return int(t.item())


def mean_over_ranks(values: list[float], world: World) -> list[float]:
    """The element-wise mean of `values` over the ranks (one all-reduce)."""
    if not world.distributed or not values:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=world.device)
    dist.all_reduce(t)
    return (t / world.size).tolist()


def devices(world: World, here: str) -> list[str]:
    """What every rank ran on (`here` is this rank's description), in rank order."""
    if not world.distributed:
        return [here]
    every: list = [None] * world.size
    dist.all_gather_object(every, here)
    return every
