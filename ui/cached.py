"""Backend objects cached once per server: what one viewer computes, every other viewer reuses.

A classroom is thirty browsers polling one run a few times a second on a 2-core server that is also
training, so the pages never build the same thing twice: the run registry, models (by file version,
by run and step, by upload content), slider directions, sample grids, PNGs of a run's grid (by its
pixels), the classifier's verdict on them, and scores.
"""
from __future__ import annotations

import atexit
import hashlib
import io
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import streamlit as st
import torch
# Not used here, imported with the rest of the backend all the same: building a model imports
# torch._dynamo and reading MNIST imports torchvision, and these imports, like torch's own, call ast.parse
# many times, which on CPython 3.11 fails with "SystemError: AST constructor recursion depth mismatch" when
# two threads do it at once (cpython gh-106905). Here they come with the backend: a thread that needs it
# while another imports it waits at this module's import lock, instead of importing them later, lazily,
# alongside something else. (ui.startup imports the backend in the background; .streamlit/config.toml
# turns off the magic that would ast.parse each page script.)
import torch._dynamo  # noqa: F401
import torchvision.datasets  # noqa: F401

from aigc import (MODELS, CheckpointError, GenerativeModel, configure_allocator, configure_threads, describe_device,
                  drawing, list_checkpoints, load_checkpoint, model_from_checkpoint, pick_device, sampling)
from aigc.device import torch_threads
from aigc.drawing import Redrawing
from aigc.models.declarations import Trajectory
from aigc.images import gif_bytes, grid, png_bytes
from aigc.latent import Direction, axis_directions, find_directions, principal_directions
from aigc.runs import Run, RunRegistry, default_max_jobs


def runs_dir() -> Path:
    """Where this server saves runs: AIGC_RUNS_DIR, else runs/ (read when the registry is made)."""
    return Path(os.environ.get("AIGC_RUNS_DIR", "runs"))


