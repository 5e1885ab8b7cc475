"""Latent Explorer backend: data, schedules, VAE / HVAE / VDM, samplers, ELBO terms.

This package never imports gradio; the UI in `app.py` and `ui/` composes it.
"""

__version__ = "0.1.0"
