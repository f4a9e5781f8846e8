"""aigc: generative models on MNIST that you train live and explore with sliders."""
__version__ = "0.1.0"

from .checkpoint import (CheckpointError, list_checkpoints, load_checkpoint, make_checkpoint, model_from_checkpoint,
                         read_checkpoint, save_checkpoint)
from .data import DATA_ENV, load_mnist
from .device import configure_threads, describe_device, pick_device, seed_everything
from .models import MODELS, GenerativeModel, build_model
from .trainer import LIMITS, TrainConfig, Trainer

__all__ = [
    "__version__", "MODELS", "GenerativeModel", "build_model",
    "LIMITS", "TrainConfig", "Trainer",
    "CheckpointError", "list_checkpoints", "load_checkpoint", "make_checkpoint", "model_from_checkpoint", "read_checkpoint", "save_checkpoint",
    "DATA_ENV", "load_mnist", "configure_threads", "describe_device", "pick_device", "seed_everything",
]