@st.cache_resource
def registry() -> RunRegistry:
    """One registry per server: runs outlive sessions and are shared by id."""
    configure_allocator()                # the trainings reuse their freed memory instead of faulting it back in
    threads = None
    if pick_device().type == "cpu":
        # jobs share the cores: two jobs each asking OpenMP for every core oversubscribe it and both crawl
        threads = int(os.environ.get("AIGC_THREADS", "0")) or max(1, (os.cpu_count() or 1) // default_max_jobs())
        configure_threads(threads)
    runs = RunRegistry(runs_dir=runs_dir(), janitor_interval=5.0,
                       idle_timeout=float(os.environ.get("AIGC_IDLE_TIMEOUT", "90")),
                       state_every=float(os.environ.get("AIGC_STATE_EVERY", "30")),
                       state_quota=int(float(os.environ.get("AIGC_STATE_QUOTA_MB", "1024")) * 2**20), threads=threads)
    atexit.register(runs.close)          # a stopped server leaves its trainings resumable, and exits cleanly
    return runs


@st.cache_resource
def device_label() -> str:
    return describe_device(pick_device())


# ---- models ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Loaded:
    """A model ready to draw from, its checkpoint dict, and the key that names this version of it in
    the caches below."""
    model: GenerativeModel
    checkpoint: dict
    key: str


@st.cache_resource(max_entries=16, show_spinner="Loading the model…")
def _model_file(path: str, mtime: float):
    return load_checkpoint(path)


@st.cache_resource(max_entries=8, show_spinner="Loading the run's model…")
def _run_model(run_id: str, step: int, _checkpoint: dict):
    return model_from_checkpoint(_checkpoint, "cpu")


@st.cache_resource(max_entries=4, show_spinner="Reading the checkpoint…")
def _upload(digest: str, name: str, _data: bytes):
    buffer = io.BytesIO(_data)
    buffer.name = name                   # so error messages name the file the person chose
    return load_checkpoint(buffer)


def model_file(path: Path) -> Loaded:
    """A checkpoint file's model; raises CheckpointError or OSError with a readable message."""
    mtime = Path(path).stat().st_mtime
    model, checkpoint = _model_file(str(path), mtime)
    return Loaded(model, checkpoint, f"{path}@{mtime}")


def demo_grid() -> tuple[str, Loaded, np.ndarray] | None:
    """The Home page's picture: 60 digits, ten a row, from the shipped checkpoint of the model the Train page
    starts with, and that model's name; None when there is no such checkpoint or it cannot be read."""
    name = next(iter(MODELS))
    path = next(iter(list_checkpoints(model=name).values()), None)
    try:
        return None if path is None else _demo_grid(name, str(path), path.stat().st_mtime)
    except OSError:
        return None


# Cached as a whole, not only through model_file and sample_grid, so that ui.startup can draw it in the
# background: Streamlit shows the spinner of the outermost cached function only, and outside a page a
# spinner logs a warning.
@st.cache_resource(max_entries=2, show_spinner=False)
def _demo_grid(name: str, path: str, mtime: float) -> tuple[str, Loaded, np.ndarray] | None:
    try:
        loaded = model_file(Path(path))
    except (CheckpointError, OSError):
        return None
    return name, loaded, sample_grid(loaded.key, loaded.model, seed=0, n=60, nrow=10, scale=3)


def run_model(run: Run) -> Loaded:
    """A run's model as it is now (its final weights once it has ended), per run and step."""
    checkpoint = run.checkpoint()
    return Loaded(_run_model(run.id, checkpoint["step"], checkpoint), checkpoint, f"run-{run.id}-{checkpoint['step']}")


def upload(data: bytes, name: str = "upload") -> Loaded:
    """An uploaded checkpoint's model, cached by content, so moving a slider does not read it again;
    raises CheckpointError with a message that names the file."""
    digest = hashlib.sha256(data).hexdigest()
    model, checkpoint = _upload(digest, name, data)
    return Loaded(model, checkpoint, f"upload-{digest}")


def load(choice: Path | Run) -> Loaded:
    """What session.checkpoint_choices offers: a file or a run of this tab."""
    return run_model(choice) if isinstance(choice, Run) else model_file(choice)


# ---- what the pages draw from a model --------------------------------------------------------------------
@st.cache_resource(max_entries=16, show_spinner="Finding slider directions…")
def directions(key: str, _model: GenerativeModel, label: int | None = None, kind: str = "measured") -> list[Direction]:
    """The Explore page's kinds of slider direction: "measured", "found by the model", "one per dimension"."""
    if kind == "found by the model":
        return principal_directions(_model, n=1024, label=label)
    if kind == "one per dimension":
        return axis_directions(_model)
    return find_directions(_model, n=1024, label=label)


@st.cache_resource(max_entries=16, show_spinner=False)
def group_strip(key: str, _model: GenerativeModel) -> np.ndarray:
    return sampling.group_strip(_model)


@st.cache_resource(max_entries=32, show_spinner=False)
def sample_grid(key: str, _model: GenerativeModel, seed: int, n: int, nrow: int, scale: int) -> np.ndarray:
    return sampling.sample_grid(_model, seed, n=n, nrow=nrow, scale=scale)


@st.cache_resource(max_entries=32, show_spinner=False)
def trajectory(key: str, _model: GenerativeModel, seed: int, label: int | None, options: tuple) -> Trajectory:
    """One sample's way from noise to a digit (Section.TRAJECTORY), per seed, label and sampling settings;
    its tensors without the batch dimension: images (k + 1, 1, 28, 28), estimates (k, 1, 28, 28)."""
    with torch.no_grad():
        path = _model.trajectory(sampling.noise(_model, 1, seed), sampling.as_labels(_model, 1, label), **dict(options))
    return replace(path, images=path.images[:, 0], estimates=path.estimates[:, 0])


@st.cache_resource(max_entries=16, show_spinner=False)
def forward_process(key: str, _model: GenerativeModel, index: int, levels: int = 11):
    """A test digit noised to `levels` even steps of t from 0 to 1 with one fixed noise image, as a strip
    (Section.FORWARD_PROCESS), and the schedule α(t), σ(t) at 101 points."""
    x0, _ = sampling.test_digits(torch.tensor([index]))                                  # (1, 1, 28, 28)
    eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
    t = torch.linspace(0, 1, levels)
    with torch.no_grad():
        noisy = _model.noised(x0.expand(levels, -1, -1, -1), t, eps.expand(levels, -1, -1, -1))
    ts = torch.linspace(0, 1, 101)
    alpha, sigma = _model.schedule(ts)
    return grid(noisy, nrow=levels, scale=3), (ts.numpy(), alpha.numpy(), sigma.numpy())


@st.cache_resource(max_entries=16, show_spinner=False)
def latent_paths(key: str, _model: GenerativeModel, options: tuple) -> np.ndarray | None:
    """The ways ten samples, one of each digit, take through a 2-D latent space from noise (k + 1, 10, 2),
    for a model that samples by such paths (latent diffusion); None for one that does not."""
    with torch.no_grad():
        path = _model.latent_paths(sampling.noise(_model, 10, 0), torch.arange(10), **dict(options))
    return None if path is None else path.images.numpy()


@st.cache_resource(max_entries=32, show_spinner=False)
def sampling_ms(key: str, _model: GenerativeModel, n: int = 64) -> float:
    """Milliseconds per image to draw a batch of n with the model's own sampling settings (median of 3)."""
    times = []
    for seed in range(3):
        start = time.perf_counter()
        sampling.samples(_model, seed, n)
        times.append((time.perf_counter() - start) * 1000 / n)
    return sorted(times)[1]


@st.cache_resource(max_entries=4, show_spinner="Encoding test digits…")
def encoded_test_digits(key: str, _model: GenerativeModel) -> tuple[np.ndarray, np.ndarray]:
    return sampling.encode_test_digits(_model)


@st.cache_data(max_entries=32, show_spinner="Scoring 10,000 samples…")
def evaluate(path: str, mtime: float) -> dict:
    from aigc.metrics import evaluate_model

    model, _ = _model_file(path, mtime)
    return evaluate_model(model, n=10_000)


def metrics_available() -> bool:
    """Whether aigc.metrics (the digit classifier behind the quality scores) can be imported."""
    try:
        import aigc.metrics  # noqa: F401
        return True
    except Exception:
        return False


# ---- a run's pictures -------------------------------------------------------------------------------------
@st.cache_data(max_entries=128, show_spinner=False)
def grid_png(pixels: np.ndarray, scale: int = 3) -> bytes:
    """PNG of an (n, 28, 28) uint8 sample set as an 8-wide grid, upscaled nearest-neighbour. Cached by the
    pixels themselves, not by run and step: a grid redrawn at the same step, as a VAE's is when its prior
    is fitted, must not come back as the old picture. A live run makes several a second: fast compression."""
    return png_bytes(grid(pixels, nrow=8, scale=scale), compress_level=1)


def blank_grid(n: int = 64) -> bytes:
    """A dark placeholder the size of the sample grid, so the page does not jump when samples arrive."""
    return grid_png(np.zeros((n, 28, 28), dtype=np.uint8))


@st.cache_data(max_entries=128, show_spinner=False)
def quick_score(pixels: np.ndarray) -> dict | None:
    """The metrics classifier's verdict on a sample grid (confidence, digits present, digits_ok), or None when
    aigc.metrics or its classifier is not available (the badge is then simply not shown)."""
    try:
        from aigc.metrics import quick_score as score
        images = torch.from_numpy(np.ascontiguousarray(pixels)).float().div(127.5).sub(1).unsqueeze(1)
        with torch_threads(1):     # one thread: a team of two would contend with the training's for the cores
            result = score(images)
        return {**result, "present": sum(1 for c in result["class_hist"] if c)}
    except Exception:          # a badge, not a feature: any failure just hides it
        return None


@st.cache_data(max_entries=16, show_spinner=False)
def evolution_gif(run_id: str, steps: tuple, _frames: list) -> bytes:
    """Every snapshot of a run as an animated GIF (one frame per snapshot, no bounce)."""
    return gif_bytes([grid(f, nrow=8, scale=2) for f in _frames], ms_per_frame=180, bounce=False)


# ---- the drawing bench ----------------------------------------------------------------------------------------
@st.cache_resource(max_entries=64, show_spinner=False)
def redrawing(key: str, digit: bytes, label: int | None, strength: float, options: tuple,
              _model: GenerativeModel) -> Redrawing:
    """What the model makes of a digit (1, 1, 28, 28) given as its float32 bytes, per model version,
    digit, label, strength and sampling settings."""
    x = torch.frombuffer(bytearray(digit), dtype=torch.float32).view(1, 1, 28, 28)
    return drawing.redraw(_model, x, label, strength, **dict(options))


@st.cache_resource(max_entries=32, show_spinner=False)
def morph_from(redraw_key: tuple, _model: GenerativeModel, digit: bytes, _redrawing: Redrawing, seed: int,
               frames: int, label: int | None, options: tuple) -> torch.Tensor:
    """drawing.morph_from, per redrawing (named by the arguments of redrawing() that made it), seed and frames."""
    x = torch.frombuffer(bytearray(digit), dtype=torch.float32).view(1, 1, 28, 28)
    return drawing.morph_from(_model, x, _redrawing, seed, frames, label, **dict(options))


@st.cache_resource(max_entries=4, show_spinner=False)
def code_map(key: str, _model: GenerativeModel) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """For a model with an encoder: 2,000 encoded test digits placed on a 2-D map (n, 2), their digits (n,),
    and the map's plane (mean (d,), basis (d, 2)) to place any other code on it."""
    codes, digits = sampling.encode_test_digits(_model)
    mean, basis = drawing.map_plane(codes)
    return (codes - mean) @ basis, digits, mean, basis
