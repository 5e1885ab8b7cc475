"""The page's own channel to its reverse run, as the run view (ui/static/views/run.js) uses it:
the view's server functions (ui/vdm/live.py: follow, step, start, stop, rewind, branch), each
one `POST /gradio_api/component_server/` answered with a message of ui/vdm/frames.py.

    {"data": {"key", "have", "run", ...}, "component_id": <the view's id in /config>,
     "fn_name": "step", "session_hash": ...}

`key` is the token the page gets with a new run (`head.key` of the message `vdm_reset_view`
answers with), `have` the steps it holds and `run` the run's id. `PageRun` keeps those as the
page does, folding in every message; `bench.client.view_call` makes one call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RUN_VIEW = "vdm-run-view"          # elem_id of the run view (ui/vdm/layout.py)


def message_in(reply: Any) -> dict | None:
    """The run's message in a reply: the reply of a server function itself, or the run view's
    value among an event's outputs (the one dict that carries `seq` and `run`)."""
    candidates = reply if isinstance(reply, list) else [reply]
    for item in candidates:
        if isinstance(item, dict) and "seq" in item and "run" in item and "steps" in item:
            return item
    return None


@dataclass
class PageRun:
    """What a page holds of its run, kept from the messages as run.js keeps it."""
    key: str | None = None
    run: int | None = None
    have: int = 0                    # steps held (0..taken)
    steps: int = 0                   # the run's length
    taken: int = 0                   # steps the server's run has taken
    done: bool = False
    active: bool = False             # a Run is taking its steps

    def fold(self, msg: dict | None) -> None:
        """Take in a message (a new run when it has a head; another run's is ignored)."""
        if not msg:
            return
        if "head" in msg:
            self.key, self.run, self.have = msg["head"]["key"], msg["run"], 0
            self.steps = msg["head"]["steps"]
        elif msg.get("run") != self.run:
            return
        if msg["start"] <= self.have:
            self.have = msg["start"] + len(msg["steps"])
        self.taken, self.done = msg["taken"], msg["done"]
        self.active = bool(msg.get("active", False))

    def asked(self, **extra) -> dict:
        """The `data` of a server function call about this run."""
        return {"key": self.key, "have": self.have, "run": self.run, **extra}

    @property
    def finished(self) -> bool:
        """Every step taken and held."""
        return self.done and self.have >= self.taken
