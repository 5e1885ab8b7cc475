"""`Picture` and `Drawing`: gr.Image and gr.Sketchpad whose unreadable files become a clear
message.

Gradio opens an uploaded image with PIL while preprocessing, before any handler runs, and turns
a failure into a generic "Error" on every output of the event. Here the handler gets an
`Unreadable` naming the file instead, and says so itself.

Defining a component class makes Gradio write a type stub next to its module (picture.pyi, for
editors' event hints), which is why these classes live in a module of their own; the stub is
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


def read_or_unreadable(read, payload, what: str):
    """read(payload) (a component's own preprocess), or `Unreadable` naming `what` when the
    file cannot be read (Gradio's own gr.Error messages pass through)."""
    try:
        return read(payload)
    except gr.Error:
        raise
    except Exception as e:
        return Unreadable(f"could not read {what} as an image ({type(e).__name__})")


class Picture(gr.Image):
    """gr.Image, but an upload PIL cannot read comes to the handler as `Unreadable`, naming
    the file."""

    is_template = True                          # the page draws it with gr.Image's frontend

    def preprocess(self, payload):
        name = getattr(payload, "orig_name", None) or "the upload"
        return read_or_unreadable(super().preprocess, payload, repr(name))


class Drawing(gr.Sketchpad):
    """gr.Sketchpad, but a drawing whose layers are not images (an API call sending any file as
    a layer) comes to the handler as `Unreadable`."""

    is_template = True

    def get_block_name(self) -> str:
        """gr.Sketchpad's own frontend (gr.ImageEditor's: Sketchpad is a template itself)."""
        return gr.Sketchpad.__base__.__name__.lower()

    def preprocess(self, payload):
        return read_or_unreadable(super().preprocess, payload,
                                  "the drawing's background, layers or composite")
