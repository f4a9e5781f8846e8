"""The model registry: one dict from name to (config class, model class)."""
from __future__ import annotations

from .base import NUM_CLASSES, GAN, GenerativeModel, ModelConfig, check_range
from .declarations import Panel, Redraw, Section, Series, Setting
from .cgan import CGAN, CGANConfig
from .dcgan import DCGAN, DCGANConfig
from .diffusion import Diffusion, DiffusionConfig
from .latent_diffusion import LatentDiffusion, LatentDiffusionConfig
from .mlp_gan import MLPGAN, MLPGANConfig
from .vae import VAE, VAEConfig

__all__ = ["MODELS", "build_model", "check_base", "GenerativeModel", "GAN", "ModelConfig", "NUM_CLASSES", "check_range",
           "Panel", "Redraw", "Section", "Series", "Setting"]

MODELS: dict[str, tuple[type[ModelConfig], type[GenerativeModel]]] = {
    "cgan": (CGANConfig, CGAN),          # first = the default: digits of every class fastest on a CPU
    "dcgan": (DCGANConfig, DCGAN),
    "mlp_gan": (MLPGANConfig, MLPGAN),
    "vae": (VAEConfig, VAE),
    "diffusion": (DiffusionConfig, Diffusion),
    "latent_diffusion": (LatentDiffusionConfig, LatentDiffusion),
}


def build_model(name: str, model_args: dict | None = None, base: dict | None = None) -> GenerativeModel:
    """Builds a model from its registry name and config dict (as stored in a checkpoint). A model that is
    trained on top of another (its base_model) is built new from `base`, that model's checkpoint; from
    its own checkpoint it needs none, as the base's shape and weights are in it."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    config_cls, model_cls = MODELS[name]
    if base is not None:
        check_base(name, base)
        model_args = {**(model_args or {}), **model_cls.args_from_base(base)}
    model = model_cls(config_cls.from_dict(model_args or {}))
    if base is not None:
        model.load_base(base)
    return model


def check_base(name: str, base: dict | None) -> None:
    """Raises ValueError unless `base` is what a new `name` model is trained on: a checkpoint of its
    base_model, or nothing for a model that has none."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    wanted = MODELS[name][1].base_model
    if base is None:
        if wanted is not None:
            raise ValueError(f"a {name} is trained on top of a trained {wanted}: choose the {wanted} to build on")
    elif wanted is None:
        raise ValueError(f"a {name} is not built on another model")
    elif base.get("model_name") != wanted:
        raise ValueError(f"a {name} is built on a {wanted}, not on a {base.get('model_name')}")
