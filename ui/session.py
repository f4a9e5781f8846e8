"""This browser tab: the runs it started or watched, the run its address names, the link to share a run,
and the checkpoints it can pick from."""
from __future__ import annotations

from pathlib import Path

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from aigc import list_checkpoints
from aigc.runs import Run, RunRegistry

from . import cached

MY_RUNS = "my_runs"          # session key: ids of the runs this tab has started or watched, newest last
MY_KEYS = "my_keys"          # session key: {run id: key} of the runs this tab started, to control its branches
SMOOTHING = "smoothing"      # session key: EMA factor of the loss charts


def addressed_run(registry: RunRegistry) -> tuple[Run | None, bool]:
    """The run named in the page address (?run=…) and whether this tab may control it (&key=…)."""
    run = registry.get(st.query_params.get("run"))
    if run is None:
        return None, False
    remember_run(run.id)          # Explore offers the runs this tab has seen, once they end
    can_control = run.opens_with(st.query_params.get("key", ""))
    if can_control:
        remember_key(run.id, st.query_params["key"])     # its branches' page links back with it
    return run, can_control


def remember_key(run_id: str, key: str) -> None:
    st.session_state.setdefault(MY_KEYS, {})[run_id] = key


def known_key(run_id: str) -> str | None:
    return st.session_state.get(MY_KEYS, {}).get(run_id)


def owner() -> str:
    """This browser session, as the run registry knows it: one place in the training queue each."""
    return get_script_run_ctx().session_id


def remember_run(run_id: str) -> None:
    runs = st.session_state.setdefault(MY_RUNS, [])
    if run_id not in runs:
        runs.append(run_id)


def share_url(run_id: str) -> str:
    """The read-only link to a run: this page's address plus ?run=<id> (no key)."""
    base = None
    try:
        base = st.context.url
    except Exception:          # not in a browser session (bare mode)
        pass
    return f"{base or ''}?run={run_id}"


def finished_runs(registry: RunRegistry) -> list[Run]:
    """This tab's runs that ended with weights (finished, stopped or diverged), newest first."""
    found = []
    for run_id in reversed(st.session_state.get(MY_RUNS, [])):
        run = registry.get(run_id)
        if run is not None:
            view = registry.view(run)
            if not view.active and view.has_weights:
                found.append(run)
    return found


def checkpoint_choices(registry: RunRegistry | None = None, model: str | None = None) -> dict[str, Path | Run]:
    """{label: path or run}: this tab's finished runs (in memory, not saved yet) when a registry is given,
    the shipped checkpoints, then the runs saved on this server; with `model`, only those of that model.
    cached.load() opens any of them."""
    choices: dict[str, Path | Run] = {}
    for run in finished_runs(registry) if registry is not None else ():
        view = registry.view(run)
        if model is None or view.model == model:
            choices[f"{view.model} run {run.id}, {view.step:,} steps (this session)"] = run
    for name, path in list_checkpoints(model=model).items():
        choices[f"{name} (shipped)"] = path
    for name, path in list_checkpoints(cached.runs_dir(), model=model).items():
        choices[f"{name} (saved run)"] = path
    return choices
