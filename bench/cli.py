"""`python -m bench`: measure, print the table, write BENCHMARKS.md and --json FILE.

The order keeps the parts from disturbing each other: in-process compute first, then the app
started cold as a subprocess (cold start), left to finish its warm-up, then the HTTP round trips,
then the browser, then the app's peak memory.

`python -m bench --load [--users 20] [--seconds 60] [--max-requests N] [--quick]` runs
the load test instead (bench/load.py): simulated users at once over raw HTTP, errors,
latency per kind, RSS growth, Stop and session isolation; it rewrites only the "## Reliability"
section of BENCHMARKS.md. A full run rewrites only its own sections (bench.report.REPORT_SECTIONS)
and keeps that one and those the other modules write (hardening, page_run, page_eps, train_ddp).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from bench import compute, load, profiling
from bench.inputs import AppInputs
from bench.report import (REPO, REPORT_SECTIONS, Report, machine_info, to_markdown,
                          write_json, write_sections)
from bench.stats import Result
from explorer.data import DATASETS, load_gallery
from explorer.paths import checkpoint_stem

BENCHMARKS_MD = REPO / "BENCHMARKS.md"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="fewer calls (a run under a minute on an idle machine); writes "
                        "BENCHMARKS.md only with --write")
    p.add_argument("--write", action="store_true", help="with --quick: write BENCHMARKS.md too")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    p.add_argument("--no-browser", action="store_true", help="skip the Playwright part")
    p.add_argument("--no-http", action="store_true", help="skip the HTTP round trips")
    p.add_argument("--no-app", action="store_true",
                   help="do not start the app at all (no HTTP, browser, cold start)")
    p.add_argument("--dataset", choices=DATASETS, default="fashion-mnist")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads in this process (default: torch's default)")
    p.add_argument("--app-threads", type=int, default=None,
                   help="OMP_NUM_THREADS for the app subprocess (default: unset, torch decides)")
    p.add_argument("--only", metavar="KEYS",
                   help="comma-separated in-process rows to run: "
                        f"{', '.join(compute.MEASUREMENTS)}, overhead")
    p.add_argument("--profile", metavar="NAME", action="append", default=[],
                   help="pyinstrument over one in-process row (a key of --only), py-spy on the "
                        "app over one HTTP row (http:KEY, e.g. http:vae_project_tsne_cached), "
                        "Chrome's JavaScript profiler over browser:scrub or browser:step, or "
                        "`missed`: every row that missed its target; printed and added to the "
                        "report; may repeat")
    p.add_argument("--profile-out", metavar="FILE", help="also save the profiles as text")
    p.add_argument("--output", metavar="FILE", default=str(BENCHMARKS_MD),
                   help="where the markdown goes (default: BENCHMARKS.md at the repository root)")
    g = p.add_argument_group("load test (--load: many users at once, see bench/load.py)")
    g.add_argument("--load", action="store_true",
                   help="run only the load test: simulated users with mixed interactions over "
                        "raw HTTP; replaces the Reliability section of --output (with --quick "
                        "only with --write)")
    g.add_argument("--users", type=int, default=None,
                   help=f"simulated users at once (default {load.USERS}; {load.QUICK_USERS} "
                        "with --quick)")
    g.add_argument("--seconds", type=float, default=None,
                   help=f"no call starts after this (default {load.SECONDS:g}; "
                        f"{load.QUICK_SECONDS:g} with --quick)")
    g.add_argument("--max-requests", type=int, default=None,
                   help="hard cap on calls in all (default: 10 per user per second)")
    g.add_argument("--seed", type=int, default=0, help="seed of the users' interaction mix")
    args = p.parse_args(argv)
    args.argv = list(argv if argv is not None else sys.argv[1:])
    return args


def gallery_pair(dataset: str) -> tuple[int, int]:
    """Gallery indices of A (0) and B (the first image of another class), as the app picks."""
    labels = load_gallery(dataset).labels
    others = np.flatnonzero(labels != labels[0])
    return 0, int(others[0]) if len(others) else 1


def first_with(name: str, dataset: str) -> str | None:
    for d in [dataset, *(d for d in DATASETS if d != dataset)]:
        if checkpoint_stem(d, name).with_suffix(".json").is_file():
            return d
    return None


def run_app_parts(args, results: list[Result], notes: list[str], profiles: dict[str, str]) -> None:
    from bench import server
    log("app: starting `python app.py` (cold start)")
    try:
        app = server.App.start(args.app_threads)
    except Exception as err:                          # the report says why, the run goes on
        notes.append(f"the app did not start, so no HTTP, browser or cold-start rows: {err}")
        return
    try:
        log(f"app: first 200 after {app.first_200:.2f} s; waiting for its warm-up to finish")
        app.wait_idle(60 if args.quick else 120)
        vdm_ds, vae_ds = first_with("vdm", args.dataset), first_with("vae", args.dataset)
        if not args.no_http and vdm_ds and vae_ds:
            pairs = {d: gallery_pair(d) for d in {vdm_ds, vae_ds}}
            if vae_ds != args.dataset:
                notes.append(f"HTTP: the /vae_* endpoints use {vae_ds}: {args.dataset} has no VAE")
            results += server.measure_http(app.port, vdm_ds, vae_ds, pairs, args.quick, log,
                                           AppInputs.fetch(app.port))
            names = [p[5:] for p in args.profile if p.startswith("http:")]
            if "missed" in args.profile:
                names += [r.key[5:] for r in results
                          if r.verdict == "missed" and r.key.startswith("http.")]
            for name in dict.fromkeys(names):
                endpoint = {e.key: e for e in server.endpoints(vdm_ds, vae_ds, pairs)}.get(name)
                if endpoint is None:
                    notes.append(f"--profile http:{name}: no such endpoint row")
                    continue
                log(f"profile: py-spy on the app over {name}")
                session = f"bench-profile-{name}"
                inputs = AppInputs.fetch(app.port)
                run = server.start_row(app.port, inputs, endpoint, session)
                work = lambda: [server.send_row(app.port, inputs, endpoint, i,
                                                f"{session}-{i}" if endpoint.fresh else session,
                                                run)
                                for i in range(30 if endpoint.unit == "ms" else 2)]
                profiles[f"http:{name} (py-spy on the app)"] = profiling.pyspy_text(
                    app.process.pid, work)
        if not args.no_browser:
            from bench import browser
            wanted = {p.split(":", 1)[1] if ":" in p else "scrub"
                      for p in args.profile if p.startswith("browser")}
            wanted |= {"missed"} & set(args.profile)
            try:
                rows, found = browser.measure_browser(app.url, args.quick,
                                                      lambda: app.wait_idle(30, 0.5), log, wanted)
                results += rows
                profiles.update(found)
            except Exception as err:
                notes.append(f"the browser part failed: {type(err).__name__}: {err}")
        results += server.startup_results(app, app.peak_rss())
        notes.extend(app.notes)
    finally:
        app.stop()


def compute_part(args, ctx: compute.Context, notes: list[str],
                 profiles: dict[str, str]) -> list[Result]:
    """The in-process rows, then the pyinstrument profiles asked for (or of every missed row
    with --profile missed). Run in a worker thread on models loaded in the main thread, as the
    app loads its models at import and Gradio runs handlers in worker threads. (Which thread
    touches torch first matters here: measured on this machine, a worker then computes on one
    core, while a thread with OpenMP's team of two spins and stalls whenever another process
    holds the other core.)"""
    if args.threads:
        torch.set_num_threads(args.threads)
    only = set(args.only.split(",")) if args.only else None
    cpu, wall = time.process_time(), time.perf_counter()
    results = compute.run_all(ctx, args.quick, only, log)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    notes.append(f"the in-process rows ran in a worker thread (as Gradio runs handlers) and used "
                 f"{cpu / wall:.2f} CPU-seconds per second over {wall:.0f} s")
    names = [p for p in args.profile if p != "missed" and not p.startswith(("http:", "browser"))]
    if "missed" in args.profile:
        names += [r.key.split(".", 1)[1] if r.section == "compute" else r.section
                  for r in results if r.verdict == "missed"]
    for name in dict.fromkeys(names):
        if name == "overhead":
            work = lambda: compute.overhead(ctx, 2)
        elif name in compute.MEASUREMENTS:
            m = compute.MEASUREMENTS[name]
            work = lambda: m.run(ctx, n=max(1, min(m.n_quick, 20)))
        else:
            notes.append(f"--profile {name}: not an in-process row "
                         f"({', '.join(compute.MEASUREMENTS)}, overhead)")
            continue
        log(f"profile: pyinstrument over {name}")
        profiles[f"{name} (pyinstrument, in-process)"] = profiling.pyinstrument_text(work)
    return results


def run(args: argparse.Namespace) -> Report:
    if args.threads:
        torch.set_num_threads(args.threads)
    log("machine: reading the load (1 s)")
    machine = machine_info(torch.get_num_threads(), args.app_threads)
    options = {"argv": args.argv, "quick": args.quick, "dataset": args.dataset}
    ctx = compute.Context.load(args.dataset)                  # in the main thread, as the app
    notes, profiles = list(ctx.notes), {}
    with ThreadPoolExecutor(1, thread_name_prefix="bench-compute") as pool:
        results = pool.submit(compute_part, args, ctx, notes, profiles).result()
    if not args.no_app:
        run_app_parts(args, results, notes, profiles)
    if machine["busy"]:
        notes.insert(0, "Other processes were loading the CPU during this run (see the load "
                        "line): the figures are slower and noisier than on an idle machine.")
    return Report(machine, options, results, notes, profiles)


def main_load(args: argparse.Namespace) -> int:
    """--load: run the load test, print its section, put it into --output, --json FILE."""
    users = args.users or (load.QUICK_USERS if args.quick else load.USERS)
    seconds = args.seconds or (load.QUICK_SECONDS if args.quick else load.SECONDS)
    cap = args.max_requests or int(10 * users * seconds)
    options = {"argv": args.argv, "quick": args.quick, "dataset": args.dataset, "users": users,
               "seconds": seconds, "max_requests": cap, "seed": args.seed}
    report = load.run_load(users, seconds, cap, args.dataset, args.seed, options, log)
    text = load.section(report)
    print(text)
    if not args.quick or args.write:
        out = write_sections(args.output, text, [load.HEADING])
        log(f"wrote the reliability section into {out}")
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n")
        log(f"wrote {path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.load:
        return main_load(args)
    report = run(args)
    text = to_markdown(report, "Benchmarks" + (" (quick run)" if args.quick else ""))
    print(text)
    if not args.quick or args.write:
        write_sections(args.output, text, REPORT_SECTIONS)   # the other modules' sections stay
        log(f"wrote {args.output}")
    if args.json:
        log(f"wrote {write_json(report, args.json)}")
    if args.profile_out and report.profiles:
        Path(args.profile_out).write_text("\n\n".join(f"== {k}\n{v}" for k, v in
                                                      report.profiles.items()) + "\n")
        log(f"wrote {args.profile_out}")
    return 0
