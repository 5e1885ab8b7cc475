"""`python -m bench.hardening`: the app refuses what is not its own and bounds what grows,
measured on `python app.py` (the shipped models) and written as the "## Hardening" section of
BENCHMARKS.md (the rest of the file is kept):

- the bad-input matrix (bench/badinputs.py) over raw HTTP and gradio_client: generic errors and
  wrong acceptances (target 0 each);
- pictures given by a path Gradio did not receive: opened (target 0);
- resident memory after 50 distinct map requests (t-SNE and PCA maps of both models, both
  datasets, every perplexity) over the warm app (target <= +100 MB), and the fits that cost;
- the app's output folder and Gradio's cache after all of it (files and bytes).
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import os
import tempfile
import time
from pathlib import Path

from .badinputs import counts, failures, path_probes, run_matrix
from .client import gradio_client
from .inputs import AppInputs
from .report import git_commit, write_sections
from .server import App, proc_status

REPO = Path(__file__).resolve().parent.parent
HEADING = "## Hardening"
MAPS = 50


def folder_size(path: Path, since: float = 0.0) -> tuple[int, int]:
    """(files, bytes) under `path`, of the files modified at or after `since` (a time.time())."""
    files = size = 0
    for root, _, names in os.walk(path):
        for name in names:
            try:
                st = os.stat(os.path.join(root, name))
            except OSError:
                continue
            if st.st_mtime >= since:
                size += st.st_size
                files += 1
    return files, size


def gradio_cache() -> Path:
    """Gradio's upload folder and cache ($GRADIO_TEMP_DIR, else <tmp>/gradio)."""
    return Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio")


def map_requests(n: int):
    """n distinct map requests: (api, data) for every model, dataset, layer and perplexity."""
    from ui.maps import PERPLEXITY
    low, high, step = PERPLEXITY
    perplexities = range(low, high + 1, step)
    for dataset, p in itertools.product(("fashion-mnist", "mnist"), perplexities):
        yield "vae_project", [dataset, "tsne", p, 0, None, 1, None, 8]
        for layer in (1, 2):
            yield "hvae_project", [dataset, layer, "tsne", p, 0, None, 1, None, 8]


def measure(maps: int = MAPS) -> dict:
    began = time.time()
    app = App.start()
    try:
        app.wait_idle(timeout=120)
        client = gradio_client(app.url)
        inputs = AppInputs.fetch(app.port)
        out = {"commit": git_commit(), "when": datetime.datetime.now(datetime.timezone.utc)
               .isoformat(timespec="seconds")}
        with tempfile.TemporaryDirectory() as tmp:
            for transport in ("raw HTTP", "gradio_client"):
                results = run_matrix(app.url, client, inputs, Path(tmp), transport)
                out[transport] = dict(counts(results))
                out[f"{transport} failures"] = failures(results)[:10]
            probes = path_probes(app.url, Path(tmp))
            out["probes"] = (len(probes), sum(not alike for _, _, alike, _ in probes))
        app.wait_idle(timeout=120)
        rss0 = proc_status(app.process.pid, "VmRSS")
        started = time.perf_counter()
        done = 0
        for api, data in itertools.islice(map_requests(maps), maps):
            client.predict(*data, api_name=f"/{api}")
            done += 1
        out["maps"] = (done, time.perf_counter() - started, rss0,
                       proc_status(app.process.pid, "VmRSS"))
        out["output folder"] = folder_size(Path(tempfile.gettempdir()) /
                                           f"latent-explorer-{app.process.pid}")
        out["gradio cache"] = folder_size(gradio_cache(), since=began)    # this app's files
        return out
    finally:
        app.stop()


def section(m: dict) -> str:
    raw, client = m["raw HTTP"], m["gradio_client"]
    n_probe, opened = m["probes"]
    done, seconds, rss0, rss1 = m["maps"]
    growth = (rss1 - rss0) / 1.048576                                  # MiB -> MB

    def row(what, value, target="—", met="—"):
        return f"| {what} | {value} | {target} | {met} |"

    def matrix(c):
        return (f"{sum(c.values())} calls: {c.get('refused, named', 0)} refused naming the "
                f"parameter, {c.get('accepted', 0)} valid values accepted, "
                f"{c.get('generic', 0)} generic errors, {c.get('accepted wrongly', 0)} wrong "
                "acceptances")
    bad = lambda c: c.get("generic", 0) + c.get("accepted wrongly", 0)        # noqa: E731
    lines = [
        f"{HEADING}: bad values, files nobody uploaded, bounded caches", "",
        f"Written by `python -m bench.hardening` on {m['when']} (commit {m['commit']}); do not "
        "edit by hand. The app is `python app.py` with the shipped models; the matrix is "
        "bench/badinputs.py (every public endpoint read from the app, every input, None, "
        "'abc', NaN, +inf, -inf, -1, 0, 1e9, 2.5, an unknown name; gradio_client cannot send "
        "NaN or infinities).", "",
        "| measurement | value | target | met? |", "|---|---|---|---|",
        row("bad-input matrix, raw HTTP (POST /gradio_api/call/...)", matrix(raw),
            "0 generic, 0 wrong", "met" if bad(raw) == 0 else "missed"),
        row("bad-input matrix, gradio_client", matrix(client),
            "0 generic, 0 wrong", "met" if bad(client) == 0 else "missed"),
        row("pictures given by a path Gradio did not receive (existing, missing, folder, "
            "/etc/passwd; 3 endpoints and a drawing's layer): opened or told apart",
            f"{opened} of {n_probe}", "0", "met" if opened == 0 else "missed"),
        row(f"app RSS after {done} distinct map requests (t-SNE, both models, both datasets, "
            f"every perplexity; {seconds:.0f} s of fits) over the warm app",
            f"{rss0:.0f} MiB → {rss1:.0f} MiB ({growth:+.0f} MB)", "≤ +100 MB",
            "met" if growth <= 100 else "missed"),
        row("the app's output folder after all of it", "{} files, {:.1f} MB".format(
            m["output folder"][0], m["output folder"][1] / 1e6), "≤ 64 MiB (pruned)",
            "met" if m["output folder"][1] <= 64 * 2**20 else "missed"),
        row("Gradio's cache: what this run added (uploads, copies of returned files; pruned of "
            "files older than 3 h every 30 min)", "{} files, {:.1f} MB".format(
                m["gradio cache"][0], m["gradio cache"][1] / 1e6)),
    ]
    for transport in ("raw HTTP", "gradio_client"):
        for failure in m.get(f"{transport} failures") or []:
            lines.append(f"- {transport}: {failure}")
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--maps", type=int, default=MAPS)
    p.add_argument("--output", default=str(REPO / "BENCHMARKS.md"))
    args = p.parse_args()
    m = measure(args.maps)
    text = section(m)
    print(text)
    write_sections(args.output, text, [HEADING])


if __name__ == "__main__":
    main()
