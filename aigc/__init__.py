"""aigc: generative models on MNIST that you train live and explore with sliders."""
from .checkpoint import (CheckpointError, list_checkpoints, load_checkpoint, make_checkpoint, model_from_checkpoint,
                         read_checkpoint, save_checkpoint)
from .data import DATA_ENV, load_mnist
from .device import configure_allocator, configure_threads, describe_device, pick_device, seed_everything
from .models import MODELS, GenerativeModel, Panel, Redraw, Section, Series, Setting, build_model
from .trainer import LIMITS, Status, TrainConfig, Trainer, format_duration, live_values, train_settings
from .coach import PRESETS, Diagnosis, Preset, Remedy, diagnose
from .version import __version__

__all__ = [
    "__version__", "MODELS", "GenerativeModel", "build_model", "Panel", "Redraw", "Section", "Series", "Setting",
    "LIMITS", "Status", "TrainConfig", "Trainer", "format_duration", "live_values", "train_settings",
    "PRESETS", "Diagnosis", "Preset", "Remedy", "diagnose",
    "CheckpointError", "list_checkpoints", "load_checkpoint", "make_checkpoint", "model_from_checkpoint",
    "read_checkpoint", "save_checkpoint",
    "DATA_ENV", "load_mnist", "configure_allocator", "configure_threads", "describe_device", "pick_device",
    "seed_everything",
]
