"""The app as a user meets it: `python app.py` started as a subprocess (cold start, memory) and
its stateless endpoints called over raw HTTP.

An HTTP call is Gradio's two-step API: POST /gradio_api/call/<api> {"data": [...]} gives an
event id, GET /gradio_api/call/<api>/<id> streams server-sent events until `complete` (or
`error`). gradio_client is not used: it polls every 50 ms and would hide the real latency.
The calls of a run share one session hash, as the events of one browser tab do: stateful
endpoints (/vdm_scrub, /vdm_step) read the gr.State an earlier call left, and the ~30 ms Gradio
spends building a new session's state is paid once (one row measures it on every call).
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from explorer.bench.report import REPO
from explorer.bench.stats import Result
from explorer.samplers.base import DEFAULT_TIMESTEP_SPACING

HOST = "127.0.0.1"


class CallError(RuntimeError):
    """An endpoint answered with an error event (the message is the app's)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


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


# ---------------------------------------------------------------- raw HTTP calls

def call(port: int, api: str, data: list, session: str | None = None,
         timeout: float = 300.0) -> tuple[float, list]:
    """One round trip: (seconds, the `complete` event's data). Raises CallError on an error.
    Calls with the same `session` share one Gradio session (its gr.State values), as the
    events of one browser tab do; without one, every call starts a new session."""
    start = time.perf_counter()
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    body = {"data": data, **({"session_hash": session} if session else {})}
    try:
        conn.request("POST", f"/gradio_api/call/{api}", body=json.dumps(body),
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise CallError(f"POST /gradio_api/call/{api}: HTTP {response.status} {body[:200]!r}")
        event_id = json.loads(body)["event_id"]
        conn.request("GET", f"/gradio_api/call/{api}/{event_id}")
        response = conn.getresponse()
        event = None
        while True:
            line = response.readline()
            if not line:
                raise CallError(f"/{api}: the stream ended without a result")
            line = line.decode().rstrip("\r\n")
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                payload = json.loads(line[5:].strip() or "null")
                if event == "error":
                    message = payload.get("error") if isinstance(payload, dict) else payload
                    raise CallError(f"/{api}: {message}")
                return time.perf_counter() - start, payload
    finally:
        conn.close()


def vdm_reset_data(dataset: str, sampler: str, steps: int, eta: float, seed: int) -> list:
    """/vdm_reset's inputs in the app's order (a raw HTTP call sends every one): a new reverse run
    of `steps` with the app's default timestep spacing."""
    return [dataset, sampler, steps, eta, seed, DEFAULT_TIMESTEP_SPACING]


@dataclass(frozen=True)
class Endpoint:
    """One HTTP row: `data(i)` is the i-th call's arguments (vary them so nothing is cached
    by accident unless the row measures a cache); `setup` = (api, data) is called once first
    in the same session (it fills the gr.State a stateful endpoint reads); `fresh` sends every
    call from a new session."""
    key: str
    api: str
    label: str
    data: Callable[[int], list]
    n_full: int
    n_quick: int
    unit: str = "ms"
    target: float | None = None
    note: str = ""
    setup: tuple[str, list] | None = None
    fresh: bool = False


def endpoints(vdm_dataset: str, vae_dataset: str,
              pairs: dict[str, tuple[int, int]]) -> list[Endpoint]:
    """The stateless endpoints; pairs[dataset] = gallery indices of inputs A and B (B + i on the
    i-th call of a path or map, so each call draws something new)."""
    t = lambda i: 1 + (37 * i + 11) % 999                              # distinct t in 1..999
    a, b = pairs[vdm_dataset]
    return [
        Endpoint("vdm_scrub", "vdm_scrub", "/vdm_scrub: the t slider's own path, a new t",
                 lambda i: [t(i)], 50, 10, "ms", 20.0, setup=(
                     "vdm_forward", [vdm_dataset, a, None, "cosine", 0, 250]), note=(
                     "stateful (x_0 and eps in the session's gr.State): mixes them, composes the "
                     "PNG and the histogram figure; the page asks for it once a move of t ends "
                     "(while t moves, the page paints x_t itself)")),
        Endpoint("vdm_curves", "vdm_curves", "/vdm_curves: schedule curves with a cursor at t",
                 lambda i: [vdm_dataset, t(i)], 50, 10,
                 note="runs beside /vdm_scrub when a move of t ends"),
        Endpoint("vdm_curves_fresh", "vdm_curves", "/vdm_curves again, a new session every call",
                 lambda i: [vdm_dataset, t(i)], 20, 5, fresh=True, note=(
                     "what a call without a session hash pays: Gradio builds a session state "
                     "from every block's config (a browser tab pays it once)")),
        Endpoint("vdm_forward", "vdm_forward", "/vdm_forward: image A and eps drawn, x_t at a t",
                 lambda i: [vdm_dataset, a, None, "cosine", i % 1000, t(i)], 50, 10, note=(
                     "the stateless scrub: resolves A, draws eps from the seed, then as "
                     "/vdm_scrub")),
        Endpoint("vdm_step", "vdm_step", "/vdm_step: one reverse step of the session's run",
                 lambda i: [], 50, 10, "ms", 25.0, setup=(
                     "vdm_reset", vdm_reset_data(vdm_dataset, "ddim", 1000, 0.0, 0)), note=(
                     "stateful, DDIM with 1000 steps: one network call, the step panel and "
                     "filmstrip PNGs")),
        Endpoint("vdm_denoise", "vdm_denoise", "/vdm_denoise: noise A to t = 500, DDIM-25 back",
                 lambda i: [vdm_dataset, a, None, 500, 25, "ddim", i], 20, 3, "s",
                 note="4 noises in one batch, 25 DDIM steps, a 4x3 PNG grid"),
        Endpoint("vdm_interpolate", "vdm_interpolate",
                 "/vdm_interpolate: A to B through DDIM-50-inverted x_T, 8 frames",
                 lambda i: [vdm_dataset, a, None, b + i, None, 8, 50], 10, 2, "s",
                 note="DDIM-50 inversion of 2 images + DDIM-50 decoding of 8 frames"),
        *vae_endpoints(vae_dataset, *pairs[vae_dataset]),
    ]


def vae_endpoints(vae_dataset: str, a: int, b: int) -> list[Endpoint]:
    return [
        Endpoint("vae_interpolate", "vae_interpolate", "/vae_interpolate: 10-frame lerp and slerp",
                 lambda i: [vae_dataset, a, None, b + i, None, 10], 50, 10, "ms", 100.0,
                 note="encode, both paths decoded, 3 PNG strips and a norm plot"),
        Endpoint("vae_project_pca", "vae_project", "/vae_project: PCA map with A, B and paths",
                 lambda i: [vae_dataset, "pca", 30, a, None, b + i, None, 10], 50, 10, "ms", 100.0,
                 note="the fitted PCA map from the cache, A / B / paths placed, the figure"),
        Endpoint("vae_project_tsne_cold", "vae_project",
                 "/vae_project: t-SNE map, first call (fits)",
                 lambda i: [vae_dataset, "tsne", 30, a, None, b, None, 10], 1, 1, "s", 5.0,
                 note="cold unless an earlier visitor fitted it (the warm-up fits PCA only)"),
        Endpoint("vae_project_tsne_cached", "vae_project", "/vae_project: t-SNE map, repeat",
                 lambda i: [vae_dataset, "tsne", 30, a, None, b + i, None, 10], 20, 5, "ms", 50.0,
                 note="cached fit; A and B placed with openTSNE's transform; the figure"),
    ]


def measure_http(port: int, vdm_dataset: str, vae_dataset: str,
                 pairs: dict[str, tuple[int, int]], quick: bool = False,
                 log: Callable[[str], None] = lambda s: None) -> list[Result]:
    """Every endpoint's round trip from one session, as the events of one browser tab (one
    untimed warm-up call first for the rows in ms)."""
    session = "bench" + os.urandom(6).hex()
    results = []
    for e in endpoints(vdm_dataset, vae_dataset, pairs):
        n = e.n_quick if quick else e.n_full
        log(f"http: {e.label} x{n}")
        key = f"http.{e.key}"
        label = f"{e.label} ({vae_dataset if e.api.startswith('vae') else vdm_dataset})"
        fresh = lambda i: "bench" + os.urandom(6).hex() if e.fresh else session
        try:
            if e.setup:
                call(port, *e.setup, session=session)
            if e.unit == "ms":                                     # the slow rows need none
                call(port, e.api, e.data(n), session=fresh(n))      # warm-up
            seconds = [call(port, e.api, e.data(i), session=fresh(i))[0] for i in range(n)]
        except (CallError, OSError) as err:
            results.append(Result.skipped(key, "http", label, e.unit, str(err)[:300], e.target))
            continue
        results.append(Result.from_seconds(key, "http", label, seconds, e.unit, e.target, e.note))
    return results
