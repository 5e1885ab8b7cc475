"""The VDM tab: layout.py (components), wiring.py (events), views.py (what it computes, stateless),
run.py (the session's reverse run), frames.py (the run as the page's view receives it)."""

from . import views
from .layout import NAMES, VDMTab, create
from .wiring import wire

__all__ = ["NAMES", "VDMTab", "create", "views", "wire"]
