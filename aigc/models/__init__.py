"""The model registry: one dict from name to (config class, model class)."""
from __future__ import annotations

from .base import NUM_CLASSES, GAN, GenerativeModel, ModelConfig, check_range
from .declarations import Panel, Section, Series, Setting
from .cgan import CGAN, CGANConfig
from .dcgan import DCGAN, DCGANConfig
from .mlp_gan import MLPGAN, MLPGANConfig
from .vae import VAE, VAEConfig

__all__ = ["MODELS", "build_model", "GenerativeModel", "GAN", "ModelConfig", "NUM_CLASSES", "check_range",
           "Panel", "Section", "Series", "Setting"]

MODELS: dict[str, tuple[type[ModelConfig], type[GenerativeModel]]] = {
    "cgan": (CGANConfig, CGAN),          # first = the default: digits of every class fastest on a CPU
    "dcgan": (DCGANConfig, DCGAN),
    "mlp_gan": (MLPGANConfig, MLPGAN),
    "vae": (VAEConfig, VAE),
}


def build_model(name: str, model_args: dict | None = None) -> GenerativeModel:
    """Rebuilds a model from its registry name and config dict (as stored in a checkpoint)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    config_cls, model_cls = MODELS[name]
    return model_cls(config_cls.from_dict(model_args or {}))
