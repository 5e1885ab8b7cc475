"""The hierarchical-VAE tab: layout.py (components), wiring.py (events), views.py (what it
computes)."""

from . import views
from .layout import NAMES, HVAETab, create
from .wiring import wire

__all__ = ["HVAETab", "NAMES", "create", "views", "wire"]
