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
LABELS = {"loss_d": "D loss", "loss_g": "G loss", "d_real": "D(x) on real digits", "d_fake": "D(G(z)) on fakes",
          "loss": "loss (−ELBO)", "recon": "reconstruction", "kl": "KL divergence"}
PANELS = {  # per model family: [(panel title, metrics, fixed y range or None)]
    "gan": [("Losses", ["loss_d", "loss_g"], None), ("Discriminator's verdicts", ["d_real", "d_fake"], [0, 1])],
    "vae": [("Loss and reconstruction (nats per digit)", ["loss", "recon"], None), ("KL divergence (nats)", ["kl"], None)],
}
COLORS = {"loss_d": "#4C6EF5", "loss_g": "#F03E3E", "d_real": "#2B8A3E", "d_fake": "#F59F00",
          "loss": "#4C6EF5", "recon": "#7048E8", "kl": "#F03E3E"}


def ema(values: list[float], alpha: float) -> list[float]:
    """Exponential moving average (TensorBoard's smoothing), alpha in [0, 1)."""
    out, acc = [], None
    for v in values:
        acc = v if acc is None else alpha * acc + (1 - alpha) * v
        out.append(acc)
    return out


def loss_figure(history: dict, target_step: int, smoothing: float = 0.8, run_id: str = ""):
    """Two side-by-side panels of a run's metrics: raw values faint, their EMA bold.

    Built for a steady live view: the x axis spans the whole run from the start (the lines grow into a
    fixed frame instead of the frame rescaling every poll), the verdict panel is pinned to [0, 1], the
    height is fixed, and uirevision keeps a viewer's zoom across redraws of the same run."""
    import plotly.graph_objects as go

    family = "vae" if "recon" in history else "gan"
    steps = history.get("step", [])
    x_max = max(target_step, steps[-1] if steps else 1)
    few = len(steps) < 3                    # a line of one point is invisible: draw markers until there are more
    data, layout = [], {}
    gap = 0.08
    for i, (title, names, y_range) in enumerate(PANELS[family]):
        axis = "" if i == 0 else str(i + 1)
        left = i * (1 + gap) / 2
        layout[f"xaxis{axis}"] = dict(domain=[left, left + (1 - gap) / 2], range=[0, x_max], title=dict(text="step"),
                                      anchor=f"y{axis}", zeroline=False)
        layout[f"yaxis{axis}"] = dict(anchor=f"x{axis}", zeroline=False,
                                      **({"range": y_range, "autorange": False} if y_range else {"autorange": True}))
        layout.setdefault("annotations", []).append(dict(
            text=f"<b>{title}</b>", x=left + (1 - gap) / 4, y=1.0, xref="paper", yref="paper", xanchor="center",
            yanchor="bottom", showarrow=False, font=dict(size=17)))
        for name in names:
            values = history.get(name, [])
            color = COLORS[name]
            common = dict(x=steps, xaxis=f"x{axis}", yaxis=f"y{axis}", type="scatter")
            if smoothing > 0:
                data.append(dict(common, y=values, mode="lines", line=dict(color=color, width=1), opacity=0.3,
                                 showlegend=False, hoverinfo="skip"))
            data.append(dict(common, y=ema(values, smoothing) if smoothing > 0 else values, name=LABELS[name],
                             mode="lines+markers" if few else "lines", line=dict(color=color, width=3.5)))
        if family == "gan" and i == 1:       # D(x) = D(G(z)) = 1/2 is the game's equilibrium
            layout.setdefault("shapes", []).append(dict(
                type="line", xref=f"x{axis} domain", yref=f"y{axis}", x0=0, x1=1, y0=0.5, y1=0.5,
                line=dict(color="#868E96", width=1.5, dash="dot")))
    layout.update(height=400, margin=dict(l=10, r=10, t=36, b=10), uirevision=run_id or "loss", font=dict(size=15),
                  legend=dict(orientation="h", y=-0.2, x=0, font=dict(size=15)), hovermode="x unified",
                  transition=dict(duration=0))
    return go.Figure(data=data, layout=layout)


@st.cache_resource(max_entries=64, show_spinner=False)
def live_figure(run_id: str, points: int, smoothing: float, target_step: int, _history: dict):
    """The loss chart of a run with `points` log entries, built once and shared by every viewer
    (st.plotly_chart only reads it)."""
    return loss_figure(_history, target_step, smoothing, run_id)


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
