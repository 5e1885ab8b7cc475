"""The VAE tab: layout.py (components), wiring.py (events), views.py (what it computes)."""

from . import views
from .layout import NAMES, VAETab, create
from .wiring import wire

__all__ = ["NAMES", "VAETab", "create", "views", "wire"]
