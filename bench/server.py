"""The app as a user meets it: `python app.py` started as a subprocess (cold start, memory) and
its endpoints called over raw HTTP (bench/client.py), each with the inputs the app's /config
says it takes (bench/inputs.py).

The calls of a run share one session hash, as the events of one browser tab do: stateful
endpoints (/vdm_step) read the gr.State an earlier call left, and the ~30 ms Gradio spends
building a new session's state is paid once (one row measures it on every call). The page's
Step is a server function of the run view (bench/page.py), measured here beside the API's.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from bench.client import HOST, CallError, call, free_port, view_call
from bench.inputs import AppInputs
from bench.page import RUN_VIEW, PageRun, message_in
from bench.report import REPO
from bench.stats import Result

# what load.py, cli.py and the tests take from here, the client's side re-exported
__all__ = ["HOST", "CallError", "call", "free_port", "proc_status", "cpu_seconds", "App",
           "startup_results", "Endpoint", "endpoints", "send_row", "measure_http"]


def proc_status(pid: int, field_name: str) -> float | None:
    """A `VmRSS` / `VmHWM`-style field of /proc/<pid>/status in MiB (None when unreadable)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process so far, in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    ticks = sum(int(v) for v in stat.rsplit(")", 1)[1].split()[11:13])
    return ticks / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- the app subprocess

