"""Vega-Lite chart specifications and their rows: a run's live panels (as its model declares them), the
2-D latent map, and the classifier's histogram of a model's samples.

Why Vega-Lite, not Plotly: Streamlit (1.67) keys a Plotly chart's React element by a hash of its whole
spec, so every poll with new data unmounts the chart and mounts a new one, which the browser shows as a
blank flash on each update. A Vega-Lite chart without selections has no such id: the same spec with new
rows updates the data in place (an append, since the smoothed values of old points never change), so
the lines simply grow; a keyed chart with a selection (the latent map) keeps its identity too.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import streamlit as st

from aigc import MODELS, Panel

LEGEND = {"orient": "top", "direction": "horizontal", "labelFontSize": 15, "symbolStrokeWidth": 4,
          "symbolType": "stroke", "symbolSize": 300}


def ema(values: list[float], alpha: float) -> list[float]:
    """Exponential moving average (TensorBoard's smoothing), alpha in [0, 1)."""
    out, acc = [], None
    for v in values:
        acc = v if acc is None else alpha * acc + (1 - alpha) * v
        out.append(acc)
    return out


# ---- a run's live panels -----------------------------------------------------------------------------------
MAX_POINTS = 200        # per line: about one per 3 px of a chart on a projector


def spread(n: int, max_points: int) -> list[int]:
    """At most max_points indices of n, evenly spread, the first and the last among them."""
    return sorted({round(i * (n - 1) / (max_points - 1)) for i in range(max_points)}) if n > max_points else list(range(n))


def panel_rows(history: dict, panel: Panel, smoothing: float, max_points: int = MAX_POINTS) -> dict[str, list]:
    """Long-form rows (step, value, series, kind) for one panel, as columns: raw values and their EMA (over
    every log entry), in step order, at most `max_points` evenly spread log entries per line, the last always
    among them. Every viewer's poll sends these rows again, so they stay the same size however long the run:
    a 3,000-step run sent 240 KB per poll with every entry, 30 viewers 10 MB/s."""
    steps = history.get("step", [])
    n = min([len(steps)] + [len(history.get(s.metric, [])) for s in panel.series])
    lines = {}
    for s in panel.series:
        values = history.get(s.metric, [])[:n]
        lines[(s.label, "smoothed")] = ema(values, smoothing) if smoothing > 0 else values
        if smoothing > 0:
            lines[(s.label, "raw")] = values
    shown = spread(n, max_points)
    return {"step": [steps[i] for i in shown for _ in lines], "value": [ys[i] for i in shown for ys in lines.values()],
            "series": [label for _ in shown for label, _ in lines], "kind": [kind for _ in shown for _, kind in lines]}


def panel_spec(panel: Panel, x_max: int) -> dict:
    """A fixed frame (x over the whole run, fixed height) with faint raw lines under bold EMA lines, and a
    dashed vertical line where a setting changed (rows of kind 'event')."""
    color = {"field": "series", "type": "nominal", "title": None, "legend": LEGEND,
             "scale": {"domain": [s.label for s in panel.series], "range": [s.color for s in panel.series]}}
    x = {"field": "step", "type": "quantitative", "title": "step", "scale": {"domain": [0, x_max], "nice": False},
         "axis": {"labelFontSize": 13, "titleFontSize": 14}}
    y = {"field": "value", "type": "quantitative", "title": None, "axis": {"labelFontSize": 13},
         "scale": {"domain": list(panel.y_range), "clamp": True} if panel.y_range else {"zero": False}}
    layers = [
        {"transform": [{"filter": "datum.kind === 'raw'"}],
         "mark": {"type": "line", "strokeWidth": 1, "opacity": 0.3, "clip": True},
         "encoding": {"x": x, "y": y, "color": {**color, "legend": None}, "detail": {"field": "series"}}},
        {"transform": [{"filter": "datum.kind === 'smoothed'"}],
         "mark": {"type": "line", "strokeWidth": 3.5, "clip": True, "point": False},
         "encoding": {"x": x, "y": y, "color": color,
                      "tooltip": [{"field": "series"}, {"field": "step"}, {"field": "value", "format": ".3f"}]}},
    ]
    if panel.reference is not None:
        layers.append({"mark": {"type": "rule", "strokeDash": [4, 4], "color": "#868E96"},
                       "encoding": {"y": {"datum": panel.reference}}})
    layers.append(EVENT_LAYER)
    return {"title": {"text": panel.title, "fontSize": 17, "anchor": "start"}, "height": 220, "layer": layers,
            "autosize": {"type": "fit-x", "contains": "padding"},       # the height is the plot's own
            "resolve": {"legend": {"color": "independent"}},            # the legend shows the bold lines
            "config": {"legend": {"labelLimit": 300}}}


EVENT_LAYER = {"transform": [{"filter": "datum.kind === 'event'"}],
               "mark": {"type": "rule", "strokeDash": [6, 3], "strokeWidth": 2, "color": "#212529"},
               "encoding": {"x": {"field": "step", "type": "quantitative"},
                            "tooltip": [{"field": "step"}, {"field": "series", "title": "changed"}]}}


def with_events(rows: dict[str, list], marks: tuple) -> dict[str, list]:
    """rows and one row per (step, text) mark of a settings change (kind 'event', its text in 'series'),
    drawn by EVENT_LAYER."""
    return {"step": rows["step"] + [step for step, _ in marks], "value": rows["value"] + [None] * len(marks),
            "series": rows["series"] + [text for _, text in marks], "kind": rows["kind"] + ["event"] * len(marks)}


@st.cache_resource(max_entries=128, show_spinner=False)
def live_panels(run_id: str, model_name: str, points: int, smoothing: float, target_step: int,
                _history: dict, marks: tuple = ()) -> list[dict]:
    """A chart (a Vega-Lite spec with its rows inside, see with_rows) for each panel the model declares, for
    a run with `points` log entries: built once per new log entry and shared by every viewer (Streamlit only
    reads them). The frame drawn before the first log entry is already the right one."""
    steps = _history.get("step", [])
    x_max = max(target_step, steps[-1] if steps else 1)
    return [with_rows(panel_spec(panel, x_max), with_events(panel_rows(_history, panel, smoothing), marks))
            for panel in MODELS[model_name][1].panels]


# ---- what the classifier reads in a run's samples, snapshot by snapshot ---------------------------------------
def coverage_spec(x_max: int) -> dict:
    """A heat strip: one row per digit, one cell per snapshot, darker where more of the grid reads as that
    digit. A collapse shows as rows fading out."""
    return {"title": {"text": "Digits in the grid, as the classifier reads them", "fontSize": 17, "anchor": "start"},
            "height": 200, "autosize": {"type": "fit-x", "contains": "padding"},
            "mark": {"type": "rect", "clip": True},
            "encoding": {
                "x": {"field": "step", "type": "quantitative", "title": "step",
                      "scale": {"domain": [0, x_max], "nice": False}, "axis": {"labelFontSize": 13, "titleFontSize": 14}},
                "x2": {"field": "until"},
                "y": {"field": "digit", "type": "ordinal", "title": None,
                      "axis": {"labelFontSize": 12, "labelOverlap": False}},
                "color": {"field": "share", "type": "quantitative", "title": "share",
                          "scale": {"scheme": "blues", "domain": [0, 0.25], "clamp": True},
                          "legend": {"format": "%", "labelFontSize": 12, "orient": "right"}},
                "tooltip": [{"field": "digit"}, {"field": "step"}, {"field": "share", "format": ".0%"}]}}


def coverage_rows(readings: dict) -> dict[str, list]:
    """(step, until, digit, share): each snapshot's shares (at most MAX_POINTS snapshots, evenly spread), each
    cell reaching to the next one shown."""
    shown = spread(len(readings.get("step", [])), MAX_POINTS)
    steps, shares = [readings["step"][i] for i in shown], [readings["shares"][i] for i in shown]
    last = [steps[-1] + (steps[-1] - steps[-2] if len(steps) > 1 else 1)] if steps else []
    cells = [(s, nxt, str(d), share) for s, nxt, row in zip(steps, steps[1:] + last, shares) for d, share in enumerate(row)]
    return {name: [cell[i] for cell in cells] for i, name in enumerate(("step", "until", "digit", "share"))}


QUALITY_SERIES = {"confidence": ("confidence", "#4C6EF5"), "precision": ("precision", "#2B8A3E"),
                  "recall": ("recall", "#F03E3E")}


def quality_spec(x_max: int) -> dict:
    color = {"field": "series", "type": "nominal", "title": None, "legend": {**LEGEND, "labelFontSize": 13},
             "scale": {"domain": [label for label, _ in QUALITY_SERIES.values()],
                       "range": [c for _, c in QUALITY_SERIES.values()]}}
    x = {"field": "step", "type": "quantitative", "title": "step", "scale": {"domain": [0, x_max], "nice": False},
         "axis": {"labelFontSize": 13, "titleFontSize": 14}}
    y = {"field": "value", "type": "quantitative", "title": None, "scale": {"domain": [0, 1]},
         "axis": {"labelFontSize": 13}}
    return {"title": {"text": "Quality and variety of the samples", "fontSize": 17, "anchor": "start"},
            "height": 170, "autosize": {"type": "fit-x", "contains": "padding"},
            "layer": [{"mark": {"type": "line", "strokeWidth": 3, "point": True, "clip": True},
                       "encoding": {"x": x, "y": y, "color": color,
                                    "tooltip": [{"field": "series"}, {"field": "step"},
                                                {"field": "value", "format": ".2f"}]}},
                      EVENT_LAYER],
            "config": {"legend": {"labelLimit": 300}}}


def quality_rows(readings: dict, marks: tuple) -> dict[str, list]:
    steps = readings.get("step", [])
    points = [(steps[i], readings[key][i], label) for key, (label, _) in QUALITY_SERIES.items()
              for i in spread(len(steps), MAX_POINTS) if readings[key][i] is not None]
    return with_events({"step": [p[0] for p in points], "value": [p[1] for p in points],
                        "series": [p[2] for p in points], "kind": ["line"] * len(points)}, marks)


@st.cache_resource(max_entries=128, show_spinner=False)
def reading_panels(run_id: str, readings: int, target_step: int, _readings: dict, marks: tuple = ()) -> list[dict]:
    """The digit strip and the quality chart (specs with their rows inside) for a run with `readings`
    readings (none yet: their empty frames), built once per new reading and shared by every viewer, as
    live_panels are."""
    steps = _readings.get("step", [])
    x_max = max(target_step, steps[-1] if steps else 1)
    return [with_rows(coverage_spec(x_max), coverage_rows(_readings), ("digit",)),
            with_rows(quality_spec(x_max), quality_rows(_readings, marks))]


# ---- a family of branches on one chart -------------------------------------------------------------------------
BRANCH_COLOURS = ("#4C6EF5", "#F03E3E", "#2B8A3E", "#F59F00", "#7048E8", "#0CA678", "#E64980", "#495057")


def branch_label(index: int, run_id: str, branch_step: int | None) -> str:
    return f"run {run_id}" if branch_step is None else f"branch {index}: {run_id}, from step {branch_step:,}"


def family_spec(panel: Panel, x_max: int, labels: list[str]) -> dict:
    """One panel's metrics for every branch: colour = branch, dash = metric."""
    x = {"field": "step", "type": "quantitative", "title": "step", "scale": {"domain": [0, x_max], "nice": False},
         "axis": {"labelFontSize": 13, "titleFontSize": 14}}
    y = {"field": "value", "type": "quantitative", "title": None, "axis": {"labelFontSize": 13},
         "scale": {"domain": list(panel.y_range), "clamp": True} if panel.y_range else {"zero": False}}
    return {"title": {"text": panel.title, "fontSize": 17, "anchor": "start"}, "height": 220,
            "autosize": {"type": "fit-x", "contains": "padding"},
            "mark": {"type": "line", "strokeWidth": 3, "clip": True},
            "encoding": {"x": x, "y": y,
                         "color": {"field": "branch", "type": "nominal", "title": None,
                                   "legend": {**LEGEND, "labelFontSize": 13, "direction": "vertical"},
                                   "scale": {"domain": labels, "range": list(BRANCH_COLOURS[:len(labels)])}},
                         "strokeDash": {"field": "series", "type": "nominal", "title": None,
                                        "legend": {**LEGEND, "labelFontSize": 13}},
                         "detail": {"field": "line"},
                         "tooltip": [{"field": "branch"}, {"field": "series"}, {"field": "step"},
                                     {"field": "value", "format": ".3f"}]},
            "config": {"legend": {"labelLimit": 400}}}


def family_rows(members: list[tuple[str, int | None, dict]], panel: Panel, smoothing: float) -> pd.DataFrame:
    """members: (label, branch step or None, history). Each branch is drawn from the step it left its parent,
    smoothed over its whole history (so its line starts where the parent's was)."""
    points = []
    for label, start, history in members:
        rows = panel_rows(history, panel, smoothing)
        points += [(step, value, series, label) for step, value, series, kind in
                   zip(rows["step"], rows["value"], rows["series"], rows["kind"])
                   if kind == "smoothed" and step >= (start or 0)]
    return pd.DataFrame(points, columns=["step", "value", "series", "branch"]).assign(
        line=lambda rows: rows["branch"] + rows["series"])


def with_rows(spec: dict, rows: dict[str, list], categories: tuple = ("series", "kind")) -> dict:
    """The spec with its rows (columns of equal length) inside, as a named dataset already in Arrow's IPC
    format, with the repeated names in `categories` stored once each. Streamlit sends such bytes as they
    are; given a table or a DataFrame it serialises it again for every viewer's every poll, which with 30
    viewers of a run was the page scripts' largest cost (bench/audience.py, py-spy). Streamlit copies a spec
    before it takes the dataset out, so one spec serves every viewer. Built from the lists directly: a
    watched run rebuilds its charts at every new log entry, and through a DataFrame that took the owner's
    poll about 2.5 ms more of its 20 (bench/audience.py's run, 1 tab)."""
    columns = {}
    for name, values in rows.items():
        if name in categories:
            names = pa.array(values, type=pa.string()).dictionary_encode()
            columns[name] = pa.DictionaryArray.from_arrays(names.indices.cast(pa.int16()), names.dictionary)
        else:
            columns[name] = pa.array(values, from_pandas=True)      # NaN -> null: Vega-Lite skips it
    table = pa.table(columns)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return {**spec, "data": {"name": "rows"}, "datasets": {"rows": sink.getvalue().to_pybytes()}}


# ---- the 2-D latent map ---------------------------------------------------------------------------------------
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
            {"transform": [{"filter": "datum.kind === 'path'"}],
             "mark": {"type": "line", "strokeWidth": 2, "color": "#212529", "opacity": 0.75, "clip": True},
             "encoding": {"x": {"field": "z1", "type": "quantitative", "scale": scale},
                          "y": {"field": "z2", "type": "quantitative", "scale": scale},
                          "detail": {"field": "digit"}, "order": {"field": "order"}}},
            {"transform": [{"filter": "datum.kind === 'you'"}],
             "mark": {"type": "point", "shape": "cross", "size": 500, "filled": True, "color": "black",
                      "stroke": "white", "strokeWidth": 1.5},
             "encoding": {"x": {"field": "z1", "type": "quantitative", "scale": scale},
                          "y": {"field": "z2", "type": "quantitative", "scale": scale}}},
        ],
    }


