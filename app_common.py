"""Server-wide caches for the pages: what one viewer computes, every other viewer reuses.

A classroom is thirty browsers polling one run a few times a second on a 2-core server that is also
training. Building a Plotly figure (~25 ms) and encoding a 726×726 PNG (~20 ms) per poll per viewer
would take more CPU than the training itself, so both are cached per (run, step): the first viewer
of a new step pays once, everyone else gets the cached object. The same goes for the live quality
score, the model of a finished run, and uploaded checkpoints (cached by content hash).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import streamlit as st

from aigc import CheckpointError, load_checkpoint, model_from_checkpoint
from aigc.images import gif_bytes, grid, png_bytes

MY_RUNS = "my_runs"          # session key: ids of the runs this browser session started, newest last
SMOOTHING = "smoothing"      # session key: EMA factor of the loss chart


def runs_dir() -> Path:
    """AIGC_RUNS_DIR, else runs/ — read at call time so tests can point it elsewhere."""
    return Path(os.environ.get("AIGC_RUNS_DIR", "runs"))


# ---- the live Train page ---------------------------------------------------------------------------
@st.cache_resource(max_entries=64, show_spinner=False)
def live_figure(run_id: str, points: int, smoothing: float, _history: dict):
    """The loss chart of a run with `points` log entries; shared by every viewer (never mutated)."""
    import app_state

    fig = app_state.loss_figure(_history, smoothing)
    fig.update_layout(uirevision=run_id)        # zoom/legend clicks survive redraws of the same run
    return fig


@st.cache_data(max_entries=128, show_spinner=False)
def grid_png(run_id: str, step: int, _pixels: np.ndarray, scale: int = 3) -> bytes:
    """PNG of an (n, 28, 28) uint8 sample set as an 8-wide grid, upscaled nearest-neighbour."""
    return png_bytes(grid(_pixels, nrow=8, scale=scale))


@st.cache_data(max_entries=128, show_spinner=False)
def quick_score(run_id: str, step: int, _pixels: np.ndarray) -> dict | None:
    """The metrics classifier's verdict on a sample grid, or None when aigc.metrics or its classifier
    is not available (the badge is then simply not shown)."""
    try:
        import torch
        from aigc.metrics import quick_score as score
        images = torch.from_numpy(np.ascontiguousarray(_pixels)).float().div(127.5).sub(1).unsqueeze(1)
        return score(images)
    except (ImportError, CheckpointError, OSError, RuntimeError):
        return None


@st.cache_data(max_entries=16, show_spinner=False)
def evolution_gif(run_id: str, steps: tuple, _frames: list) -> bytes:
    """Every snapshot of a run as an animated GIF (one frame per snapshot, no bounce)."""
    return gif_bytes([grid(f, nrow=8, scale=2) for f in _frames], ms_per_frame=180, bounce=False)


def share_url(run_id: str) -> str:
    """The read-only link to a run: this page's address plus ?run=<id> (no key)."""
    base = None
    try:
        base = st.context.url
    except Exception:          # not in a browser session (bare mode)
        pass
    return f"{base or ''}?run={run_id}"


def remember_run(run_id: str) -> None:
    runs = st.session_state.setdefault(MY_RUNS, [])
    if run_id not in runs:
        runs.append(run_id)


# ---- models for Explore ------------------------------------------------------------------------------
@st.cache_resource(max_entries=8, show_spinner="Loading the run's model…")
def run_model(run_id: str, step: int, _checkpoint: dict):
    """(model, checkpoint) of a run of this server, cached per run and step."""
    return model_from_checkpoint(_checkpoint, "cpu"), _checkpoint


@st.cache_resource(max_entries=4, show_spinner="Reading the checkpoint…")
def _load_upload(digest: str, name: str, _data: bytes):
    import io

    buffer = io.BytesIO(_data)
    buffer.name = name                   # so error messages name the file the person chose
    return load_checkpoint(buffer)


def load_upload(data: bytes, name: str = "upload"):
    """(model, checkpoint) from uploaded bytes; raises CheckpointError with a readable message.
    Cached by content, so moving a slider does not re-read the file."""
    return _load_upload(hashlib.sha256(data).hexdigest(), name, data)


def session_runs(registry) -> list:
    """This session's runs that ended with weights (finished, stopped or diverged), newest first."""
    found = []
    for run_id in reversed(st.session_state.get(MY_RUNS, [])):
        run = registry.get(run_id)
        if run is not None:
            view = registry.view(run)
            if not view.active and view.has_weights:
                found.append((run, view))
    return found


def checkpoint_choices(registry) -> dict[str, tuple]:
    """{label: ("path", Path) | ("run", Run)}: shipped checkpoints, runs saved on this server, and the
    finished runs of this browser session (not saved yet, still in memory)."""
    from aigc import list_checkpoints

    choices: dict[str, tuple] = {}
    for run, view in session_runs(registry):
        choices[f"{view.model} run {run.id}, {view.step:,} steps (this session)"] = ("run", run)
    for name, path in list_checkpoints().items():
        choices[f"{name} (shipped)"] = ("path", path)
    for name, path in list_checkpoints(runs_dir()).items():
        choices[f"{name} (saved run)"] = ("path", path)
    return choices
