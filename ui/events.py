"""Wiring computations to events, each once under one api_name.

`on(fn, inputs, outputs, api_name=..., user=[...], auto=[...])` registers one view for all the
triggers that should recompute it: `user` triggers are the user's own moves (a failure is a
toast), `auto` triggers are what the page fires by itself (the page loading, a dataset switch, a
new image A or B): there a missing model clears the outputs instead, since the tab's banner
already names the missing file. Calls through the API are told every failure.

`api(fn, inputs, outputs, api_name=...)` registers an endpoint that no element of the page
fires: the public API keeps its results while the page is served by views of its own.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Sequence

import gradio as gr

from .common import friendly

Trigger = Callable


def _identity(block) -> str | int | None:
    """What names a trigger's block across sessions: its elem_id (Gradio gives a session its own
    copy of a block an event has updated, under the same key but with another `_id`)."""
    if block is None:
        return None
    return getattr(block, "elem_id", None) or block._id


def _quiet_when(fn: Callable, outputs: Sequence, auto_ids: set) -> Callable:
    """`friendly(fn)`, whose "Model not available" error becomes cleared outputs when the event
    came from a trigger in `auto_ids` (`_identity` of the event's target block). Gradio hands
    the event to the last positional parameter of the signature given here."""
    loud = friendly(fn)
    positional = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    event = inspect.Parameter("_event", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)
    outputs = _listed(outputs)
    cleared = (None,) * len(outputs) if len(outputs) > 1 else None

    @functools.wraps(fn)
    def wrapper(*args):
        *values, _event = args
        try:
            return loud(*values)
        except gr.Error as e:
            target = getattr(_event, "target", None)
            if getattr(e, "title", None) != "Model not available" or \
                    _identity(target) not in auto_ids:
                raise
            return cleared

    del wrapper.__wrapped__                     # Gradio reads the signature given here
    wrapper.__signature__ = inspect.Signature([*positional, event])
    try:                                         # fn's own hints (gr.Request, ...), resolved
        hints = typing.get_type_hints(fn)
    except (NameError, TypeError):
        hints = {}
    wrapper.__annotations__ = {**hints, "_event": gr.EventData}
    return wrapper


def on(fn: Callable, inputs: Sequence, outputs: Sequence, *, api_name: str,
       user: Sequence[Trigger] = (), auto: Sequence[Trigger] = (), **kwargs) -> gr.Dependency:
    """Register `fn` for every trigger in `user` and `auto` (see the module's docstring)."""
    auto_ids = {_identity(trigger.__self__) for trigger in auto}
    handler = _quiet_when(fn, outputs, auto_ids) if auto else friendly(fn)
    kwargs.setdefault("show_progress", "hidden")
    # a trigger while the view is being computed runs once that is done: the last answer is
    # the one for the latest inputs (the page loading, then a scene's dataset, say)
    kwargs.setdefault("trigger_mode", "always_last")
    return gr.on([*user, *auto], handler, _listed(inputs), _listed(outputs), api_name=api_name,
                 **kwargs)


def api(fn: Callable, inputs: Sequence, outputs: Sequence, *, api_name: str,
        **kwargs) -> gr.Dependency:
    """An API endpoint no element of the page fires (`gr.on` with no trigger)."""
    return gr.on([], friendly(fn), _listed(inputs), _listed(outputs), api_name=api_name,
                 **kwargs)


def _listed(components) -> list:
    if components is None:
        return []
    return list(components) if isinstance(components, (list, tuple)) else [components]
