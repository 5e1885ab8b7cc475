"""The three models, by kind: each class has `kind`, `config_cls` and is rebuilt as cls(config)."""

from explorer.models.hvae import HVAE, HVAEConfig
from explorer.models.vae import VAE, VAEConfig
from explorer.models.vdm import VDM, VDMConfig

from explorer.frechet import Judge  # the evaluation classifier, saved and rebuilt like the models

MODELS = {model.kind: model for model in (VAE, HVAE, VDM, Judge)}

__all__ = ["MODELS", "VAE", "VAEConfig", "HVAE", "HVAEConfig", "VDM", "VDMConfig"]