@st.cache_resource(max_entries=4, show_spinner=False)
def _map_digits(model_key: str, _coords: np.ndarray, _digits: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"z1": _coords[:, 0], "z2": _coords[:, 1], "digit": _digits.astype(str), "kind": "digit"})


def latent_map_rows(model_key: str, coords: np.ndarray, digits: np.ndarray, point: tuple[float, float],
                    paths: np.ndarray | None = None) -> pd.DataFrame:
    """The encoded test digits, the sampling paths (k + 1, 10, 2) of a model that has them (one per digit,
    drawn in step order), and one row for the point being decoded."""
    you = pd.DataFrame({"z1": [point[0]], "z2": [point[1]], "digit": [""], "kind": ["you"]})
    rows = [_map_digits(model_key, coords, digits), you]
    if paths is not None:
        steps, n, _ = paths.shape
        rows.append(pd.DataFrame({"z1": paths[..., 0].ravel(), "z2": paths[..., 1].ravel(),
                                  "digit": np.tile(np.arange(n).astype(str), steps),
                                  "order": np.repeat(np.arange(steps), n), "kind": "path"}))
    return pd.concat(rows, ignore_index=True)


def map_pick(state) -> tuple[float, float] | None:
    """The (z1, z2) of the dot clicked on the map, from the chart's selection state, or None."""
    try:
        picked = state["selection"]["pick"]
    except (KeyError, TypeError):
        return None
    if isinstance(picked, list) and picked and "z1" in picked[0]:
        return float(picked[0]["z1"]), float(picked[0]["z2"])
    return None


