"""The run view's own channel to its run: Step, Run, Stop, rewind and branch as server functions
of the view (Gradio's `server_functions`), and `follow`, which the view calls while a Run takes
its steps to get the new ones as fast as it draws them.

Why not Gradio events: every event's start, message and end makes Gradio's page refresh the
loading state of each component of the app (measured in this app: 50 to 70 ms of main thread an
event, ~20 ms a streamed message), so a run streamed through an event at the sampler's pace
(~80 steps a second) starves the page, and a Step costs a long task. A server function is one
small request and nothing else. The Gradio events stay for what needs the page's settings
(Reset, a changed setting) and for the public API (`vdm_step`, `vdm_run`, ...: ui/vdm/wiring.py).

The model work of these functions runs on COMPUTE, two worker threads (as the Gradio sampler
events' concurrency limit): a Run waits there for a free worker like an event in Gradio's
queue, and the server functions themselves are coroutines that hold no thread while they wait.
A run is found by the key its page received with it (an unguessable token, `Session.key`;
`remember` keeps the last few hundred), so a page reads and moves its own run and no other.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import gradio as gr

from explorer.validate import check_int, check_seed

from . import frames, pagerun, run
from .run import Session

KEPT = 512                       # runs a page may follow and move (least recently used go)
WAIT_S = 1.5                     # a follow request answers after this long even with nothing new
STEPS_PER_REPLY = 8              # a page that fell behind catches up over several replies
COMPUTE = ThreadPoolExecutor(max_workers=2, thread_name_prefix="vdm-sampler")

_runs: OrderedDict[str, Session] = OrderedDict()
_guard = threading.Lock()


def remember(session: Session) -> Session:
    """Keep `session` as a run its page may follow and move (by its key)."""
    with _guard:
        _runs[session.key] = session
        _runs.move_to_end(session.key)
        while len(_runs) > KEPT:
            _runs.popitem(last=False)
    return session


def _find(asked) -> tuple[Session, dict]:
    if not isinstance(asked, dict):
        raise ValueError("a run view call needs an object like {\"key\": ...}")
    with _guard:
        session = _runs.get(asked.get("key")) if isinstance(asked.get("key"), str) else None
    if session is None or session.put_away:
        raise ValueError("this run is not on the server any more: press Reset")
    return session, asked


def _reply(session: Session, asked: dict, stopped: bool = False) -> dict:
    since, page_run = frames.held(asked)
    message = frames.message(session, since, page_run, stopped=stopped, limit=STEPS_PER_REPLY)
    message["active"] = session.active
    return message


def _failed(error: Exception) -> dict:
    """What the view shows when a move cannot be made (busy, a bad step, a run gone)."""
    if isinstance(error, gr.Error):
        return {"error": error.message}
    return {"error": str(error) or type(error).__name__}


async def _compute(fn, *args):
    return await asyncio.get_running_loop().run_in_executor(COMPUTE, fn, *args)


# ---------------------------------------------------------------- the server functions

async def follow(asked: dict) -> dict:
    """The steps after the `have` the page holds of its run ({"key", "have", "run", "wait"}), as
    a message of ui/vdm/frames.py with `active` (a Run is on). With `wait`, answers once there
    is a new step, the Run has ended, or WAIT_S has passed."""
    try:
        session, asked = _find(asked)
    except ValueError as e:
        return _failed(e)
    since, page_run = frames.held(asked)
    if asked.get("wait") and page_run == session.id:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_S
        while frames.taken(session) <= (since or 0) and loop.time() < deadline:
            woken = asyncio.Event()
            session.on_change(loop, woken)
            if frames.taken(session) > (since or 0) or not (session.active or session.queued):
                break
            try:
                await asyncio.wait_for(woken.wait(), deadline - loop.time())
            except asyncio.TimeoutError:
                break
    return _reply(session, asked)


def _caught_up(session: Session, asked: dict) -> Session:
    """The session's run where the page's is (`at`: {taken, branches}), when the page took
    steps itself before it switched to the server (pagerun.catch_up; nothing to do otherwise)."""
    at = asked.get("at")
    if isinstance(at, dict):
        pagerun.catch_up(session, at.get("taken"), at.get("branches"))
    return session


async def step(asked: dict) -> dict:
    """One step of the page's run."""
    try:
        session, asked = _find(asked)
        await _compute(lambda: run.step(_caught_up(session, asked)))
        return _reply(session, asked)
    except (ValueError, gr.Error) as e:
        return _failed(e)


