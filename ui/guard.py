"""Every value from outside is checked before a handler runs, and a refusal names it.

Gradio's components check their payloads in their own words: a Number rounds 2.5 to 2, a Radio
says "Value: None is not in the list of choices" without saying which input, None or a string
in a slider is a generic "Error", and a file given by path (`{"path": "/etc/passwd"}` with no
upload behind it) is opened as it is. `Blocks` (the app's gr.Blocks) checks every input of
every event first, from what the component itself declares (the session's copy of it: a slider
whose maximum an event changed is checked against the new one):

- Radio, Dropdown: one of the choices (None is not a choice);
- Slider, Number: a finite number (not a string, not a bool), whole where the component only
  holds whole numbers (precision 0, or an integer step from an integer minimum), inside
  [minimum, maximum]; None only for a Number marked `optional` (a gallery index box is empty
  when the slot holds an upload);
- Textbox: text; Checkbox: true or false;
- a file (Image, Sketchpad: any dict with a "path"): only a file Gradio itself received, in its
  upload folder; anything else gets the same answer as no upload, without a word about what the
  path holds or whether it exists.

A refusal is a gr.Error "<parameter>: <value> is not valid; valid: <range or choices>", named by
the handler's parameter, as the API lists it (`view_api()`). What depends on more than one
input (a gallery index against the dataset's gallery) stays with the handler, which names the
parameter too.
"""

from __future__ import annotations

import math
from typing import Any

import gradio as gr
from gradio.utils import get_upload_folder, is_in_or_equal

TITLE = "Invalid value"
NO_UPLOAD = ("no uploaded file received; send the picture as a file upload (in Python: "
             "gradio_client.handle_file(path))")

_OPTIONAL: set[str] = set()          # elem_ids of inputs that may be empty (None)


def optional(component: gr.components.Component) -> gr.components.Component:
    """Mark `component` (it needs an elem_id) as one whose value may be None."""
    if not component.elem_id:
        raise ValueError("an optional input needs an elem_id")
    _OPTIONAL.add(component.elem_id)
    return component


class Blocks(gr.Blocks):
    """gr.Blocks whose events refuse bad values with a message naming the parameter."""

    async def preprocess_data(self, block_fn, inputs, state, explicit_call: bool = False):
        if isinstance(inputs, list) and len(inputs) == len(block_fn.inputs):
            for i, block in enumerate(block_fn.inputs):
                if state is not None and block._id in state and not block.stateful:
                    block = state[block._id]                    # this session's copy
                problem = invalid(block, inputs[i])
                if problem:
                    raise gr.Error(f"{parameter_name(block_fn, i, block)}: {problem}",
                                   title=TITLE, print_exception=False)
        return await super().preprocess_data(block_fn, inputs, state, explicit_call)


def parameter_name(block_fn, i: int, block) -> str:
    """The name the API gives input i of the event (the handler's parameter), else the
    component's label or elem_id."""
    names = getattr(block_fn, "input_parameter_names", None) or []
    if i < len(names) and names[i]:
        return names[i]
    return block.label or block.elem_id or f"input {i}"


def invalid(block, value: Any) -> str | None:
    """Why `value` is not a valid payload for `block`, or None when it is."""
    if getattr(block, "stateful", False):
        return None
    if isinstance(block, (gr.Radio, gr.Dropdown)):
        return _choice(block, value)
    if isinstance(block, gr.Slider):
        whole = _is_whole(block.step) and _is_whole(block.minimum)
        return _number(value, block.minimum, block.maximum, whole, optional=False)
    if isinstance(block, gr.Number):
        return _number(value, block.minimum, block.maximum, block.precision == 0,
                       optional=block.elem_id in _OPTIONAL)
    if isinstance(block, gr.Checkbox):
        return None if isinstance(value, bool) else f"{value!r} is not valid; valid: true or false"
    if isinstance(block, gr.Textbox):
        return None if value is None or isinstance(value, str) else \
            f"{_shown(value)} is not valid; valid: text"
    if isinstance(block, (gr.Sketchpad, gr.ImageEditor)):
        return _drawing(value)
    if isinstance(block, (gr.Image, gr.File)):
        return _file(value)
    return None


def _choice(block, value) -> str | None:
    choices = [v for _, v in block.choices]
    if isinstance(value, list) and getattr(block, "multiselect", False):
        wrong = [v for v in value if v not in choices]
        value = wrong[0] if wrong else None
        if not wrong:
            return None
    elif any(value == c and type(value) is type(c) for c in choices):
        return None
    return f"{_shown(value)} is not valid; valid: one of {', '.join(map(repr, choices))}"


def _number(value, low, high, whole: bool, optional: bool) -> str | None:
    kind = "a whole number" if whole else "a number"
    if low is not None and high is not None:
        span = f"{kind} in {_g(low)}..{_g(high)}" if whole else f"{kind} in [{_g(low)}, {_g(high)}]"
    elif low is not None:
        span = f"{kind} >= {_g(low)}"
    elif high is not None:
        span = f"{kind} <= {_g(high)}"
    else:
        span = kind
    if optional:
        span += ", or empty (null)"
    if value is None:
        return None if optional else f"None is not valid; valid: {span}"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not math.isfinite(value) or (whole and not float(value).is_integer()) or \
            (low is not None and value < low) or (high is not None and value > high):
        return f"{_shown(value)} is not valid; valid: {span}"
    return None


def _file(value) -> str | None:
    """One file: None, or a file payload whose path lies in Gradio's upload folder."""
    if value is None:
        return None
    path = value.get("path") if isinstance(value, dict) else None
    if not isinstance(path, str) or not path or not is_in_or_equal(path, get_upload_folder()):
        return NO_UPLOAD
    return None


EDITOR_KEYS = {"background", "layers", "composite", "id"}


def _drawing(value) -> str | None:
    """A drawing: None, or {"background", "layers", "composite"} whose files are uploads."""
    if value is None:
        return None
    if not isinstance(value, dict) or not set(value) <= EDITOR_KEYS or \
            not isinstance(value.get("layers", []), list):
        return ('is not a drawing; valid: {"background": file or null, "layers": [files], '
                '"composite": file or null}, each file an upload')
    files = [value.get("background"), value.get("composite"), *value.get("layers", [])]
    for f in files:
        if f is not None and _file(f):
            return NO_UPLOAD
    return None


def _is_whole(x) -> bool:
    return x is not None and float(x).is_integer()


def _g(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def _shown(value) -> str:
    """The value as the message shows it: short, and never a server path."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."

