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
import zipfile
from pathlib import Path
from typing import BinaryIO

import torch

from .version import __version__
from .models import MODELS, GenerativeModel, build_model

FORMAT = "aigc-checkpoint"
FORMAT_VERSION = 1
MAX_CHECKPOINT_BYTES = 200 * 2**20     # a whole file
MAX_ENTRIES = 4096                     # records in its archive: one per tensor and a few more
MAX_PICKLE_BYTES = 16 * 2**20          # everything in it that is not weights: settings, history
MODEL_DEFAULTS_SLACK = 1_000_000       # numbers a model may have beyond a file's (buffers older files lack)


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
    """Loads and validates a checkpoint dict, at a cost bounded by the file's size whatever it holds or
    declares. Before anything is unpickled, the archive's records are checked: few, stored uncompressed,
    with a small pickle. The file is then mapped, not read (uploaded bytes are spooled to a temporary file
    first), so its tensors are views of the file: a tensor that declares more data than there is fails to
    load instead of being allocated, and one that covers more numbers than its data holds is refused.
    Nothing runs from the file (weights_only). Every refusal is a CheckpointError that says why."""
    if isinstance(source, (str, os.PathLike)):
        return _read_file(Path(source), Path(source).name)
    name = getattr(source, "name", None) or "upload"
    data = bytes(source) if isinstance(source, (bytes, bytearray)) else source.read(MAX_CHECKPOINT_BYTES + 1)
    with tempfile.NamedTemporaryFile(prefix="aigc-upload-", suffix=".pt") as spool:
        spool.write(data)
        spool.flush()
        return _read_file(Path(spool.name), name)


def _read_file(path: Path, name: str) -> dict:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise CheckpointError(f"{name}: no such file") from None
    if size > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"{name} is {size / 2**20:.0f} MB; aigc checkpoints are at most "
                              f"{MAX_CHECKPOINT_BYTES // 2**20} MB")
    _check_archive(name, path)
    ckpt = _load(name, path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{name} is a PyTorch file but not an aigc checkpoint (no '{FORMAT}' header)")
    if ckpt.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{name} was written by a newer aigc (format {ckpt['format_version']}); "
                              f"upgrade aigc to read it")
    if ckpt.get("model_name") not in MODELS:
        raise CheckpointError(f"{name} holds an unknown model {ckpt.get('model_name')!r}; this aigc knows "
                              f"{', '.join(MODELS)}")
    if not isinstance(ckpt.get("state_dict"), dict) or not isinstance(ckpt.get("model_args"), dict):
        raise CheckpointError(f"{name} is missing its weights or model settings")
    _check_tensors(name, ckpt["state_dict"])
    return ckpt


def _check_archive(name: str, path: Path) -> None:
    """torch.save writes a zip archive: one stored record per tensor, and the pickle of everything else."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        raise CheckpointError(f"{name} is not a readable checkpoint: it is truncated, corrupt or another kind of "
                              f"file") from None
    if len(entries) > MAX_ENTRIES:
        raise CheckpointError(f"{name} was refused: it holds {len(entries):,} records; an aigc checkpoint has a few "
                              f"hundred at most")
    if any(e.compress_type != zipfile.ZIP_STORED for e in entries):
        raise CheckpointError(f"{name} was refused: it holds compressed records, which could expand to far more "
                              f"than the file; an aigc checkpoint stores its records as they are")
    pickled = sum(e.file_size for e in entries if e.filename.endswith(".pkl"))
    if pickled > MAX_PICKLE_BYTES:
        raise CheckpointError(f"{name} was refused: its settings and history take {pickled / 2**20:.0f} MB; an aigc "
                              f"checkpoint needs at most {MAX_PICKLE_BYTES // 2**20} MB for them")


def _load(name: str, path: Path):
    """torch.load, mapped and weights_only (no code runs from the file), its many failures said in plain
    words."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as exc:
        if "Unsupported global" not in str(exc) and "weights_only" not in str(exc):
            raise CheckpointError(f"{name} is not a readable checkpoint: it is truncated, corrupt or another "
                                  f"kind of file (UnpicklingError)") from None
        raise CheckpointError(
            f"{name} was refused: it holds Python objects that would run code when loaded, "
            f"which an aigc checkpoint never does ({str(exc).splitlines()[0][:160]})"
        ) from None
    except Exception as exc:  # the weights-only unpickler raises many kinds on garbage: KeyError, EOFError, ...
        raise CheckpointError(f"{name} is not a readable checkpoint: it is truncated, corrupt or another kind of "
                              f"file ({type(exc).__name__})") from None


def _check_tensors(name: str, state_dict: dict) -> None:
    """Each tensor must cover no more numbers than its data holds: a zero-stride view of one number can
    declare a trillion, and any computation over it would run for hours."""
    for key, tensor in state_dict.items():
        if not isinstance(tensor, torch.Tensor):
            raise CheckpointError(f"{name} is missing its weights or model settings ({key!r} is not a tensor)")
        data = tensor.untyped_storage().nbytes()
        if tensor.numel() * tensor.element_size() > data:
            raise CheckpointError(f"{name} was refused: its tensor {key} declares {tensor.numel():,} numbers over "
                                  f"data for {data // tensor.element_size():,}")


def model_from_checkpoint(ckpt: dict, device: str | torch.device = "cpu") -> GenerativeModel:
    """The model a checkpoint dict describes, with its weights. The model's size is checked against the
    weights the checkpoint holds before it is built, so small settings cannot ask for a huge model."""
    try:
        with torch.device("meta"):
            skeleton = build_model(ckpt["model_name"], ckpt["model_args"])
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"checkpoint settings are invalid for {ckpt['model_name']}: {exc}") from None
    needed = sum(t.numel() for t in skeleton.state_dict().values())
    held = sum(t.numel() for t in ckpt["state_dict"].values() if isinstance(t, torch.Tensor))
    if needed > held + MODEL_DEFAULTS_SLACK:
        raise CheckpointError(f"the weights do not fit a {ckpt['model_name']} with these settings: they ask for a model "
                              f"of {needed:,} numbers and the checkpoint holds {held:,}")
    model = skeleton.to_empty(device="cpu")          # storage without the random init: the weights replace it all
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except (RuntimeError, KeyError) as exc:
        first = str(exc).splitlines()[0][:200]
        raise CheckpointError(f"the weights do not fit a {ckpt['model_name']} with these settings: another architecture? ({first})") from None
    return model.to(device).eval()


def load_checkpoint(source, device: str | torch.device = "cpu") -> tuple[GenerativeModel, dict]:
    """Returns (model in eval mode on device, the checkpoint dict); a file whose weights are not all
    finite is refused, as it could only draw blank squares."""
    ckpt = read_checkpoint(source)
    model = model_from_checkpoint(ckpt, device)
    # a sum in float64 cannot overflow from finite float32 weights, and NaN or infinity in any weight carries
    # through it: one pass over the numbers, where isfinite() would write a mask of them all
    sums = {key: t.sum(dtype=torch.float64) for key, t in model.state_dict().items() if t.is_floating_point()}
    broken = next((key for key, total in sums.items() if not total.isfinite()), None)
    if broken is not None:
        name = getattr(source, "name", None) or (Path(source).name if isinstance(source, (str, os.PathLike)) else "upload")
        raise CheckpointError(f"{name} was refused: its weights are not all finite numbers ({broken} holds NaN or "
                              f"infinity), so the model could draw nothing but blank squares")
    return model, ckpt


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
