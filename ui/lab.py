"""The Train page's lab bench around a live run: the coach's diagnoses and remedies, the classifier's
readings over time, settings changed mid-run, slow motion, the time machine and the branches' chart."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import streamlit as st
import torch

from aigc import MODELS, PRESETS, Status, TrainConfig, live_values
from aigc.drawing import nearest_training_digits
from aigc.images import grid
from aigc.runs import Run, RunRegistry, RunView

from . import cached, charts, session, widgets


def preset_picker(registry: RunRegistry) -> None:
    """Lessons: a run that shows one failure, then its cure, or the healthy recipe, started in one click."""
    names = list(PRESETS)
    name = st.selectbox("Or start a lesson", names, format_func=lambda n: PRESETS[n].label, key="lesson",
                        index=None, placeholder="Pick a lesson: a healthy run, or a failure and its cure")
    if name is None:
        return
    preset = PRESETS[name]
    st.caption(preset.story)
    if st.button("Start this lesson", icon=":material/school:", key="start_lesson"):
        try:
            config = TrainConfig.for_model(preset.model, model_args=dict(preset.model_args), **preset.settings)
            new = registry.submit(config, owner=session.owner(), pause_on_warning=True,
                                  pause_on=(preset.shows,) if preset.shows else ())
        except (ValueError, RuntimeError) as exc:
            st.error(f"Could not start: {exc}")
        else:
            st.query_params.update(run=new.id, key=new.key)
            session.remember_run(new.id)
            st.rerun()


def coach(registry: RunRegistry, run: Run, view: RunView, can_control: bool) -> None:
    """The coach's diagnoses, each with its evidence, its reason and (for the run's owner) its remedy."""
    if view.status is Status.PAUSED and view.paused_for:
        st.info(f"The coach paused the run: **{view.paused_for}**. Read why below, apply the remedy, then Resume.",
                icon=":material/pause_circle:")
    if can_control and view.active:
        run.pause_on_warning = st.toggle("Pause when the coach warns", value=view.pause_on_warning,
                                         key=f"pause-on-warning-{view.id}",
                                         help="Gives the class time to read a warning and act before it is too late.")
    offered = []
    for d in view.diagnoses:
        box = st.container(border=True)
        icon = ":material/lightbulb:" if d.severity == "info" else ":material/warning:"
        box.markdown(f"{icon} **{d.title}**  \n{d.evidence}")
        box.caption(f"Why: {d.why}")
        if d.remedy is None:
            continue
        if d.remedy in offered:            # two symptoms of one cause: one button
            box.caption(f"The remedy above ({d.remedy.label.lower()}) treats this too.")
            continue
        offered.append(d.remedy)
        if not can_control:
            box.caption(f"Remedy the run's owner can apply: {d.remedy.label.lower()}. {d.remedy.effect}")
        elif box.button(d.remedy.label, key=f"remedy-{d.kind}", type="primary", help=d.remedy.effect,
                        disabled=not view.active or view.status is Status.FINISHING):
            if d.remedy.stop:
                registry.stop(run, "stopped on the coach's advice: it had stopped improving; its weights were kept")
            else:
                try:
                    registry.change(run, **d.remedy.changes)
                except ValueError as exc:
                    box.error(str(exc))
                else:      # a toast: once applied, the coach drops this diagnosis, and its box, at the next poll
                    st.toast(f"Applied at the next step: {d.remedy.effect}", icon=":material/check_circle:")


def readings(view: RunView) -> None:
    """What the classifier reads in the grid at each snapshot, and precision and recall over time. A live run
    draws their frames before the first reading, as it does its loss charts, so that no chart appears mid-run
    and pushes the page down; an ended run without readings draws none."""
    if not view.readings.get("step") and not view.active:
        return
    for chart in charts.reading_panels(view.id, len(view.readings.get("step", [])), view.target_step, view.readings,
                                       view.marks):
        st.vega_lite_chart(spec=chart, width="stretch")
    st.caption("Confidence: how sure the classifier is of the grid's digits. Precision: the share of 256 samples that "
               "look like real digits; recall: the share of 256 real digits the samples come close to (Kynkäänniemi "
               "et al. 2019, in the classifier's features), measured every 20th snapshot.")


def grid_reading(view: RunView, step: int) -> dict | None:
    """The classifier's reading of the grid drawn at `step`, as the run's monitor made it while training
    (as cached.quick_score gives it), or None if it has none for that grid."""
    r = view.readings
    if not r.get("step") or r["step"][-1] != step or r["digits_ok"][-1] is None:
        return None
    return {"confidence": r["confidence"][-1], "present": sum(1 for share in r["shares"][-1] if share > 0),
            "digits_ok": r["digits_ok"][-1]}


def live_settings(registry: RunRegistry, run: Run, view: RunView) -> None:
    """The owner's controls for the settings a model can change while it trains, drawn only while their
    expander is open: closed (as it starts), it costs the owner's every poll one element instead of a dozen."""
    box = st.expander("Change settings while it trains", key=f"live-settings-{view.id}", on_change="rerun")
    if not box.open:
        return
    with box:
        st.caption("Applied at the next step; the run keeps its step, weights and charts, and the charts mark "
                   "the step with a dashed line.")
        columns = st.columns(min(3, max(1, len(view.live_settings))))
        chosen = {s.name: widgets.setting_input(s, key=f"live-{view.id}-{s.name}-{s.default}", where=columns[i % 3])
                  for i, s in enumerate(view.live_settings)}
        now = {s.name: s.default for s in view.live_settings}
        changes = {k: v for k, v in chosen.items() if v != now[k]}
        if st.button("Apply", key=f"apply-{view.id}", disabled=not changes):
            try:
                registry.change(run, **changes)
            except ValueError as exc:
                st.error(str(exc))


