"""One visitor's 2-D playground: its data, its model and its training, which runs in a thread of
its own while the page follows it (ui/playground/live.py).

A `Lab` holds small things only (a few thousand points, an MLP of ~35k weights, the loss curve)
and lives in the session's gr.State and in a bounded registry its page finds it in by key. The
backend does the work: explorer.toy (data sets, the model, its trainer, the exact denoiser);
nothing here re-derives the math.

Training is bounded so a shared Space stays responsive: at most TRAINING_AT_ONCE labs train at a
time (the others wait their turn, and say so), a Train press trains for at most TRAIN_LIMIT_S,
and every lab keeps its own model (no click changes another visitor's).
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from explorer.toy import data as toy_data
from explorer.toy.exact import ExactDenoiser, diffusion_loss
from explorer.toy.model import ToyConfig, ToyVDM
from explorer.toy.train import TrainConfig, Trainer, sample

TRAIN_LIMIT_S = 120.0            # one Train press trains at most this long
TRAINING_AT_ONCE = 2             # labs training at the same time (2 cores); the rest wait
NEWS_S = 0.12                    # how often the page hears of the training (loss points)
CLOUD_S = 0.3                    # how often the sample cloud is redrawn while training
HISTORY_EVERY = 10               # iterations averaged into one point of the loss curve
CLOUD = 512                      # points in the sample cloud
CLOUD_STEPS = 25                 # DDIM steps of the sample cloud (the same x_T every time)
FLOOR_SAMPLES = 20_000           # Monte Carlo draws of the exact denoiser's loss
FLOOR_EVERY_S = 3.0              # a learned schedule's floor moves with it: re-estimated this often
FRAMES_KEPT = 60                 # sample clouds kept for the training GIF
KEPT = 128                       # labs a page may find by key (least recently used go)
TERMS = ("reconstruction", "prior", "diffusion", "total")

CORES = max(1, torch.get_num_threads())   # torch's threads at start: the cores it may use

_TRAINERS = threading.BoundedSemaphore(TRAINING_AT_ONCE)
_IDS = itertools.count(1)
_labs: OrderedDict[str, Lab] = OrderedDict()
_guard = threading.Lock()


@dataclass(frozen=True)
class Settings:
    """What the page's controls set: the data, the model and how it trains."""
    data: str = "moons"              # one of explorer.toy.data.SETS, or "drawn"
    size: int = 1000                 # points of a named set
    seed: int = 0                    # of the data, the model's initial weights and its batches
    schedule: str = "linear"         # linear | cosine | learned
    width: int = 128                 # MLP width
    depth: int = 3                   # MLP hidden layers
    lr: float = 2e-3                 # Adam's learning rate
    steps: int = 2000                # iterations a Train press aims for (in all)
    batch: int = 1024

    def data_key(self) -> tuple:
        return (self.data, self.size, self.seed)

    def model_key(self) -> tuple:
        return (self.schedule, self.width, self.depth, self.seed)


STATUS_WORDS = {"untrained": "not trained yet: press Train",
                "waiting": "waiting for a free trainer (others are training)",
                "training": "training", "paused": "paused: Train goes on",
                "stopped": "stopped", "done": "done: every iteration asked for",
                "limit": f"stopped after {TRAIN_LIMIT_S:.0f} s (the limit of one Train press)",
                "failed": "training failed"}


