"""Training on several processes (explorer/distributed.py) against training on one.

The check of the arithmetic: one DDP step at batch B over 2 gloo processes, each with B/2 of the
images, against one process at batch B, in float64, for the VAE, the HVAE and the VDM. DDP's
averaged gradient (1/2)(grad L_0 + grad L_1) must equal grad L of the whole batch, and so must the
weights after the step, to 1e-6. Each image must see the draws it would see in the one process:
the models' draws (VAE/HVAE eps, VDM eps and t) are replaced, in both set-ups, by rows of tensors
drawn for the whole batch, so rank r gets its own rows of the same noise. Then the command line:
a short run under torchrun against a one-process run (the same loss curve, within its noise),
and --init continuing it at another world size.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from explorer import distributed, train
from explorer.distributed import World
from explorer.models import HVAE, VAE, VDM, HVAEConfig, VAEConfig, VDMConfig
from explorer.models import layers as model_layers
from explorer.models import vdm as vdm_module

ROOT = Path(__file__).resolve().parent.parent
BATCH, STEP, LR = 8, 5, 1e-3
TOLERANCE = 1e-6
CONFIGS = {   # tiny; free bits off: a floor on the batch-mean KL is not a mean over images
    "vae": (VAE, VAEConfig(latent_dim=4, channels=(8, 8, 8), warmup_steps=10)),
    "hvae": (HVAE, HVAEConfig(latent_shapes=((2, 7, 7), (4, 1, 1)), channels=(8, 8, 8),
                              hidden=16, warmup_steps=10, free_bits=0.0)),
    "vdm": (VDM, VDMConfig(T=20, channels=(8, 16), attention=False)),
}
OWN_DRAWS = (model_layers.standard_normal, vdm_module.standard_normal, VDM._stratified_t)


# ---------------------------------------------------------------- the same draws, by rows

class SharedDraws:
    """The models' random draws for rows lo:hi of a batch of BATCH images: the k-th normal draw
    of a step is rows lo:hi of a (BATCH, ...) tensor from a generator seeded with k; the VDM's
    steps t are rows lo:hi of its own stratified draw for the whole batch."""

    def __init__(self, lo: int, hi: int):
        self.lo, self.hi, self.k = lo, hi, 0

    def normal(self, shape, generator=None, device=None, dtype=torch.float32):
        assert shape[0] == self.hi - self.lo, "a draw that is not one row per image"
        self.k += 1
        g = torch.Generator().manual_seed(1000 + self.k)
        return torch.randn((BATCH, *shape[1:]), generator=g, dtype=dtype)[self.lo:self.hi]

    def steps(self, model, batch, device, generator):
        t = OWN_DRAWS[2](model, BATCH, device, torch.Generator().manual_seed(7))
        return t[self.lo:self.hi]

    def install(self):
        model_layers.standard_normal = vdm_module.standard_normal = self.normal
        VDM._stratified_t = lambda model, batch, device, generator: self.steps(
            model, batch, device, generator)


def batch_images() -> torch.Tensor:
    """BATCH images on the 8-bit grid, float64 (BATCH, 1, 28, 28)."""
    k = torch.randint(0, 256, (BATCH, 1, 28, 28), generator=torch.Generator().manual_seed(3))
    return k.double() * 2 / 255 - 1


def one_step(kind: str, world: World, lo: int, hi: int) -> dict:
    """One train_step of a fresh float64 model (seed 0) on images lo:hi: the loss, the (clipped)
    gradients and the weights after Adam."""
    cls, config = CONFIGS[kind]
    torch.manual_seed(0)
    model = cls(config).double().train()
    if kind == "vdm":   # the U-Net embeds t in float32 (unet.timestep_embedding): in float64 here
        model.unet.time_mlp.register_forward_pre_hook(lambda _, args: (args[0].double(),))
    objective = distributed.wrap(model, world)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    draws = SharedDraws(lo, hi)
    draws.install()
    loss, _ = train.train_step(objective, model, opt, batch_images()[lo:hi], STEP, None, LR)
    return {"loss": float(loss.detach()),
            "grads": {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None},
            "params": {n: p.detach().clone() for n, p in model.named_parameters()}}


def _rank(rank: int, size: int, port: int, out: str) -> None:
    """A process of the 2-process group: one DDP step of each model on its half of the batch."""
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(size), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(size))
    world = distributed.start("cpu")
    assert world.backend == "gloo" and world.size == size
    half = BATCH // size
    try:
        results = {kind: one_step(kind, world, rank * half, (rank + 1) * half) for kind in CONFIGS}
    finally:
        distributed.stop(world)
    torch.save(results, Path(out) / f"rank{rank}.pt")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_steps(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(_rank, args=(2, free_port(), str(out)), nprocs=2, join=True)
    return [torch.load(out / f"rank{r}.pt") for r in range(2)]


@pytest.fixture
def saved_draws():
    """Put the models' own draws back after a test's in-process steps."""
    yield
    model_layers.standard_normal, vdm_module.standard_normal, VDM._stratified_t = OWN_DRAWS


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_one_ddp_step_on_two_halves_is_one_step_on_the_batch(ddp_steps, saved_draws, kind):
    whole = one_step(kind, World(), 0, BATCH)
    ranks = [steps[kind] for steps in ddp_steps]
    # the loss of the batch is the mean of the halves' losses (both are batch means)
    assert (ranks[0]["loss"] + ranks[1]["loss"]) / 2 == pytest.approx(whole["loss"], abs=1e-9)
    assert set(ranks[0]["grads"]) == set(whole["grads"]) and whole["grads"]
    for rank in ranks:
        for name, grad in whole["grads"].items():
            assert torch.allclose(rank["grads"][name], grad, rtol=0, atol=TOLERANCE), name
        for name, param in whole["params"].items():
            assert torch.allclose(rank["params"][name], param, rtol=0, atol=TOLERANCE), name
    # not a tautology: one half alone has another gradient, which the all-reduce averaged away
    alone = one_step(kind, World(), 0, BATCH // 2)
    gap = max(float((alone["grads"][n] - g).abs().max()) for n, g in whole["grads"].items())
    assert gap > 1e3 * TOLERANCE
    print(f"{kind}: max |grad DDP - grad one process| = "
          f"{max(float((ranks[0]['grads'][n] - g).abs().max()) for n, g in whole['grads'].items()):.1e}")


# ---------------------------------------------------------------- the pieces, without processes

def test_the_ranks_shards_are_disjoint_and_cover_the_epoch():
    n, batch = 37, 8                       # 37 = 2 * 18 + 1: the sampler pads one repeat
    shards = [list(distributed.shard_batches(n, batch, World(rank=r, size=2), epoch=3, seed=5))
              for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == distributed.steps_per_epoch(n, batch, World(size=2))
    assert all(len(b) <= batch // 2 for s in shards for b in s)
    seen = [torch.cat(s).tolist() for s in shards]
    assert sorted(set(seen[0]) | set(seen[1])) == list(range(n))
    assert len(seen[0]) + len(seen[1]) == n + 1
    again = list(distributed.shard_batches(n, batch, World(rank=0, size=2), epoch=4, seed=5))
    assert torch.cat(again).tolist() != seen[0]            # a new permutation each epoch


def test_world_seeds_and_batch_split():
    env = {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"}
    world = distributed.world_from_env("cuda", env)
    assert (world.rank, world.size, world.device, world.backend) == (3, 4, "cuda:1", "nccl")
    assert distributed.world_from_env("cpu", {}) == World()
    assert distributed.world_from_env("cpu", {**env, "WORLD_SIZE": "4"}).backend == "gloo"
    assert distributed.rank_seed(11, World()) == 11                    # one process: unchanged
    seeds = {distributed.rank_seed(11, World(rank=r, size=4)) for r in range(4)}
    assert len(seeds) == 4 and seeds == {distributed.rank_seed(11, World(rank=r, size=4))
                                         for r in range(4)}
    assert train.launcher(World(rank=0, size=4, local_size=2)) == \
        "torchrun --nproc_per_node 2 --nnodes 2 -m explorer.train"
    with pytest.raises(SystemExit, match="multiple of 3"):
        distributed.per_rank_batch(128, World(size=3))


def test_bf16_autocast_runs_the_loss_near_float32(images):
    torch.manual_seed(0)
    model = VDM(CONFIGS["vdm"][1])
    with torch.no_grad():
        losses = [float(distributed.Objective(model, bf16)(images, 0,
                                                           torch.Generator().manual_seed(1))[0])
                  for bf16 in (False, True)]
    assert losses[1] == pytest.approx(losses[0], rel=0.05)
    assert not distributed.use_bf16("auto", "cpu") and distributed.use_bf16("bf16", "cpu")
    with pytest.raises(ValueError, match="valid: auto, fp32, bf16"):
        distributed.use_bf16("fp16", "cpu")


# ---------------------------------------------------------------- the command line

TINY = ["vdm", "--dataset", "mnist", "--batch-size", "32", "--limit", "256", "--lr", "0.002",
        "--warmup-steps", "10", "--eval-limit", "0", "--quiet", "--set", "T=20",
        "channels=[8,16]", "attention=false"]


def torchrun(nproc: int, args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
           "--master_port", str(free_port()), "-m", "explorer.train", *args]
    return subprocess.run(cmd, check=False, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


def test_a_two_process_run_follows_the_one_process_curve_and_resumes_on_one(tmp_path):
    two, one, more = tmp_path / "two", tmp_path / "one", tmp_path / "more"
    done = torchrun(2, TINY + ["--epochs", "4", "--out", str(two)])
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr.count("saved ") == 1                    # rank 0 alone reports and writes
    assert train.main(TINY + ["--epochs", "4", "--threads", "1", "--out", str(one)]) == 0
    runs = [json.loads(p.with_suffix(".json").read_text())["meta"]["runs"][0] for p in (two, one)]
    assert [r["world_size"] for r in runs] == [2, 1]
    assert runs[0]["backend"] == "gloo" and len(runs[0]["devices"]) == 2
    assert runs[0]["command"].startswith("torchrun --nproc_per_node 2 -m explorer.train vdm")
    assert runs[0]["steps"] == runs[1]["steps"] == 4 * 256 // 32
    assert runs[0]["images_per_second"] > 0 and runs[0]["training_seconds"] > 0
    for m2, e2, m1, e1 in zip(runs[0]["train_bits_per_dim"], runs[0]["train_bits_per_dim_sem"],
                              runs[1]["train_bits_per_dim"], runs[1]["train_bits_per_dim_sem"]):
        assert abs(m2 - m1) <= 4 * (e1 ** 2 + e2 ** 2) ** 0.5 + 1e-3, (m2, m1)
    # the 2-process checkpoint continued by one process: the chain records both world sizes
    assert train.main(TINY + ["--epochs", "1", "--threads", "1", "--init", str(two),
                              "--out", str(more)]) == 0
    meta = json.loads(more.with_suffix(".json").read_text())["meta"]
    assert [r["world_size"] for r in meta["runs"]] == [2, 1] and meta["epochs"] == 5
    assert meta["command"].startswith("torchrun --nproc_per_node 2 -m explorer.train vdm")