# ---- what the classifier reads -----------------------------------------------------------------------------
def class_histogram_spec() -> dict:
    """Ten bars: how many samples the classifier reads as each digit (a flat row = every digit drawn)."""
    return {"height": 110, "mark": {"type": "bar", "color": "#4C6EF5"},
            "encoding": {"x": {"field": "digit", "type": "ordinal", "title": None,
                               "axis": {"labelAngle": 0, "labelFontSize": 14}},
                         "y": {"field": "share", "type": "quantitative", "title": None,
                               "axis": {"format": "%", "labelFontSize": 12, "tickCount": 3}},
                         "tooltip": [{"field": "digit"}, {"field": "share", "format": ".1%"}]}}


def class_histogram_rows(class_hist: list) -> pd.DataFrame:
    total = max(1, sum(class_hist))
    return probability_rows([c / total for c in class_hist])


def probability_rows(shares) -> pd.DataFrame:
    """The same bars from a share per digit: of samples, or the classifier's probabilities for one image."""
    return pd.DataFrame({"digit": [str(d) for d in range(len(shares))], "share": [float(s) for s in shares]})


# ---- a diffusion model's noise schedule -----------------------------------------------------------------------
def schedule_spec() -> dict:
    """Signal and noise scale against the noise level t (Section.FORWARD_PROCESS)."""
    return {"height": 200, "mark": {"type": "line", "strokeWidth": 3},
            "encoding": {"x": {"field": "t", "type": "quantitative", "title": "noise level t",
                               "axis": {"labelFontSize": 13, "titleFontSize": 14}},
                         "y": {"field": "scale", "type": "quantitative", "title": None, "axis": {"labelFontSize": 13}},
                         "color": {"field": "series", "type": "nominal", "title": None, "legend": LEGEND,
                                   "scale": {"range": ["#2B8A3E", "#F03E3E"]}},
                         "tooltip": [{"field": "series"}, {"field": "t", "format": ".2f"},
                                     {"field": "scale", "format": ".3f"}]}}


def schedule_rows(t: np.ndarray, alpha: np.ndarray, sigma: np.ndarray) -> pd.DataFrame:
    return pd.concat([pd.DataFrame({"t": t, "scale": alpha, "series": "α(t): how much of the digit is left"}),
                      pd.DataFrame({"t": t, "scale": sigma, "series": "σ(t): how much noise is mixed in"})],
                     ignore_index=True)
