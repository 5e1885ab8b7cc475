"""`Picture`: gr.Image whose unreadable uploads become a clear message.

Gradio opens an uploaded image with PIL while preprocessing, before any handler runs, and turns
a failure into a generic "Error" on every output of the event. Here the handler gets an
`Unreadable` naming the file instead, and says so itself.

Defining a component class makes Gradio write a type stub next to its module (picture.pyi, for
editors' event hints), which is why this class lives alone in a module of its own; the stub is
generated on import and git-ignored.
"""

from __future__ import annotations

import gradio as gr


class Unreadable:
    """An upload PIL could not read: what the handler gets instead of a picture, so it decides
    how to say so (a toast that leaves the slots alone, or an error through the API)."""

    def __init__(self, message: str):
        self.message = message

    def __repr__(self) -> str:
        return f"Unreadable({self.message!r})"


class Picture(gr.Image):
    """gr.Image, but an upload PIL cannot read comes to the handler as `Unreadable`, naming
    the file."""

    is_template = True                          # the page draws it with gr.Image's frontend

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except gr.Error:
            raise
        except Exception as e:
            name = getattr(payload, "orig_name", None) or "the upload"
            return Unreadable(f"could not read {name!r} as an image ({type(e).__name__})")
