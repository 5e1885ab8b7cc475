"""The playground view's own channel to its lab (Gradio `server_functions`): Train, Pause, Stop,
`follow` (the loss curve and sample cloud as they come, long-polled, so the page redraws as fast
as training makes news: lab.NEWS_S, over 5 times a second), the field at the scrubbed t and
trajectories. A server function is one small request (no Gradio event's loading state per
message: see ui/vdm/live.py). What the page's controls set (the data, the model) goes through
Gradio events instead (ui/playground/wiring.py), which make a new lab when needed.

A lab is found by the unguessable key its page received with it (lab.py `find`).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from ..page import float32_b64
from . import lab as labs
from . import views

WAIT_S = 1.0                    # a follow request answers after this long even with no news
# the field and the trajectories: one torch thread each (beside the training labs: see
# lab.threads_per_lab), two at a time
COMPUTE = ThreadPoolExecutor(max_workers=2, thread_name_prefix="playground",
                             initializer=lambda: torch.set_num_threads(1))


def _failed(error: Exception) -> dict:
    return {"error": str(error) or type(error).__name__}


async def _compute(fn, *args):
    return await asyncio.get_running_loop().run_in_executor(COMPUTE, fn, *args)


def history_since(lab: labs.Lab, have: int) -> dict:
    """The loss curve's points after the first `have` ones, as columns of float32."""
    rows = np.asarray(lab.history[have:], dtype=np.float64).reshape(-1, 2 + len(labs.TERMS))
    columns = ("iteration", "seconds", *labs.TERMS)
    return {"from": have, **{name: float32_b64(rows[:, i]) for i, name in enumerate(columns)}}


def message(lab: labs.Lab, have: int = 0, cloud_at: int | None = None) -> dict:
    """What the page draws of its lab: status, the curve's new points, the latest cloud (when
    newer than the page's `cloud_at`), the floor and, for a learned schedule, its tables."""
    have = max(0, min(int(have) if isinstance(have, (int, float)) else 0, len(lab.history)))
    out = {"key": lab.key, "lab": lab.id, "seq": lab.seq, **labs.summary(lab),
           "history": history_since(lab, have), "floor": lab.floor}
    if lab.cloud is not None and lab.cloud_at != cloud_at:
        out["cloud"] = float32_b64(lab.cloud)
        out["cloud_at"] = lab.cloud_at
    if lab.settings.schedule == "learned":
        out["tables"] = views.tables(lab)
    return out


def _asked(asked) -> tuple[labs.Lab, dict]:
    if not isinstance(asked, dict):
        raise ValueError('a playground call needs an object like {"key": ...}')
    return labs.find(asked.get("key")), asked


async def follow(asked: dict) -> dict:
    """News of the lab after the page's `seq` ({"key", "seq", "have", "cloud_at"}): answers once
    there is some, or after WAIT_S."""
    try:
        lab, asked = _asked(asked)
    except ValueError as e:
        return _failed(e)
    seq = asked.get("seq")
    if isinstance(seq, int) and seq == lab.seq:
        loop = asyncio.get_running_loop()
        woken = asyncio.Event()
        lab.on_change(loop, woken)
        if lab.seq == seq:
            try:
                await asyncio.wait_for(woken.wait(), WAIT_S)
            except asyncio.TimeoutError:
                pass
    return message(lab, asked.get("have", 0), asked.get("cloud_at"))


async def train(asked: dict) -> dict:
    """Train (or go on training) the page's model; answers at once."""
    try:
        lab, asked = _asked(asked)
        labs.train(lab)
        return message(lab, asked.get("have", 0), asked.get("cloud_at"))
    except ValueError as e:
        return _failed(e)


async def pause(asked: dict) -> dict:
    return await _halt(asked, "paused")


async def stop(asked: dict) -> dict:
    return await _halt(asked, "stopped")


async def _halt(asked: dict, how: str) -> dict:
    try:
        lab, asked = _asked(asked)
    except ValueError as e:
        return _failed(e)
    await asyncio.to_thread(labs.halt, lab, how)
    return message(lab, asked.get("have", 0), asked.get("cloud_at"))


async def field(asked: dict) -> dict:
    """The field at the page's t ({"key", "t", "grid", "which"}): views.field."""
    try:
        lab, asked = _asked(asked)
        return await _compute(lambda: views.field_message(lab, views.field(
            lab, asked.get("t"), asked.get("grid", 25), asked.get("which", "eps"))))
    except ValueError as e:
        return _failed(e)


async def trajectories(asked: dict) -> dict:
    """Trajectories of seeded points ({"key", "n", "steps", "seed"}): the whole runs at once;
    the page steps, runs and rewinds through them itself."""
    try:
        lab, asked = _asked(asked)
        result = await _compute(views.trajectories, lab, asked.get("n", 200),
                                asked.get("steps", 100), asked.get("seed", 0))
        return views.trajectories_message(result)
    except ValueError as e:
        return _failed(e)


SERVER_FUNCTIONS = [follow, train, pause, stop, field, trajectories]
