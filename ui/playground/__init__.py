"""The 2-D playground tab: layout.py (components), wiring.py (events), lab.py (a session's data,
model and training thread), live.py (the views' server functions), views.py (what it computes)."""

from . import views
from .layout import PlaygroundTab, create
from .wiring import wire

__all__ = ["PlaygroundTab", "create", "views", "wire"]