@dataclass
class App:
    """`python app.py --port P` from the repository root; timings are seconds from Popen."""
    process: subprocess.Popen
    port: int
    log_path: Path
    started: float
    first_200: float | None = None
    rss_at_200: float | None = None
    idle_after: float | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    @classmethod
    def start(cls, threads: int | None = None, timeout: float = 120.0) -> "App":
        """Start the app and wait for the first HTTP 200 on `/` (that moment is the cold start)."""
        app_py = REPO / "app.py"
        if not app_py.is_file():
            raise FileNotFoundError(f"{app_py} is missing: the app's rows need the repository")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if threads:
            env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        port = free_port()
        log = Path(tempfile.mkstemp(prefix="bench-app-", suffix=".log")[1])
        with log.open("wb") as out:
            started = time.perf_counter()
            process = subprocess.Popen([sys.executable, str(app_py), "--port", str(port)],
                                       cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        app = cls(process, port, log, started)
        try:
            app._wait_200(timeout)
        except Exception:
            app.stop()
            raise
        return app

    def _wait_200(self, timeout: float) -> None:
        deadline = self.started + timeout
        while time.perf_counter() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the app exited with {self.process.returncode}:\n"
                                   f"{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
                conn.request("GET", "/")
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    self.first_200 = time.perf_counter() - self.started
                    self.rss_at_200 = proc_status(self.process.pid, "VmRSS")
                    return
            except OSError:
                pass
            time.sleep(0.02)
        raise TimeoutError(f"no HTTP 200 from the app within {timeout:.0f} s:\n{self.log_tail()}")

    def wait_idle(self, timeout: float = 90.0, window: float = 1.0, busy: float = 0.05) -> bool:
        """Wait until the app uses under `busy` of a core over `window` seconds; False when it
        is still busy after `timeout`. The first wait after the start times its warm-up."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            before = cpu_seconds(self.process.pid)
            time.sleep(window)
            if cpu_seconds(self.process.pid) - before < busy * window:
                if self.idle_after is None:                     # the first wait: the warm-up
                    self.idle_after = time.perf_counter() - self.started - window
                return True
        self.notes.append(f"the app was still busy {timeout:.0f} s after its first 200")
        return False

    def peak_rss(self) -> float | None:
        return proc_status(self.process.pid, "VmHWM")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.log_path.unlink(missing_ok=True)


def startup_results(app: App, peak_mib: float | None) -> list[Result]:
    section = "startup"
    out = [Result("startup.cold_start", section, "cold start: `python app.py` to the first HTTP "
                  "200 on /", "s", app.first_200, None, 1, 10.0,
                  "one start; includes `import gradio`, loading every model and building the page"),
           Result("startup.idle", section, "warm-up done (the app's CPU idle) after start", "s",
                  app.idle_after, None, 1 if app.idle_after else 0, None,
                  "app.py's warm-up thread fills the gallery latents and PCA maps after the 200"),
           Result("startup.rss", section, "resident memory at the first 200", "MiB",
                  app.rss_at_200, None, 1, None, "VmRSS")]
    out.append(Result("startup.peak", section, "peak resident memory over the whole run", "MiB",
                      peak_mib, None, 1, None,
                      "VmHWM of the app process after every HTTP and browser measurement"))
    return out


# ---------------------------------------------------------------- the HTTP rows

API, VIEW = "api", "view"          # a Gradio event by api_name, or a server function of the run view


@dataclass(frozen=True)
class Endpoint:
    """One HTTP row. `data(i)` is the i-th call's input values keyed by elem_id (the rest take
    the app's defaults: bench/inputs.py); vary them so nothing is cached by accident unless the
    row measures a cache. `setup` = (api, values) is called once first in the same session (it
    fills the gr.State a stateful endpoint reads, or starts the run a server function moves);
    `fresh` sends every call from a new session; `via` VIEW calls the run view's server
    function `api` about the run the setup started."""
    key: str
    api: str
    label: str
    data: Callable[[int], dict]
    n_full: int
    n_quick: int
    unit: str = "ms"
    target: float | None = None
    note: str = ""
    setup: tuple[str, dict] | None = None
    fresh: bool = False
    via: str = API


def endpoints(vdm_dataset: str, vae_dataset: str,
              pairs: dict[str, tuple[int, int]]) -> list[Endpoint]:
    """The rows; pairs[dataset] = gallery indices of inputs A and B (B + i on the i-th call of a
    path or map, so each call draws something new)."""
    t = lambda i: 1 + (37 * i + 11) % 999                              # distinct t in 1..999
    a, b = pairs[vdm_dataset]
    A = {"dataset": vdm_dataset, "a-index": a, "a": None}
    ddim_1000 = {"dataset": vdm_dataset, "vdm-sampler": "ddim", "vdm-steps": 1000, "vdm-eta": 0.0,
                 "vdm-seed": 0}
    return [
        Endpoint("vdm_scrub_view", "vdm_scrub_view",
                 "/vdm_scrub_view: a new image or seed for the page's scrub (x_0, eps, tables)",
                 lambda i: {**A, "vdm-schedule": "cosine", "vdm-noise-seed": i}, 50, 10, note=(
                     "what the page asks once per new image A, schedule or seed: x_0 and eps as "
                     "float32, the schedules' tables (cached per dataset); moving t then costs "
                     "no request at all (the page mixes x_t itself)")),
        Endpoint("vdm_curves", "vdm_curves", "/vdm_curves: schedule curves with a cursor at t",
                 lambda i: {"dataset": vdm_dataset, "vdm-t": t(i)}, 50, 10,
                 note="the public API's curves (the page draws its own)"),
        Endpoint("vdm_curves_fresh", "vdm_curves", "/vdm_curves again, a new session every call",
                 lambda i: {"dataset": vdm_dataset, "vdm-t": t(i)}, 20, 5, fresh=True, note=(
                     "what a call without a session hash pays: Gradio builds a session state "
                     "from every block's config (a browser tab pays it once)")),
        Endpoint("vdm_forward", "vdm_forward", "/vdm_forward: image A and eps drawn, x_t at a t",
                 lambda i: {**A, "vdm-schedule": "cosine", "vdm-noise-seed": i % 1000,
                            "vdm-t": t(i)}, 50, 10, note=(
                     "the public API's scrub: resolves A, draws eps from the seed, mixes x_t, "
                     "composes the PNG and the histogram figure")),
        Endpoint("vdm_reset_view", "vdm_reset_view", "/vdm_reset_view: a new run for the page "
                 "(DDIM, 1000 steps)", lambda i: {**ddim_1000, "vdm-seed": i}, 20, 5, note=(
                     "the page's Reset: x_T drawn, the run's head (timesteps, log-SNR curve, x_T) "
                     "as compact arrays")),
        Endpoint("view_step", "step", "the page's Step: the run view's `step` server function",
                 lambda i: {}, 50, 10, "ms", 25.0, setup=("vdm_reset_view", ddim_1000),
                 via=VIEW, note=(
                     "one POST /gradio_api/component_server/, DDIM with 1000 steps: one network "
                     "call, the step's three 28x28 pictures as uint8 (~3 KB)")),
        Endpoint("vdm_step", "vdm_step", "/vdm_step: one reverse step of the session's run",
                 lambda i: {}, 50, 10, "ms", 25.0, setup=("vdm_reset", ddim_1000), note=(
                     "the public API, DDIM with 1000 steps: one network call, the step panel "
                     "and filmstrip PNGs")),
        Endpoint("vdm_denoise", "vdm_denoise", "/vdm_denoise: noise A to t = 500, DDIM-25 back",
                 lambda i: {**A, "vdm-nd-t": 500, "vdm-nd-steps": 25, "vdm-nd-sampler": "ddim",
                            "vdm-nd-seed": i}, 20, 3, "s",
                 note="4 noises in one batch, 25 DDIM steps, a 4x3 PNG grid"),
        Endpoint("vdm_interpolate", "vdm_interpolate",
                 "/vdm_interpolate: A to B through DDIM-50-inverted x_T, 8 frames",
                 lambda i: {**A, "b-index": b + i, "b": None, "vdm-frames": 8,
                            "vdm-itp-steps": 50}, 10, 2, "s",
                 note="DDIM-50 inversion of 2 images + DDIM-50 decoding of 8 frames"),
        *vae_endpoints(vae_dataset, *pairs[vae_dataset]),
    ]


def vae_endpoints(vae_dataset: str, a: int, b: int) -> list[Endpoint]:
    AB = lambda i: {"dataset": vae_dataset, "a-index": a, "a": None, "b-index": b + i, "b": None,
                    "vae-frames": 10}
    return [
        Endpoint("vae_interpolate", "vae_interpolate", "/vae_interpolate: 10-frame lerp and slerp",
                 AB, 50, 10, "ms", 100.0,
                 note="encode, both paths decoded, 3 PNG strips and a norm plot"),
        Endpoint("vae_project_pca", "vae_project", "/vae_project: PCA map with A, B and paths",
                 lambda i: {**AB(i), "vae-method": "pca", "vae-perplexity": 30}, 50, 10, "ms",
                 100.0, note="the fitted PCA map from the cache, A / B / paths placed, the figure"),
        Endpoint("vae_project_tsne_cold", "vae_project",
                 "/vae_project: t-SNE map, first call (fits)",
                 lambda i: {**AB(0), "vae-method": "tsne", "vae-perplexity": 30}, 1, 1, "s", 5.0,
                 note="cold unless an earlier visitor fitted it (the warm-up fits PCA only)"),
        Endpoint("vae_project_tsne_cached", "vae_project", "/vae_project: t-SNE map, repeat",
                 lambda i: {**AB(i), "vae-method": "tsne", "vae-perplexity": 30}, 20, 5, "ms",
                 50.0, note="cached fit; A and B placed with openTSNE's transform; the figure"),
    ]


def send_row(port: int, inputs: AppInputs, e: Endpoint, i: int, session: str,
             run: PageRun | None = None) -> tuple[float, object]:
    """The i-th call of row `e`: an event with the inputs /config lists, or (via VIEW) a server
    function of the run view about `run`, which takes in the reply."""
    if e.via == VIEW:
        seconds, reply = view_call(port, inputs.view(RUN_VIEW).component_id, e.api,
                                   run.asked(**e.data(i)), session)
        run.fold(reply)
        return seconds, reply
    return call(port, e.api, inputs.data(e.api, e.data(i)), session=session)


def start_row(port: int, inputs: AppInputs, e: Endpoint, session: str) -> PageRun:
    """Call the row's setup in `session`; the run it started, as a page holds it."""
    run = PageRun()
    if e.setup:
        api, values = e.setup
        run.fold(message_in(call(port, api, inputs.data(api, values), session=session)[1]))
    return run


def measure_http(port: int, vdm_dataset: str, vae_dataset: str,
                 pairs: dict[str, tuple[int, int]], quick: bool = False,
                 log: Callable[[str], None] = lambda s: None,
                 inputs: AppInputs | None = None) -> list[Result]:
    """Every row's round trip from one session, as the events of one browser tab (one untimed
    warm-up call first for the rows in ms)."""
    inputs = inputs or AppInputs.fetch(port)
    session = "bench" + os.urandom(6).hex()
    results = []
    for e in endpoints(vdm_dataset, vae_dataset, pairs):
        n = e.n_quick if quick else e.n_full
        log(f"http: {e.label} x{n}")
        key = f"http.{e.key}"
        label = f"{e.label} ({vae_dataset if e.api.startswith('vae') else vdm_dataset})"
        fresh = lambda i: "bench" + os.urandom(6).hex() if e.fresh else session
        try:
            run = start_row(port, inputs, e, session)
            if e.unit == "ms":                                     # the slow rows need none
                send_row(port, inputs, e, n, fresh(n), run)        # warm-up
            seconds = [send_row(port, inputs, e, i, fresh(i), run)[0] for i in range(n)]
        except (CallError, OSError, KeyError) as err:
            results.append(Result.skipped(key, "http", label, e.unit, str(err)[:300], e.target))
            continue
        results.append(Result.from_seconds(key, "http", label, seconds, e.unit, e.target, e.note))
    return results
