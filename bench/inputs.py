"""The app's events and their inputs, read from the running app's `/config`, so the benchmark
and the load test never hold an endpoint's positional inputs themselves.

A raw HTTP call (`POST /gradio_api/call/<api_name>`) sends one value for each input of the event
but its gr.State ones, in the event's order. `AppInputs.data` builds that list from values keyed
by the input component's `elem_id` (an underscore stands for a dash: `a_index` is `a-index`),
taking the component's default from /config for anything not given:

    inputs = AppInputs.fetch(port)
    inputs.data("vdm_forward", {"dataset": "mnist", "a-index": 3, "a": None, "vdm-t": 500})
    inputs.data("vdm_curves", dataset="mnist", vdm_t=10)          # the same, as keywords

A value for a component the event does not take is an error (it would be dropped silently),
so a new input (one more radio) never breaks a call and a renamed one fails loudly. The page's
views are gr.HTML components with server functions of their own (`POST
/gradio_api/component_server/`): `view(elem_id)` gives the component id and the functions.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Input:
    """One input component of an event, as /config describes it."""
    id: int
    type: str                     # "radio", "slider", "state", "image", ...
    elem_id: str | None
    label: str | None
    default: Any                  # the component's value in /config
    props: Mapping                # every prop (minimum, maximum, choices, ...)

    @property
    def state(self) -> bool:
        """A gr.State input: the session holds it, a raw call sends nothing for it."""
        return self.type == "state"

    @property
    def name(self) -> str:
        return self.elem_id or f"#{self.id} ({self.type}{f' {self.label!r}' if self.label else ''})"


@dataclass(frozen=True)
class Event:
    """One dependency of /config that has an api_name."""
    api_name: str
    fn_index: int                 # what /gradio_api/cancel names
    inputs: tuple[Input, ...]
    outputs: tuple[Input, ...]
    visibility: str               # "public", "undocumented" or "private"

    @property
    def sent(self) -> tuple[Input, ...]:
        """The inputs a raw HTTP call sends a value for, in order (gr.State ones left out)."""
        return tuple(i for i in self.inputs if not i.state)


@dataclass(frozen=True)
class View:
    """A gr.HTML view with server functions: what `POST /gradio_api/component_server/` names."""
    elem_id: str
    component_id: int
    functions: tuple[str, ...]


def _key(name: str) -> str:
    return name.replace("_", "-")


class AppInputs:
    """The events and views of one running app, from its /config."""

    def __init__(self, config: Mapping) -> None:
        self.components = {int(c["id"]): c for c in config["components"]}
        self.events: dict[str, Event] = {}
        for dep in config["dependencies"]:
            name = dep.get("api_name")
            if name:
                self.events[name] = Event(name, int(dep["id"]),
                                          tuple(self._input(i) for i in dep["inputs"]),
                                          tuple(self._input(i) for i in dep["outputs"]),
                                          dep.get("api_visibility") or "public")

    @classmethod
    def fetch(cls, port: int, host: str = HOST, timeout: float = 30.0) -> "AppInputs":
        """Read GET /config of the app on `port`."""
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        try:
            conn.request("GET", "/config")
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"GET /config: HTTP {response.status} {body[:200]!r}")
            return cls(json.loads(body))
        finally:
            conn.close()

    def _input(self, component_id) -> Input:
        c = self.components[int(component_id)]
        props = c.get("props", {})
        return Input(int(component_id), c.get("type", ""), props.get("elem_id"), props.get("label"),
                     props.get("value"), props)

    def event(self, api_name: str) -> Event:
        try:
            return self.events[api_name]
        except KeyError:
            raise KeyError(f"the app has no event with api_name {api_name!r}") from None

    def takes(self, api_name: str) -> list[str]:
        """The names (elem_ids) of what a raw call to `api_name` sends, in order."""
        return [i.name for i in self.event(api_name).sent]

    def data(self, api_name: str, values: Mapping[str, Any] | None = None, /,
             **keywords: Any) -> list:
        """The `data` list of a raw HTTP call to `api_name`: for each input but the gr.State
        ones, the value given under its elem_id (in `values` or as a keyword, `_` for `-`),
        else the component's default from /config. KeyError for a value no input takes."""
        given = {_key(k): v for k, v in {**(values or {}), **keywords}.items()}
        event = self.event(api_name)
        names = [i.elem_id for i in event.sent if i.elem_id]
        unknown = sorted(set(given) - {_key(n) for n in names})
        if unknown:
            raise KeyError(f"/{api_name} takes no input {', '.join(map(repr, unknown))}; its "
                           f"inputs: {', '.join(self.takes(api_name)) or 'none'}")
        return [given[_key(i.elem_id)] if i.elem_id and _key(i.elem_id) in given else i.default
                for i in event.sent]

    def fn_index(self, api_name: str) -> int:
        return self.event(api_name).fn_index

    def component(self, elem_id: str) -> Input:
        """The component with this elem_id (KeyError when none or several have it)."""
        found = [self._input(i) for i, c in self.components.items()
                 if c.get("props", {}).get("elem_id") == elem_id]
        if len(found) != 1:
            raise KeyError(f"{len(found)} components have elem_id {elem_id!r}")
        return found[0]

    def view(self, elem_id: str) -> View:
        """The view (a gr.HTML with server functions) with this elem_id."""
        c = self.component(elem_id)
        return View(elem_id, c.id, tuple(c.props.get("server_fns") or ()))

    def choices(self, elem_id: str) -> list:
        """The values a radio or dropdown offers."""
        return [v[1] if isinstance(v, (list, tuple)) else v
                for v in self.component(elem_id).props.get("choices") or []]
