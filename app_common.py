"""Server-wide caches for the pages: what one viewer computes, every other viewer reuses.

A classroom is thirty browsers polling one run a few times a second on a 2-core server that is also
training. Building the chart (~25 ms as a Plotly figure) and encoding a 726×726 PNG (~20 ms) per poll
per viewer would take more CPU than the training itself, so both are cached per (run, step): the
first viewer of a new step pays once, everyone else gets the cached object. The same goes for the live quality
score, the model of a finished run, and uploaded checkpoints (cached by content hash).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import streamlit as st

from aigc import load_checkpoint, model_from_checkpoint
from aigc.images import gif_bytes, grid, png_bytes

MY_RUNS = "my_runs"          # session key: ids of the runs this browser session started, newest last
SMOOTHING = "smoothing"      # session key: EMA factor of the loss chart


def runs_dir() -> Path:
    """AIGC_RUNS_DIR, else runs/ — read at call time so tests can point it elsewhere."""
    return Path(os.environ.get("AIGC_RUNS_DIR", "runs"))


def require_frame() -> None:
    """Call first thing in every page. Streamlit runs a pages/ script *without* app.py (its old
    "pages directory" mode) until some run of app.py has called st.navigation in this process, so on a
    freshly started server the first visitor who opens a page address directly — a shared
    /train?run=… link — would get that page without the app's frame, and so would everyone after
    them until someone opened the home page. Here such a run switches that mode off and reruns,
    which goes through app.py and lands on the same page."""
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:          # a Streamlit without that mode
        return
    # once per session at most: streamlit.testing's AppTest turns the mode back on before every run,
    # and a rerun in each would swallow the button clicks the tests make
    if getattr(PagesManager, "uses_pages_directory", False) and not st.session_state.get("_aigc_framed"):
        st.session_state["_aigc_framed"] = True
        PagesManager.uses_pages_directory = False
        st.rerun()


# ---- the live Train page ---------------------------------------------------------------------------
LABELS = {"loss_d": "D loss", "loss_g": "G loss", "d_real": "D(x) on real digits", "d_fake": "D(G(z)) on fakes",
          "loss": "loss (−ELBO)", "recon": "reconstruction", "kl": "KL divergence"}
PANELS = {  # per model family: [(panel title, metrics, fixed y range or None)] — one chart each
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


# Why Vega-Lite for the live chart, not Plotly: Streamlit (1.67) keys a Plotly chart's React element by a
# hash of its whole spec, so every poll with new data unmounts the chart and mounts a new one — measured in
# Chromium: the chart is blank for ~100-250 ms on each update, a visible flicker. A Vega-Lite chart without
# selections has no such id: the same spec with new rows updates the data in place (an append, since
# the EMA of old points never changes), so the lines simply grow.
def chart_frame(history: dict, names: list[str], smoothing: float):
    """Long-form rows (step, value, series, kind) for one panel — raw values and their EMA — in step
    order, so a poll with new log entries only appends rows."""
    import pandas as pd

    steps = history.get("step", [])
    n = min([len(steps)] + [len(history.get(name, [])) for name in names])
    series = {}
    for name in names:
        values = history.get(name, [])[:n]
        series[(LABELS[name], "smoothed")] = ema(values, smoothing) if smoothing > 0 else values
        if smoothing > 0:
            series[(LABELS[name], "raw")] = values
    rows = [(steps[i], ys[i], label, kind) for i in range(n) for (label, kind), ys in series.items()]
    return pd.DataFrame(rows, columns=["step", "value", "series", "kind"])


def chart_spec(title: str, names: list[str], y_range, x_max: int, equilibrium: bool = False) -> dict:
    """A fixed frame (x over the whole run, fixed height) with faint raw lines under bold EMA lines."""
    color = {"field": "series", "type": "nominal", "title": None,
             "scale": {"domain": [LABELS[n] for n in names], "range": [COLORS[n] for n in names]},
             "legend": {"orient": "top", "direction": "horizontal", "labelFontSize": 15, "symbolStrokeWidth": 4,
                        "symbolType": "stroke", "symbolSize": 300}}
    x = {"field": "step", "type": "quantitative", "title": "step", "scale": {"domain": [0, x_max], "nice": False},
         "axis": {"labelFontSize": 13, "titleFontSize": 14}}
    y = {"field": "value", "type": "quantitative", "title": None, "axis": {"labelFontSize": 13},
         "scale": {"domain": y_range, "clamp": True} if y_range else {"zero": False}}
    layers = [
        {"transform": [{"filter": "datum.kind === 'raw'"}],
         "mark": {"type": "line", "strokeWidth": 1, "opacity": 0.3, "clip": True},
         "encoding": {"x": x, "y": y, "color": {**color, "legend": None}, "detail": {"field": "series"}}},
        {"transform": [{"filter": "datum.kind === 'smoothed'"}],
         "mark": {"type": "line", "strokeWidth": 3.5, "clip": True, "point": False},
         "encoding": {"x": x, "y": y, "color": color,
                      "tooltip": [{"field": "series"}, {"field": "step"}, {"field": "value", "format": ".3f"}]}},
    ]
    if equilibrium:       # D(x) = D(G(z)) = 1/2 is where the game settles in theory
        layers.append({"mark": {"type": "rule", "strokeDash": [4, 4], "color": "#868E96"},
                       "encoding": {"y": {"datum": 0.5}}})
    return {"title": {"text": title, "fontSize": 17, "anchor": "start"}, "height": 220, "layer": layers,
            "autosize": {"type": "fit-x", "contains": "padding"},       # the height is the plot's own
            "resolve": {"legend": {"color": "independent"}},            # the legend shows the bold lines
            "config": {"legend": {"labelLimit": 300}}}


@st.cache_resource(max_entries=128, show_spinner=False)
def live_chart(run_id: str, model_name: str, points: int, smoothing: float, target_step: int, _history: dict) -> list:
    """[(spec, rows)] per panel for a run with `points` log entries; built once per new log entry and
    shared by every viewer (Streamlit only reads them). The panels follow the model's metrics, so the
    frame drawn before the first log entry is already the right one."""
    from aigc import MODELS

    family = "vae" if "recon" in MODELS[model_name][1].metric_names else "gan"
    steps = _history.get("step", [])
    x_max = max(target_step, steps[-1] if steps else 1)
    return [(chart_spec(title, names, y_range, x_max, equilibrium=family == "gan" and i == 1),
             chart_frame(_history, names, smoothing))
            for i, (title, names, y_range) in enumerate(PANELS[family])]


@st.cache_data(max_entries=128, show_spinner=False)
def grid_png(pixels: np.ndarray, scale: int = 3) -> bytes:
    """PNG of an (n, 28, 28) uint8 sample set as an 8-wide grid, upscaled nearest-neighbour. Cached by the
    pixels themselves (hashing 50 KB: ~0.1 ms), not by run and step: a grid redrawn at the same step, as a
    VAE's is when its prior is fitted, must not come back as the old picture."""
    return png_bytes(grid(pixels, nrow=8, scale=scale))