@dataclass
class Lab:
    settings: Settings
    points: np.ndarray                                  # (N, 2) float32, the training set
    model: ToyVDM
    trainer: Trainer
    drawn: np.ndarray | None = None                     # the points a visitor drew, if any
    id: int = field(default_factory=lambda: next(_IDS))
    key: str = field(default_factory=lambda: secrets.token_urlsafe(12), repr=False)
    status: str = "untrained"
    error: str = ""
    history: list = field(default_factory=list)         # (iteration, seconds, *TERMS) per point
    seconds: float = 0.0                                 # training time so far
    cloud: np.ndarray | None = None                      # (CLOUD, 2) latest samples
    cloud_at: int = -1                                   # the iteration they were drawn at
    frames: list = field(default_factory=list)           # (iteration, cloud) for the GIF
    floor: float | None = None                           # the exact denoiser's diffusion term
    floor_at: float = 0.0
    seq: int = 0                                         # bumped at every change the page shows
    thread: threading.Thread | None = field(default=None, repr=False)
    halt: threading.Event = field(default_factory=threading.Event, repr=False)
    halt_as: str = "paused"
    _waiters: list = field(default_factory=list, repr=False)
    _waiters_guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __deepcopy__(self, memo):           # gr.State copies its value: a lab is per session
        return self

    # ---- who waits for a change (live.follow) ----
    def on_change(self, loop, event) -> None:
        with self._waiters_guard:
            self._waiters.append((loop, event))

    def notify(self) -> None:
        self.seq += 1
        with self._waiters_guard:
            waiters, self._waiters = self._waiters, []
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)

    @property
    def training(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    @property
    def iteration(self) -> int:
        return self.trainer.iteration

    @property
    def net(self) -> ToyVDM:
        """The model to sample, show and save: the moving average of the trained weights
        (explorer.toy.train.Trainer.averaged)."""
        return self.trainer.averaged


# ---------------------------------------------------------------- making and finding labs

def remember(lab: Lab) -> Lab:
    with _guard:
        _labs[lab.key] = lab
        _labs.move_to_end(lab.key)
        while len(_labs) > KEPT:
            _, old = _labs.popitem(last=False)
            put_away(old)
    return lab


def put_away(lab: Lab) -> None:
    """A lab no page has moved for long (the registry keeps KEPT): its training stops and its
    bulk goes (the GIF's frames, Adam's moments), while the session's state may still hold it
    (the API can go on with it: Adam starts its moments again)."""
    lab.halt_as = "stopped"
    lab.halt.set()
    lab.frames = []
    if not lab.training:                 # (a training thread ends at its next iteration)
        lab.trainer.optimizer.state.clear()


def find(key) -> Lab:
    with _guard:
        lab = _labs.get(key) if isinstance(key, str) else None
        if lab is not None:
            _labs.move_to_end(key)
    if lab is None:
        raise ValueError("this playground is not on the server any more: press Reset")
    return lab


def points_for(settings: Settings, drawn: np.ndarray | None) -> np.ndarray:
    """The training set the settings name: a named set, or the drawn points."""
    if settings.data == "drawn":
        if drawn is None:
            raise ValueError("no points drawn yet: pick 'draw' and click on the data plot "
                             "(at least 2 points)")
        return toy_data.check_points(drawn)
    return toy_data.make_set(settings.data, settings.size, settings.seed)


def check_settings(settings: Settings) -> Settings:
    """The settings, or a ValueError naming the one that cannot be used."""
    choices = (*toy_data.SETS, "drawn")
    if settings.data not in choices:
        raise ValueError(f"unknown data {settings.data!r}; valid: {', '.join(choices)}")
    ToyConfig(schedule=settings.schedule, width=settings.width, depth=settings.depth)
    TrainConfig(lr=settings.lr, batch=settings.batch, steps=settings.steps, seed=settings.seed)
    return settings


def new_lab(settings: Settings, drawn: np.ndarray | None = None) -> Lab:
    """A lab with an untrained model on the settings' data."""
    settings = check_settings(settings)
    points = points_for(settings, drawn)
    torch.manual_seed(settings.seed)
    model = ToyVDM(ToyConfig(schedule=settings.schedule, width=settings.width,
                             depth=settings.depth))
    trainer = Trainer(model, points, _train_config(settings))
    return remember(Lab(settings=settings, points=points, model=model, trainer=trainer,
                        drawn=drawn))


def _train_config(settings: Settings) -> TrainConfig:
    return TrainConfig(lr=settings.lr, batch=settings.batch, steps=settings.steps,
                       seed=settings.seed)


def reconfigure(lab: Lab | None, settings: Settings, drawn: np.ndarray | None = None) -> Lab:
    """The lab for new settings: the same lab (its model kept) when only how it trains changed
    (learning rate, iterations, batch), else a new one (new data or a new model)."""
    if drawn is None and lab is not None:
        drawn = lab.drawn
    if lab is None or lab.settings.data_key() != settings.data_key() or \
            lab.settings.model_key() != settings.model_key() or \
            (settings.data == "drawn" and not _same(lab.drawn, drawn)):
        if lab is not None:
            halt(lab, "stopped")
        return new_lab(settings, drawn)
    check_settings(settings)
    lab.settings = settings
    config = _train_config(settings)
    lab.trainer.config = config                     # the next iterations' batch and target
    for group in lab.trainer.optimizer.param_groups:
        group["lr"] = config.lr
    lab.notify()
    return remember(lab)


def _same(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    return a is b or (a is not None and b is not None and np.array_equal(a, b))


def digest(points: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(points, dtype="<f4").tobytes()).hexdigest()[:12]


# ---------------------------------------------------------------- training in a thread

def train(lab: Lab) -> Lab:
    """Train (or go on training) in the lab's own thread, up to `settings.steps` iterations in
    all; returns at once. A lab already training is left as it is."""
    if lab.training:
        return lab
    if lab.iteration >= lab.settings.steps:
        raise ValueError(f"the model has taken its {lab.settings.steps} iterations: raise "
                         "'iterations' to train on, or Reset")
    lab.halt.clear()
    lab.halt_as = "paused"
    lab.status, lab.error = "waiting", ""
    lab.thread = threading.Thread(target=_train, args=(lab,), daemon=True,
                                  name=f"playground-{lab.id}")
    lab.thread.start()
    lab.notify()
    return lab


def halt(lab: Lab, how: str = "paused", wait_s: float = 5.0) -> Lab:
    """Pause ("paused": Train goes on from here) or stop ("stopped") the lab's training, and
    wait until its thread has let go of the model."""
    lab.halt_as = how
    lab.halt.set()
    thread = lab.thread
    if thread is not None and thread is not threading.current_thread():
        thread.join(wait_s)
    if not lab.training and lab.status in ("waiting", "training", "paused"):
        lab.status = how if lab.status != "paused" or how == "stopped" else lab.status
        lab.notify()
    return lab


def threads_per_lab() -> int:
    """Torch threads of one training lab: the cores shared by the labs that may train at once
    (1 each on 2 cores, 4 each on 8), so the trainers never ask for more threads than there are
    cores. Two labs' OpenMP threads on the same cores stall each other (measured on a busy
    machine: 10-25x slower), and so does a lab on 2 threads beside any other busy thread (the
    page's own requests, a browser on the same machine). The setting is the calling thread's own
    (OpenMP's), so the rest of the app keeps its threads."""
    return max(1, CORES // TRAINING_AT_ONCE)


def _train(lab: Lab) -> None:
    while not _TRAINERS.acquire(timeout=0.2):          # wait for a free trainer
        if lab.halt.is_set():
            lab.status = lab.halt_as
            lab.notify()
            return
    torch.set_num_threads(threads_per_lab())
    try:
        lab.status = "training"
        lab.notify()
        _loop(lab)
    except Exception as e:                              # noqa: BLE001  (said in the page)
        lab.status, lab.error = "failed", f"{type(e).__name__}: {e}"
    finally:
        _TRAINERS.release()
        lab.notify()


def _loop(lab: Lab) -> None:
    started = time.perf_counter()
    base = lab.seconds
    sums, count = np.zeros(len(TERMS)), 0
    last_cloud = last_news = 0.0
    for step in lab.trainer.progressive(lab.settings.steps - lab.iteration):
        sums += [step.terms[name] for name in TERMS]
        count += 1
        now = time.perf_counter()
        lab.seconds = base + now - started
        if count == HISTORY_EVERY:
            lab.history.append((step.iteration, lab.seconds, *(sums / count)))
            sums, count = np.zeros(len(TERMS)), 0
        if now - last_cloud >= CLOUD_S:
            draw_cloud(lab)
            if lab.floor is None:                       # once the first cloud is shown
                update_floor(lab)
            if lab.settings.schedule == "learned" and now - lab.floor_at >= FLOOR_EVERY_S:
                update_floor(lab, FLOOR_SAMPLES // 4)
            last_cloud = time.perf_counter()
        if now - last_news >= NEWS_S:
            if count:                                   # the latest iterations, as they are
                lab.history.append((step.iteration, lab.seconds, *(sums / count)))
                sums, count = np.zeros(len(TERMS)), 0
            last_news = now
            lab.notify()
        if lab.halt.is_set():
            lab.status = lab.halt_as
            break
        if now - started >= TRAIN_LIMIT_S:
            lab.status = "limit"
            break
    else:
        lab.status = "done"
    if count:
        lab.history.append((lab.iteration, lab.seconds, *(sums / count)))
    draw_cloud(lab)
    if lab.settings.schedule == "learned":
        update_floor(lab)


def draw_cloud(lab: Lab) -> None:
    """Samples of the model as it is now (DDIM from the lab's fixed x_T), kept for the page and
    for the training GIF."""
    with torch.no_grad():
        cloud = sample(lab.net, CLOUD, sampler="ddim", steps=CLOUD_STEPS,
                       generator=torch.Generator().manual_seed(lab.settings.seed + 7919))
    lab.cloud = cloud.numpy().astype(np.float32)
    lab.cloud_at = lab.iteration
    if not lab.frames or lab.frames[-1][0] != lab.cloud_at:
        lab.frames.append((lab.cloud_at, lab.cloud))
        if len(lab.frames) > FRAMES_KEPT:                # keep every other old frame
            lab.frames = lab.frames[:-FRAMES_KEPT // 2:2] + lab.frames[-FRAMES_KEPT // 2:]


def update_floor(lab: Lab, samples: int = FLOOR_SAMPLES) -> float:
    """The diffusion term the exact denoiser reaches on the lab's data and schedule (nats): the
    floor under the training curve."""
    with torch.no_grad():
        schedule = lab.net.schedule
        exact = ExactDenoiser(lab.points, schedule)
        g = torch.Generator().manual_seed(12345)
        lab.floor = float(diffusion_loss(exact, lab.points, schedule, samples, g))
    lab.floor_at = time.perf_counter()
    return lab.floor


def summary(lab: Lab) -> dict:
    """The lab in numbers (the API's answer and the page's status)."""
    last = lab.history[-1] if lab.history else None
    terms = dict(zip(TERMS, last[2:])) if last else {}
    out = {"status": lab.status, "status_text": STATUS_WORDS.get(lab.status, lab.status),
           "iteration": lab.iteration, "iterations_asked": lab.settings.steps,
           "seconds": round(lab.seconds, 3), "points": int(len(lab.points)),
           "settings": asdict(lab.settings), "loss_nats": {k: round(float(v), 5)
                                                           for k, v in terms.items()},
           "exact_diffusion_floor_nats": None if lab.floor is None else round(lab.floor, 5)}
    if lab.error:
        out["error"] = lab.error
    if lab.floor and terms:
        out["diffusion_over_floor"] = round(float(terms["diffusion"]) / lab.floor, 4)
    return out
