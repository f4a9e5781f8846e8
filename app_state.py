"""What the pages share: cached backend objects and drawing helpers. No training logic lives here."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from plotly.subplots import make_subplots

from aigc import configure_threads, describe_device, list_checkpoints, load_checkpoint, pick_device
from aigc.images import grid, png_bytes
from aigc.latent import find_directions
from aigc.runs import RunRegistry

RUNS_DIR = Path(os.environ.get("AIGC_RUNS_DIR", "runs"))
LABELS = {"loss_d": "D loss", "loss_g": "G loss", "d_real": "D(x)", "d_fake": "D(G(z))",
          "loss": "loss (−ELBO)", "recon": "reconstruction", "kl": "KL"}
GROUPS = {  # chart panels per model family: (title, metrics)
    "gan": [("Losses", ["loss_d", "loss_g"]), ("Discriminator's verdicts", ["d_real", "d_fake"])],
    "vae": [("Loss and reconstruction (nats)", ["loss", "recon"]), ("KL divergence (nats)", ["kl"])],
}
COLORS = ["#4C6EF5", "#F03E3E", "#37B24D", "#F59F00"]


@st.cache_resource
def registry() -> RunRegistry:
    """One registry per server: runs outlive sessions and are shared by id."""
    runs = RunRegistry(runs_dir=RUNS_DIR, janitor_interval=5.0,
                       idle_timeout=float(os.environ.get("AIGC_IDLE_TIMEOUT", "90")))
    if pick_device().type == "cpu":
        # jobs share the cores: two jobs each asking OpenMP for every core oversubscribe it and both crawl
        configure_threads(int(os.environ.get("AIGC_THREADS", "0")) or max(1, (os.cpu_count() or 1) // runs.max_jobs))
    return runs


@st.cache_resource
def device_label() -> str:
    return describe_device(pick_device())


def checkpoint_choices() -> dict[str, Path]:
    """Shipped checkpoints first, then runs saved on this server."""
    shipped = {f"{name} (shipped)": path for name, path in list_checkpoints().items()}
    saved = {f"{name} (saved run)": path for name, path in list_checkpoints(RUNS_DIR).items()}
    return {**shipped, **saved}


@st.cache_resource(max_entries=16, show_spinner="Loading the model…")
def load_model(path: str, mtime: float):
    """(model, checkpoint dict) on the CPU, cached by path and modification time."""
    return load_checkpoint(path)


def load_path(path: Path):
    path = Path(path)
    return load_model(str(path), path.stat().st_mtime)


@st.cache_resource(max_entries=16, show_spinner="Finding slider directions…")
def directions(key: str, _model, label: int | None = None):
    return find_directions(_model, n=1024, label=label)


@st.cache_resource(max_entries=16, show_spinner=False)
def group_strip(key: str, _model, seed: int = 0) -> np.ndarray:
    """One sample from each of a self-conditioned GAN's groups, 0 to k-1, in rows of up to 25."""
    k = _model.label_count
    with torch.no_grad():
        z = _model.make_noise(k, generator=torch.Generator().manual_seed(seed))
        return grid(_model.sample(z, torch.arange(k)), nrow=min(k, 25), scale=2)


def image(pixels: np.ndarray, width: int | None = None, caption: str | None = None):
    st.image(pixels, width=width or "stretch", caption=caption, clamp=True, output_format="PNG")


def sample_grid(model, seed: int, n: int = 64, labels=None, scale: int = 3, nrow: int = 8) -> np.ndarray:
    with torch.no_grad():
        z = model.make_noise(n, generator=torch.Generator().manual_seed(seed))
        if model.conditional and labels is None:
            labels = model.default_labels(n)
        return grid(model.sample(z, labels), nrow=nrow, scale=scale)


def ema(values: list[float], alpha: float) -> list[float]:
    out, acc = [], None
    for v in values:
        acc = v if acc is None else alpha * acc + (1 - alpha) * v
        out.append(acc)
    return out


def loss_figure(history: dict, smoothing: float = 0.8) -> go.Figure:
    family = "vae" if "recon" in history else "gan"
    groups = GROUPS[family]
    fig = make_subplots(rows=1, cols=len(groups), subplot_titles=[g[0] for g in groups], horizontal_spacing=0.08)
    steps = history.get("step", [])
    for col, (_, names) in enumerate(groups, start=1):
        for i, name in enumerate(names):
            values = history.get(name, [])
            color = COLORS[(2 * (col - 1) + i) % len(COLORS)]
            if smoothing > 0 and values:
                fig.add_trace(go.Scatter(x=steps, y=values, mode="lines", line=dict(color=color, width=1),
                                         opacity=0.25, showlegend=False, hoverinfo="skip"), row=1, col=col)
            fig.add_trace(go.Scatter(x=steps, y=ema(values, smoothing), mode="lines", name=LABELS[name],
                                     line=dict(color=color, width=3)), row=1, col=col)
        fig.update_xaxes(title_text="step", row=1, col=col)
    if family == "gan":
        fig.update_yaxes(range=[0, 1], row=1, col=2)
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=40, b=10), uirevision="keep", font=dict(size=15),
                      legend=dict(orientation="h", y=-0.25), transition=dict(duration=0))
    return fig


def png_download(label: str, pixels: np.ndarray, file_name: str, key: str):
    st.download_button(label, png_bytes(pixels), file_name=file_name, mime="image/png", key=key,
                       icon=":material/download:")


def to_images(pixels: np.ndarray) -> torch.Tensor:
    """(n, 28, 28) uint8 -> (n, 1, 28, 28) in [-1, 1], for scoring a grid already drawn."""
    return torch.from_numpy(pixels).float().div(127.5).sub(1).unsqueeze(1)


@st.cache_resource(max_entries=4, show_spinner="Encoding test digits…")
def latent_map(key: str, _model, n: int = 2000):
    """Means of q(z|x) for n test digits: (n, 2) coordinates and their labels."""
    from aigc import load_mnist

    test = load_mnist(train=False)
    x, y = test.batch(torch.arange(n))
    with torch.no_grad():
        mu, _ = _model.encode(x)
    return mu.numpy(), y.numpy()


def latent_map_figure(coords: np.ndarray, digits: np.ndarray, point: tuple[float, float]) -> go.Figure:
    fig = go.Figure()
    for d in range(10):
        m = digits == d
        fig.add_trace(go.Scattergl(x=coords[m, 0], y=coords[m, 1], mode="markers", name=str(d),
                                   marker=dict(size=5, opacity=0.7)))
    fig.add_trace(go.Scatter(x=[point[0]], y=[point[1]], mode="markers", name="you",
                             marker=dict(size=18, symbol="x", color="black")))
    fig.update_layout(height=480, margin=dict(l=10, r=10, t=10, b=10), uirevision="map", font=dict(size=15),
                      xaxis_title="z₁", yaxis_title="z₂", legend_title="digit")
    return fig


@st.cache_data(max_entries=32, show_spinner="Scoring 10,000 samples…")
def evaluate(path: str, mtime: float) -> dict:
    from aigc.metrics import evaluate_model

    model, _ = load_model(path, mtime)
    return evaluate_model(model, n=10_000)