@st.cache_data(max_entries=128, show_spinner=False)
def quick_score(pixels: np.ndarray) -> dict | None:
    """The metrics classifier's verdict on a sample grid, or None when aigc.metrics or its classifier
    is not available (the badge is then simply not shown)."""
    try:
        import torch
        from aigc.metrics import quick_score as score
        images = torch.from_numpy(np.ascontiguousarray(pixels)).float().div(127.5).sub(1).unsqueeze(1)
        return score(images)
    except Exception:          # a badge, not a feature: any failure just hides it
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


@st.cache_resource(show_spinner=False)
def warm_up() -> bool:
    """Once per server, in the background: read MNIST and the metrics classifier, so the first Start
    does not wait for them (~2-3 s on a small CPU) and the first live score is instant."""
    import threading

    # torchvision (and the torch._dynamo it pulls in) is imported here, on the script thread, not in the
    # worker: importing it calls ast.parse many times, and on CPython 3.11 two threads in ast.parse at
    # once can fail with "SystemError: AST constructor recursion depth mismatch" (cpython gh-106905), as
    # Streamlit's first parse of a page script did against a background import.
    import torchvision.datasets  # noqa: F401

    def work():
        try:
            from aigc import load_mnist
            load_mnist(train=True)
            from aigc.metrics import load_classifier
            load_classifier()
        except Exception:        # no data yet / no classifier: the run or the badge reports it later
            pass

    threading.Thread(target=work, name="aigc-warm-up", daemon=True).start()
    return True