def _run_to_the_end(session: Session, ticket: object) -> None:
    if session.ticket is not ticket:             # stopped (or run again) while it waited
        return
    session.queued = False
    for _ in run.run(session):
        pass


async def start(asked: dict) -> dict:
    """Run: every remaining step, on a sampler worker once one is free. Answers at once; the
    page follows the steps (`follow`)."""
    try:
        session, asked = _find(asked)
    except ValueError as e:
        return _failed(e)
    if session.active or session.queued:
        return _failed(run._busy())
    try:
        await _compute(_caught_up, session, asked)
    except (ValueError, gr.Error) as e:
        return _failed(e)
    session.queued, session.ticket = True, object()
    session.notify()
    future = asyncio.get_running_loop().run_in_executor(COMPUTE, _run_to_the_end, session,
                                                        session.ticket)
    future.add_done_callback(lambda _: _ended(session))
    return _reply(session, asked)


def _ended(session: Session) -> None:
    session.queued = False
    session.notify()


async def _until_still(session: Session, limit_s: float = 10.0) -> None:
    """Wait (holding no thread) until the session's Run has let go of it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while session.active and loop.time() < deadline:
        woken = asyncio.Event()
        session.on_change(loop, woken)
        if not session.active:
            break
        try:
            await asyncio.wait_for(woken.wait(), deadline - loop.time())
        except asyncio.TimeoutError:
            break


async def stop(asked: dict) -> dict:
    """Stop ({"key", "shown", ...}): the run ends after the step under way and goes back to the
    step the page showed then (its later steps replay exactly), so the run is what was seen."""
    try:
        session, asked = _find(asked)
        shown = asked.get("shown")
        shown = check_int("shown", shown, 0, run.STEPS_MAX) if shown is not None else None
    except (ValueError, gr.Error) as e:
        return _failed(e)
    run.stop(session)
    session.queued, session.ticket = False, None     # a Run still waiting never starts
    await _until_still(session)
    try:
        if shown is not None:
            run.rewind(session, min(shown, session.run.taken))
    except (ValueError, gr.Error) as e:
        return _failed(e)
    return _reply(session, asked, stopped=True)


async def rewind(asked: dict) -> dict:
    """Back to the moment `shown` steps had been taken (cheap: no sampler worker)."""
    try:
        session, asked = _find(asked)
        await _compute(_caught_up, session, asked)
        run.rewind(session, check_int("shown", asked.get("shown"), 0, run.STEPS_MAX))
        return _reply(session, asked)
    except (ValueError, gr.Error) as e:
        return _failed(e)


async def branch(asked: dict) -> dict:
    """Rewind to `shown` and take one step with noise from `seed` (and every later step)."""
    try:
        session, asked = _find(asked)
        shown = check_int("shown", asked.get("shown"), 0, run.STEPS_MAX)
        seed = check_seed(asked.get("seed"))
        await _compute(lambda: run.branch(_caught_up(session, asked), shown, seed))
        return _reply(session, asked)
    except (ValueError, gr.Error) as e:
        return _failed(e)


async def plan(asked: dict) -> dict:
    """What the page needs to take its run's steps itself from `start` on, under its
    `branches` ({"key", "start", "branches"}): ui/vdm/pagerun.py. One request for a whole run
    (and one more for each branch)."""
    try:
        session, asked = _find(asked)
        return await asyncio.to_thread(pagerun.plan, session, asked.get("start"),
                                       asked.get("branches"), asked.get("need_x") is not False)
    except (ValueError, gr.Error) as e:
        return _failed(e)


SERVER_FUNCTIONS = [follow, step, start, stop, rewind, branch, plan]
