"""`python -m bench.playground`: the 2-D playground's model on this machine's CPU. Printed as a
"## 2-D playground" markdown section (`--write`: also put into BENCHMARKS.md, the rest kept).

(a) training speed: 2,000 iterations at batch 1,024 of the default ToyVDM (3 x 128 MLP), drained
    from Trainer.progressive, for the linear and the learned schedule; beside them a bare loop
    (the same MLP, MSE on fixed tensors, Adam) says how fast the machine was at that moment.
(b) how close training gets: two moons, 1,000 points (seed 0), trained for up to 20 s of training
    time; the diffusion term of the model and of the exact denoiser (the floor no network can go
    below on these points), both by explorer.toy.exact.diffusion_loss with the same seeded draws,
    at 5, 10 and 20 s.
(c) the field on a 25 x 25 grid: eps_hat of the model and eps* of the ExactDenoiser at 625 points,
    p50 of 20 calls.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from bench.report import REPO, cpu_model, git_commit, loadavg, other_load, write_sections
from explorer.toy.data import make_set
from explorer.toy.exact import ExactDenoiser, diffusion_loss, grid_points
from explorer.toy.model import ToyConfig, ToyVDM
from explorer.toy.train import Trainer, TrainConfig

HEADING = "## 2-D playground"
SPEED_TARGET_S = 10.0        # (a) 2,000 iterations at batch 1,024
RATIO_TARGET = 1.10          # (b) model / floor
FIELD_TARGET_MS = 50.0       # (c) 625 points
MARKS_S = (5.0, 10.0, 20.0)  # (b) training seconds at which the model is scored

# what tuning found (two moons, 1,000 points, the averaged model scored as in (b), at equal
# iterations so that the shared machine's pace does not decide); kept beside the figures
TUNING = [
    "(b) tuning, at equal iterations: the diffusion term's t drawn evenly in log-SNR "
    "(ToyConfig.t_draw='log_snr') against uniform in t (the image VDM's draw): 7.28 against 7.61 "
    "at 4,000 iterations; the weights' moving average (TrainConfig.ema=0.99) against the raw "
    "weights: 7.28 against 7.48; lr 5e-3 (ema 0.995): 7.29, no better; lr 1e-3: 7.62 against "
    "7.41 at 2,000. Per second (t uniform, no average), width 256, depth 4 x 192 and batch 256 did worse (fewer or "
    "noisier iterations: 8.44, 8.79, 8.64 after 20 s without the average, against 7.97); the "
    "learned schedule (it starts even in log-SNR) 7.59 after 20 s (1,042 iterations).",
    "(b) why 1,000 points miss 1.10: the floor is the exact denoiser of the 1,000 training points, "
    "which recognises its own points at low noise; the exact denoiser of 50,000 fresh points "
    "(the population reference, what a model that learns the distribution rather than the points "
    "can reach) scores 1.158 of it, and the trained model reaches that (7.294 against 7.287). The "
    "gap lies at t <= 50 (gamma < -3.5): 6.14 against 4.57 nats in a per-step breakdown. "
    "Going lower needs a network that memorises the points; with 5,000 points the floor "
    "memorises less (population 1.049) and the default model meets 1.10 within 10 s.",
    "(a) on a shared machine 2 torch threads ran 10-25x slower than 1 (300 iterations: 31-57 s "
    "against 2.2-2.6 s, loadavg ~5 on 2 cores), so this bench trains on 1 thread; the figure to "
    "read is the ratio to the bare loop measured beside it.",
    "(a) the app gives each training lab cores / 2 threads (ui/playground/lab.py "
    "threads_per_lab: at most 2 labs train at once, so the trainers never ask for more threads "
    "than there are cores): on this 2-core machine a lab trains on 1 thread (the 1-thread rows); "
    "the row on every core is what one training run gets on a quiet machine.",
]


def bare_loop(steps: int, batch: int, width: int, depth: int, frequencies: int) -> float:
    """Seconds of `steps` Adam steps of the same MLP on fixed inputs: the machine's pace now."""
    torch.manual_seed(0)
    net = ToyVDM(ToyConfig(width=width, depth=depth, frequencies=frequencies)).net
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, foreach=True)
    x, y = torch.randn(batch, 2 + 2 * frequencies), torch.randn(batch, 2)
    began = time.perf_counter()
    for _ in range(steps):
        loss = ((net(x) - y) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        float(loss.detach())
    return time.perf_counter() - began


def speed(schedule: str, steps: int, batch: int) -> dict:
    """(a) wall seconds of draining `steps` iterations, and the final loss."""
    torch.manual_seed(0)
    points = make_set("moons", 1000, 0)
    trainer = Trainer(ToyVDM(ToyConfig(schedule=schedule)), points,
                      TrainConfig(batch=batch, steps=steps))
    began = time.perf_counter()
    for last in trainer.progressive():
        pass
    return {"schedule": schedule, "seconds": time.perf_counter() - began, "loss": last.loss}


def population_points(set_name: str, n: int = 50_000) -> np.ndarray:
    """n fresh points of the named set (seeds 100, 101, ...; none of them the training draw)."""
    per = 5000
    return np.concatenate([make_set(set_name, per, 100 + k) for k in range(n // per)])


def converge(config: ToyConfig, train: TrainConfig, set_name: str, n: int, samples: int,
             marks: tuple[float, ...] = MARKS_S) -> dict:
    """(b) the diffusion term of the trainer's averaged model against the exact floor after each
    mark's training seconds; and the population reference: the exact denoiser of 50,000 fresh
    points of the set, scored on the same draws (what a model that generalises, not memorises,
    can reach)."""
    torch.manual_seed(0)
    points = make_set(set_name, n, 0)
    trainer = Trainer(ToyVDM(config), points, TrainConfig(lr=train.lr, batch=train.batch,
                                                          steps=100_000, seed=train.seed,
                                                          ema=train.ema))

    def term(eps_model, schedule) -> float:
        with torch.no_grad():
            return diffusion_loss(eps_model, points, schedule, samples,
                                  torch.Generator().manual_seed(1))

    rows, todo = [], list(marks)
    for step in trainer.progressive():
        if step.seconds < todo[0]:
            continue
        model = trainer.averaged
        schedule = model.schedule          # a learned schedule's floor moves with it
        floor = term(ExactDenoiser(points, schedule), schedule)
        value = term(model.predict_noise, schedule)
        rows.append({"seconds": round(step.seconds, 2), "iteration": step.iteration,
                     "model": value, "floor": floor, "ratio": value / floor})
        print(f"  {set_name} n={n}: {step.seconds:5.1f} s, {step.iteration} iterations: model "
              f"{value:.3f}, floor {floor:.3f}, ratio {value / floor:.3f}", file=sys.stderr)
        todo.pop(0)
        if not todo:
            break
    schedule = trainer.averaged.schedule
    population = term(ExactDenoiser(population_points(set_name), schedule), schedule)
    print(f"  population reference {population:.3f}, ratio {population / rows[-1]['floor']:.3f}",
          file=sys.stderr)
    return {"set": set_name, "n": n, "samples": samples, "rows": rows, "population": population,
            "population_ratio": population / rows[-1]["floor"]}


def field(resolution: int, repeats: int) -> dict:
    """(c) p50 ms of eps_hat (model) and eps* (exact) on the grid's points at t = 100."""
    points = make_set("moons", 1000, 0)
    model = ToyVDM(ToyConfig()).eval()
    exact = ExactDenoiser(points, model.schedule)
    x = grid_points(resolution).to(torch.float32)                      # (resolution^2, 2)
    t = torch.full((x.shape[0],), 100, dtype=torch.long)
    out = {"points": int(x.shape[0])}
    for name, fn in (("model", model.predict_noise), ("exact", exact)):
        times = []
        with torch.no_grad():
            fn(x, t)
            for _ in range(repeats):
                began = time.perf_counter()
                fn(x, t)
                times.append(1e3 * (time.perf_counter() - began))
        out[name] = {"p50_ms": statistics.median(times), "max_ms": max(times), "n": repeats}
    return out


def measure(args) -> dict:
    torch.set_num_threads(args.threads)
    before = {"loadavg": loadavg(), "other": other_load()}
    m = {"threads": args.threads, "cores": os.cpu_count(), "cpu_model": cpu_model(),
         "torch": torch.__version__, "commit": git_commit(), "before": before,
         "date": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    c = ToyConfig()
    print("(a) training speed", file=sys.stderr)
    m["bare_s"] = bare_loop(args.steps, args.batch, c.width, c.depth, c.frequencies)
    m["speed"] = [speed(s, args.steps, args.batch) | {"threads": args.threads}
                  for s in ("linear", "learned")]
    m["bare_after_s"] = bare_loop(args.steps, args.batch, c.width, c.depth, c.frequencies)
    # every core on one training run: what a lab alone gets on a machine with more cores than
    # labs training (ui/playground/lab.py threads_per_lab), or a quiet 2-core one
    m["speed_all_cores"] = []
    for threads in sorted({n for n in (2, os.cpu_count() or 1) if n > args.threads}):
        torch.set_num_threads(threads)
        bare = bare_loop(args.steps, args.batch, c.width, c.depth, c.frequencies)
        m["speed_all_cores"].append(speed("linear", args.steps, args.batch)
                                    | {"threads": threads, "bare_s": bare})
    torch.set_num_threads(args.threads)
    for row in m["speed"]:
        print(f"  {row['schedule']}: {row['seconds']:.2f} s", file=sys.stderr)
    print(f"  bare loop: {m['bare_s']:.2f} s before, {m['bare_after_s']:.2f} s after",
          file=sys.stderr)
    print("(b) two moons against the floor", file=sys.stderr)
    m["converge"] = [converge(ToyConfig(), TrainConfig(), "moons", n, args.samples)
                     for n in args.points]
    print("(c) the field", file=sys.stderr)
    m["field"] = field(25, 20)
    m["loadavg_after"] = loadavg()
    return m


def section(m: dict) -> str:
    """The markdown section of a measurement."""
    lines = [f"{HEADING}: the toy VDM's live training and its field (python -m bench.playground)",
             "",
             f"- machine: {m['cores']} cores, {m['cpu_model']}; torch {m['torch']}, "
             f"{m['threads']} thread(s); commit {m['commit']}; {m['date']}",
             f"- load: loadavg {m['before']['loadavg']} before, {m['loadavg_after']} after; other "
             f"processes used {m['before']['other']['cores_busy']:.2f} cores in the second before",
             f"- model: ToyConfig() = {ToyConfig().__dict__}; training: TrainConfig() = "
             f"{TrainConfig().__dict__}",
             "",
             "| measurement | figure | target | met? |",
             "|---|---|---|---|"]
    bare = (m["bare_s"] + m["bare_after_s"]) / 2
    for row in m["speed"]:
        met = "yes" if row["seconds"] <= SPEED_TARGET_S else "no"
        lines.append(f"| (a) 2,000 iterations, batch 1,024, 3 x 128, {row['schedule']} schedule | "
                     f"{row['seconds']:.2f} s ({row['seconds'] / bare:.2f}x the bare loop) | "
                     f"≤ {SPEED_TARGET_S:.0f} s"
                     f"{'' if row['schedule'] == 'linear' else ' (linear)'} | "
                     f"{met if row['schedule'] == 'linear' else '—'} |")
    lines.append(f"| (a) bare loop, same MLP and Adam on fixed tensors (the machine's pace) | "
                 f"{m['bare_s']:.2f} s before, {m['bare_after_s']:.2f} s after | — | — |")
    for row in m.get("speed_all_cores", []):
        met = "yes" if row["seconds"] <= SPEED_TARGET_S else "no"
        lines.append(f"| (a) the same, linear schedule, on {row['threads']} threads | "
                     f"{row['seconds']:.2f} s ({row['seconds'] / row['bare_s']:.2f}x the bare "
                     f"loop's {row['bare_s']:.2f} s on as many) | ≤ {SPEED_TARGET_S:.0f} s | {met} |")
    for c in m["converge"]:
        for r in c["rows"]:
            met = "yes" if r["ratio"] <= RATIO_TARGET else "no"
            lines.append(f"| (b) two moons, {c['n']:,} points: diffusion term after "
                         f"{r['seconds']:.0f} s ({r['iteration']:,} iterations), model / exact "
                         f"floor | {r['model']:.3f} / {r['floor']:.3f} = {r['ratio']:.3f} | "
                         f"≤ {RATIO_TARGET:.2f} | {met} |")
        lines.append(f"| (b) two moons, {c['n']:,} points: population reference (exact denoiser "
                     f"of 50,000 fresh points) / floor | {c['population']:.3f} / "
                     f"{c['rows'][-1]['floor']:.3f} = {c['population_ratio']:.3f} | — | — |")
    f = m["field"]
    for name, label in (("model", "model's eps_hat"), ("exact", "ExactDenoiser's eps*")):
        met = "yes" if f[name]["p50_ms"] <= FIELD_TARGET_MS else "no"
        lines.append(f"| (c) field, 25 x 25 grid ({f['points']} points), {label}, p50 of "
                     f"{f[name]['n']} | {f[name]['p50_ms']:.2f} ms | ≤ {FIELD_TARGET_MS:.0f} ms | "
                     f"{met} |")
    samples = m["converge"][0]["samples"]
    lines += ["", f"(b) scores the trainer's averaged model (EMA of the weights) and the exact "
              f"denoiser by explorer.toy.exact.diffusion_loss on {samples:,} seeded draws of "
              "(x_0, t, eps), the same for both; training seconds exclude the scoring."]
    lines += [""] + [f"- {note}" for note in m.get("notes", TUNING)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.playground", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000, help="(a) iterations")
    parser.add_argument("--batch", type=int, default=1024, help="(a) batch")
    parser.add_argument("--points", type=int, nargs="+", default=[1000, 5000],
                        help="(b) sizes of the two moons set")
    parser.add_argument("--samples", type=int, default=20_000, help="(b) draws scoring each")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: on a shared machine 2 threads ran 10-25x slower)")
    parser.add_argument("--write", action="store_true", help="put the section into BENCHMARKS.md")
    parser.add_argument("--json", type=Path, help="also save the figures as JSON")
    args = parser.parse_args(argv)
    m = measure(args)
    text = section(m)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(m, indent=1))
    if args.write:
        write_sections(REPO / "BENCHMARKS.md", text, [HEADING])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