def blank_grid(n: int = 64) -> bytes:
    """A dark placeholder the size of the sample grid, so the page does not jump when samples arrive."""
    return grid_png(np.zeros((n, 28, 28), dtype=np.uint8))


# ---- the 2-D latent map (Explore) ---------------------------------------------------------------------
# Vega-Lite for the same reason as the loss chart: moving the "you are here" cross changes only the data,
# so the map updates in place (keyed, selection-enabled Vega charts keep their identity in Streamlit 1.67),
# where a Plotly map would be torn down and rebuilt with its 2,000 points on every slider move.
MAP_RANGE = 4.0


def latent_map_spec() -> dict:
    axis = {"labelFontSize": 13, "titleFontSize": 16}
    scale = {"domain": [-MAP_RANGE, MAP_RANGE], "nice": False, "clamp": True}
    return {
        "height": 460,
        "layer": [
            {"transform": [{"filter": "datum.kind === 'digit'"}],
             "params": [{"name": "pick", "select": {"type": "point", "on": "click", "nearest": True,
                                                     "fields": ["z1", "z2"], "clear": False}}],
             "mark": {"type": "circle", "size": 28, "opacity": 0.7},
             "encoding": {
                 "x": {"field": "z1", "type": "quantitative", "title": "z₁", "scale": scale, "axis": axis},
                 "y": {"field": "z2", "type": "quantitative", "title": "z₂", "scale": scale, "axis": axis},
                 "color": {"field": "digit", "type": "nominal", "title": "digit",
                           "scale": {"scheme": "category10"},
                           "legend": {"labelFontSize": 15, "titleFontSize": 15, "symbolSize": 150}},
                 "tooltip": [{"field": "digit", "title": "test digit"}]}},
            {"transform": [{"filter": "datum.kind === 'you'"}],
             "mark": {"type": "point", "shape": "cross", "size": 500, "filled": True, "color": "black",
                      "stroke": "white", "strokeWidth": 1.5},
             "encoding": {"x": {"field": "z1", "type": "quantitative", "scale": scale},
                          "y": {"field": "z2", "type": "quantitative", "scale": scale}}},
        ],
    }


@st.cache_resource(max_entries=4, show_spinner=False)
def _map_digits(model_key: str, _coords: np.ndarray, _digits: np.ndarray):
    import pandas as pd

    return pd.DataFrame({"z1": _coords[:, 0], "z2": _coords[:, 1], "digit": _digits.astype(str), "kind": "digit"})


def latent_map_rows(model_key: str, coords: np.ndarray, digits: np.ndarray, point: tuple[float, float]):
    """The encoded test digits plus one row for the point being decoded."""
    import pandas as pd

    you = pd.DataFrame({"z1": [point[0]], "z2": [point[1]], "digit": [""], "kind": ["you"]})
    return pd.concat([_map_digits(model_key, coords, digits), you], ignore_index=True)


def map_pick(state) -> tuple[float, float] | None:
    """The (z1, z2) of the dot clicked on the map, from the chart's selection state, or None."""
    try:
        picked = state["selection"]["pick"]
    except (KeyError, TypeError):
        return None
    if isinstance(picked, list) and picked and "z1" in picked[0]:
        return float(picked[0]["z1"]), float(picked[0]["z2"])
    return None


def metrics_available() -> bool:
    """Whether aigc.metrics (the digit classifier behind the quality scores) can be imported."""
    try:
        import aigc.metrics  # noqa: F401
        return True
    except Exception:
        return False


def class_histogram_spec() -> dict:
    """Ten bars: how many samples the classifier reads as each digit (a flat row = every digit drawn)."""
    return {"height": 110, "mark": {"type": "bar", "color": "#4C6EF5"},
            "encoding": {"x": {"field": "digit", "type": "ordinal", "title": None,
                               "axis": {"labelAngle": 0, "labelFontSize": 14}},
                         "y": {"field": "share", "type": "quantitative", "title": None,
                               "axis": {"format": "%", "labelFontSize": 12, "tickCount": 3}},
                         "tooltip": [{"field": "digit"}, {"field": "share", "format": ".1%"}]}}


def class_histogram_rows(class_hist: list):
    import pandas as pd

    total = max(1, sum(class_hist))
    return pd.DataFrame({"digit": [str(d) for d in range(len(class_hist))], "share": [c / total for c in class_hist]})