def slow_motion(registry: RunRegistry, run: Run, view: RunView) -> None:
    """For a paused run: a step, ten steps, or one part's update alone, with the grid redrawn after each."""
    st.markdown("**Slow motion** — the grid and charts redraw after each:")
    buttons = [("1 step", dict(steps=1)), ("10 steps", dict(steps=10))] + [
        (label[0].upper() + label[1:], dict(phase=phase)) for phase, label in view.update_phases.items()]
    for column, (label, request) in zip(st.columns(len(buttons)), buttons):
        if column.button(label, key=f"slow-{label}", width="stretch"):
            registry.advance(run, **request)
    if view.last_log.get("update"):          # what the one update reported, in its panels' words
        series = [x for panel in MODELS[view.model][1].panels for x in panel.series]
        st.caption(f"After {view.update_phases.get(view.last_log['update'], 'that update')}: " + ", ".join(
            f"{x.label} {view.last_log[x.metric]:.3f}" for x in series if x.metric in view.last_log["updated"]))


def time_machine(registry: RunRegistry, run: Run, view: RunView) -> None:
    """Branch from here: a new run from a kept state, with the settings changed."""
    st.subheader("Time machine: branch from an earlier moment")
    if not view.branch_steps:
        st.caption("This run keeps no states to branch from any more (the server gave up the oldest ones).")
        return
    st.caption("Go back to any kept moment and train on from there with other settings. With the settings "
               "unchanged the branch repeats this run's steps exactly. The branches share one chart below.")
    left, right = st.columns([2, 3])
    with left:
        step = st.select_slider("Branch from step", options=view.branch_steps, value=view.branch_steps[-1],
                                key=f"branch-step-{view.id}")
        point = run.branch_point(step)
        st.image(cached.grid_png(point.grid), width="stretch", caption=f"the grid at step {step:,}",
                 output_format="PNG")
    with right:
        at_point = live_values(point.state, view.live_settings)
        settings = [replace(s, default=at_point[s.name]) for s in view.live_settings]
        chosen = {s.name: widgets.setting_input(s, key=f"branch-{view.id}-{step}-{s.name}") for s in settings}
        changes = {k: v for k, v in chosen.items() if v != at_point[k]}
        labels = {s.name: s.label for s in settings}
        st.caption("Changed: " + (", ".join(f"{labels[k]} {at_point[k]:g} → {v:g}" for k, v in changes.items())
                                  or "nothing (an exact replay)"))
        if view.active:
            st.caption("Branching stops this run first (its weights are kept); the branch takes its place.")
        if st.button("Branch from here", icon=":material/fork_right:", type="primary", key=f"branch-{view.id}"):
            try:
                new = registry.branch(run, step, changes, owner=session.owner())
            except (ValueError, RuntimeError) as exc:
                st.error(str(exc))
            else:
                session.remember_key(new.id, new.key)
                st.query_params.update(run=new.id, key=new.key)
                session.remember_run(new.id)
                st.rerun()


def branches(registry: RunRegistry, run: Run, view: RunView, smoothing: float) -> None:
    """All the runs branched from one another on one chart per panel, coloured by branch, and their grids."""
    family = registry.family(run)
    if len(family) < 2:
        return
    st.subheader("Branches")
    views = [registry.view(r) for r in family]
    labels = [charts.branch_label(i, v.id, v.branch_step) for i, v in enumerate(views)]
    members = [(label, v.branch_step, v.history) for label, v in zip(labels, views)]
    x_max = max(v.target_step for v in views)
    for panel in MODELS[view.model][1].panels:
        st.vega_lite_chart(charts.family_rows(members, panel, smoothing), charts.family_spec(panel, x_max, labels),
                           width="stretch")
    for column, v, label in zip(st.columns(min(4, len(views))) * ((len(views) + 3) // 4), views, labels):
        with column:
            if v.grid is not None:
                st.image(cached.grid_png(v.grid), width="stretch", output_format="PNG",
                         caption=f"{label} · step {v.step:,} · {v.status}" + (" (this page)" if v.id == view.id else ""))
            key = session.known_key(v.id)
            st.page_link("pages/train.py", label=f"Open {v.id}", icon=":material/open_in_new:",
                         query_params={"run": v.id, **({"key": key} if key else {})})


def copy_check(pixels) -> None:
    """Pick a sample of the grid and see the training digits nearest to it: is the model copying?"""
    st.markdown("**Is it copying?** Pick a sample and compare it with the nearest of the 60,000 training digits.")
    index = st.number_input("Sample (1 is top left, row by row)", 1, len(pixels), 1, key="copy_index") - 1
    image = torch.from_numpy(pixels[index].astype(np.float32) / 127.5 - 1)[None, None]        # (1, 1, 28, 28)
    found = nearest_training_digits(image)
    both = torch.cat([image, found.images])
    widgets.image(grid(both, nrow=len(both), scale=3), width=90 * len(both), caption=(
        f"sample {index + 1}, then the nearest training digits: " + ", ".join(
            f"a {d} at {r:.1f}" for d, r in zip(found.labels, found.distances))
        + ". A real digit the model never saw (MNIST's test set) lies 3.4 to 11.9 from its nearest training digit "
          "(5th to 95th percentile, median 8.5); a copy would lie near 0."))
