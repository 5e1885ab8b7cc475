"""`python -m bench.train_ddp`: VDM training speed, images per second, at 1 and N processes on
this machine (torchrun, DistributedDataParallel over gloo on the CPU), and on the GPUs when there
are any (nccl, one process a GPU). Printed as a "## Training" markdown section (`--write`: also
put into BENCHMARKS.md, the rest of the file kept).

Each configuration is a real `python -m explorer.train vdm` (or `torchrun --nproc_per_node N -m
explorer.train vdm`) on Fashion-MNIST with the shipped VDM's network (U-Net 16/32/64 with
attention, T = 1000), a global batch of --batch-size images a step, for PROBE_SKIP warm-up steps
and then --steps timed ones; the figure is the run's own record (`images_per_second`: images of
all processes over the timed steps' wall time). One process takes every core, N processes share
them (cores / N threads each), so the ratio says what splitting a machine into processes costs
or gains. The configurations alternate for --rounds rounds, so a load that comes and goes hits
both; every round's figure is shown.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from bench.report import REPO, cpu_model, git_commit, loadavg, other_load, write_sections
from explorer.train import PROBE_SKIP

HEADING = "## Training"


def command(nproc: int, device: str, steps: int, batch: int, out: Path) -> list[str]:
    """The training command of one configuration: PROBE_SKIP + steps steps of batch images."""
    train = ["vdm", "--dataset", "fashion-mnist", "--epochs", "1", "--batch-size", str(batch),
             "--limit", str((PROBE_SKIP + steps) * batch), "--eval-limit", "0", "--quiet",
             "--device", device, "--out", str(out)]
    if nproc == 1:
        return [sys.executable, "-m", "explorer.train", *train]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
            "-m", "explorer.train", *train]


def run(nproc: int, device: str, steps: int, batch: int) -> dict:
    """One configuration's record of its run (images_per_second, world_size, devices, ...)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "vdm"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        done = subprocess.run(command(nproc, device, steps, batch, out), cwd=REPO, env=env,
                              capture_output=True, text=True, check=False)
        if done.returncode:
            raise SystemExit(f"{nproc} process(es) on {device} failed:\n{done.stderr[-3000:]}")
        return json.loads(out.with_suffix(".json").read_text())["meta"]["runs"][0]


def measure(steps: int, batch: int, rounds: int, nprocs: list[int]) -> dict:
    """Every round runs each CPU configuration once, in turn; then the GPUs, when present."""
    before = {"loadavg": loadavg(), "other": other_load()}
    cpu = {n: [] for n in nprocs}
    for _ in range(rounds):
        for n in nprocs:
            record = run(n, "cpu", steps, batch)
            cpu[n].append(record["images_per_second"])
            print(f"{n} process(es): {record['images_per_second']} images/s", file=sys.stderr)
    gpu = None
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        record = run(n, "cuda", steps, batch)
        gpu = {"world_size": n, "images_per_second": record["images_per_second"],
               "devices": record["devices"]}
    return {"steps": steps, "batch": batch, "rounds": rounds, "cpu": cpu, "gpu": gpu,
            "cores": os.cpu_count(), "cpu_model": cpu_model(), "torch": torch.__version__,
            "before": before, "loadavg_after": loadavg(), "commit": git_commit(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def section(m: dict) -> str:
    """The markdown section of a measurement."""
    cores, base = m["cores"], m["cpu"][min(m["cpu"])]
    lines = [f"{HEADING}: VDM images per second, 1 and more processes (python -m bench.train_ddp)",
             "",
             f"- machine: {cores} cores, {m['cpu_model']}; torch {m['torch']}; commit "
             f"{m['commit']}; {m['date']}",
             f"- load: loadavg {m['before']['loadavg']} before, {m['loadavg_after']} after; other "
             f"processes used {m['before']['other']['cores_busy']:.2f} cores in the second "
             "before the run",
             f"- each run: the shipped VDM's network (Fashion-MNIST, T = 1000), global batch "
             f"{m['batch']}, {PROBE_SKIP} warm-up steps then {m['steps']} timed; "
             f"{m['rounds']} round(s), the configurations alternating",
             "",
             "| configuration | processes x threads | images/s (each round) | mean | vs 1 process |",
             "|---|---|---|---|---|"]
    for n, rates in m["cpu"].items():
        mean = sum(rates) / len(rates)
        ratio = mean / (sum(base) / len(base))
        lines.append(f"| CPU, gloo | {n} x {max(1, cores // n)} | "
                     f"{', '.join(f'{r:.1f}' for r in rates)} | {mean:.1f} | {ratio:.2f} |")
    if m["gpu"]:
        g = m["gpu"]
        lines.append(f"| CUDA, nccl ({g['devices'][0]}) | {g['world_size']} x 1 GPU | "
                     f"{g['images_per_second']:.1f} | {g['images_per_second']:.1f} | — |")
    else:
        lines.append("| CUDA, nccl | — | no GPU on this machine (none lent this session): not measured | — | — |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.train_ddp", description=__doc__)
    parser.add_argument("--steps", type=int, default=30, help="timed steps a run")
    parser.add_argument("--batch-size", type=int, default=128, help="global batch")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each configuration")
    parser.add_argument("--nprocs", type=int, nargs="+", default=[1, 2],
                        help="CPU process counts to run")
    parser.add_argument("--write", action="store_true", help="put the section into BENCHMARKS.md")
    parser.add_argument("--json", type=Path, help="also save the figures as JSON")
    args = parser.parse_args(argv)
    m = measure(args.steps, args.batch_size, args.rounds, args.nprocs)
    text = section(m)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(m, indent=1))
    if args.write:
        write_sections(REPO / "BENCHMARKS.md", text, [HEADING])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
