"""Self-describing checkpoints (nanoGPT style): the file alone rebuilds the model.

Saved atomically (temp file in the same folder, fsync, rename), so a crash or a full disk never leaves a
half-written file where a good one was. Loaded with torch.load(weights_only=True): a file that would
need to run code to unpickle is refused, never executed.
"""
from __future__ import annotations

import functools
import io
import os
import pickle
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

import torch

from .version import __version__
from .models import MODELS, GenerativeModel, build_model

FORMAT = "aigc-checkpoint"
FORMAT_VERSION = 1
MAX_CHECKPOINT_BYTES = 200 * 2**20


class CheckpointError(ValueError):
    """A checkpoint could not be saved or loaded; the message says why in plain words."""


def make_checkpoint(model: GenerativeModel, step: int = 0, history: dict | None = None,
                    train_config: dict | None = None, extra: dict | None = None, half: bool = False) -> dict:
    """`half` stores float weights as float16 (half the file; loading casts back to float32)."""
    def export(t: torch.Tensor) -> torch.Tensor:
        t = t.detach().cpu()
        return t.half() if half and t.is_floating_point() else t.clone()

    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "aigc_version": __version__,
        "model_name": model.name,
        "model_args": model.config.to_dict(),
        "state_dict": {k: export(v) for k, v in model.state_dict().items()},
        "step": int(step),
        "history": history or {},
        "train_config": train_config or {},
        "created": time.time(),
        **(extra or {}),
    }


def checkpoint_bytes(checkpoint: dict) -> bytes:
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    return buffer.getvalue()


def save_checkpoint(checkpoint: dict, path: str | os.PathLike) -> Path:
    """Writes atomically; on any failure (disk full, no permission) the previous file is untouched."""
    path = Path(path)
    data = checkpoint_bytes(checkpoint)
    tmp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_name, 0o644)     # mkstemp makes 0600; a checkpoint is a shareable file
        os.replace(tmp_name, path)
        tmp_name = None
    except OSError as exc:
        reason = "the disk is full" if getattr(exc, "errno", None) == 28 else exc.strerror or str(exc)
        raise CheckpointError(f"could not save {path.name}: {reason}. Any earlier file at that path is unchanged.") from exc
    finally:
        if tmp_name and os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return path


def read_checkpoint(source: str | os.PathLike | bytes | BinaryIO) -> dict:
    """Loads and validates the dict; never unpickles arbitrary objects."""
    if isinstance(source, (bytes, bytearray)):
        if len(source) > MAX_CHECKPOINT_BYTES:
            raise CheckpointError(f"file is {len(source) / 2**20:.0f} MB; aigc checkpoints are at most {MAX_CHECKPOINT_BYTES // 2**20} MB")
        source = io.BytesIO(source)
    is_path = isinstance(source, (str, os.PathLike))
    name = getattr(source, "name", None) or (Path(source).name if is_path else "upload")
    try:   # a file is mapped, not read: its tensors are copied only where a model takes them
        ckpt = torch.load(source, map_location="cpu", weights_only=True, mmap=is_path)
    except FileNotFoundError:
        raise CheckpointError(f"{name}: no such file") from None
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc) and "weights_only" not in str(exc):
            raise CheckpointError(f"{name} is not a readable checkpoint: it is truncated, corrupt or another "
                                  f"kind of file (UnpicklingError)") from None
        raise CheckpointError(
            f"{name} was refused: it holds Python objects that would run code when loaded, "
            f"which an aigc checkpoint never does ({str(exc).splitlines()[0][:160]})"
        ) from None
    except Exception as exc:  # the weights-only unpickler raises many kinds on garbage: KeyError, EOFError, ...
        raise CheckpointError(f"{name} is not a readable checkpoint: it is truncated, corrupt or another kind of file ({type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{name} is a PyTorch file but not an aigc checkpoint (no '{FORMAT}' header)")
    if ckpt.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{name} was written by a newer aigc (format {ckpt['format_version']}); upgrade aigc to read it")
    if ckpt.get("model_name") not in MODELS:
        raise CheckpointError(f"{name} holds an unknown model {ckpt.get('model_name')!r}; this aigc knows {', '.join(MODELS)}")
    if not isinstance(ckpt.get("state_dict"), dict) or not isinstance(ckpt.get("model_args"), dict):
        raise CheckpointError(f"{name} is missing its weights or model settings")
    return ckpt


def model_from_checkpoint(ckpt: dict, device: str | torch.device = "cpu") -> GenerativeModel:
    try:
        model = build_model(ckpt["model_name"], ckpt["model_args"])
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"checkpoint settings are invalid for {ckpt['model_name']}: {exc}") from None
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except (RuntimeError, KeyError) as exc:
        first = str(exc).splitlines()[0][:200]
        raise CheckpointError(f"the weights do not fit a {ckpt['model_name']} with these settings: another architecture? ({first})") from None
    return model.to(device).eval()


def load_checkpoint(source, device: str | torch.device = "cpu") -> tuple[GenerativeModel, dict]:
    """Returns (model in eval mode on device, the checkpoint dict)."""
    ckpt = read_checkpoint(source)
    return model_from_checkpoint(ckpt, device), ckpt


SHIPPED_DIR = Path(__file__).resolve().parent.parent / "checkpoints"


def list_checkpoints(*folders: str | os.PathLike, model: str | None = None) -> dict[str, Path]:
    """{label: path} of the model checkpoints in the given folders (default: the shipped ones), by name;
    with `model`, only the readable ones that hold that model.

    The metrics classifier lives in the same folder but is not a generative model, so it is left out.
    """
    found = {}
    for folder in folders or (SHIPPED_DIR,):
        folder = Path(folder)
        if folder.is_dir():
            for path in sorted(folder.glob("*.pt")):
                if path.name != "mnist_classifier.pt" and (model is None or checkpoint_model_name(path) == model):
                    found[path.stem] = path
    return found


def checkpoint_model_name(path: Path) -> str | None:
    """The model a checkpoint file holds, or None if it is not a readable checkpoint; read once per
    version of the file."""
    try:
        return _model_name(str(path), path.stat().st_mtime_ns)
    except OSError:
        return None


@functools.lru_cache(maxsize=256)
def _model_name(path: str, mtime_ns: int) -> str | None:
    try:
        return read_checkpoint(path)["model_name"]
    except CheckpointError:
        return None
