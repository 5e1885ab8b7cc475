"""`Picture`: gr.Image whose unreadable uploads become a clear message.

Gradio opens an uploaded image with PIL while preprocessing, before any handler runs, and turns
a failure into a generic "Error". Here it becomes a gr.Error naming the file.

Defining a component class makes Gradio write a type stub next to its module (picture.pyi, for
editors' event hints), which is why this class lives alone in a module of its own; the stub is
generated on import and git-ignored.
"""

from __future__ import annotations

import gradio as gr


class Picture(gr.Image):
    """gr.Image, but an upload PIL cannot read raises a gr.Error naming the file."""

    is_template = True                          # the page draws it with gr.Image's frontend

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except gr.Error:
            raise
        except Exception as e:
            name = getattr(payload, "orig_name", None) or "the upload"
            raise gr.Error(f"could not read {name!r} as an image ({type(e).__name__})",
                           title="Cannot do that", print_exception=False) from None
