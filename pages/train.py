import streamlit as st

from aigc import MODELS, CheckpointError, Status, TrainConfig, format_duration, train_settings
from aigc.runs import watch_interval
from ui import cached, charts, lab, session, startup, widgets

startup.require_frame()

st.title("Train")
registry = cached.registry()
run, can_control = session.addressed_run(registry)
if st.query_params.get("run") and run is None:
    st.warning("That run is no longer on this server (it ended long ago and was forgotten). Start a new one.")


# ---- settings -------------------------------------------------------------------------------------
with st.expander("Model and settings", expanded=run is None):
    name = st.selectbox("Model", list(MODELS), format_func=lambda n: f"{n} — {MODELS[n][1].summary}",
                        key="train_model")
    choices = session.checkpoint_choices(registry, model=name)
    start_from = st.selectbox("Start from", ["scratch", *choices], key="train_start_from",
                              help="Continue training a checkpoint of this model instead of random weights; "
                                   "it keeps its own model settings.")
    # keyed per model, so that each model's widgets start from its own recipe
    chosen = {s.name: widgets.setting_input(s, key=f"{name}_{s.name}", where=column)
              for s, column in zip(train_settings(name), st.columns(4))}
    model_args = {s.name: widgets.setting_input(s, key=f"{name}_{s.name}", disabled=start_from != "scratch")
                  for s in MODELS[name][1].settings}
    base_model = MODELS[name][1].base_model          # a model trained on top of another one picks it here
    bases = session.checkpoint_choices(registry, model=base_model) if base_model else {}
    built_on = st.selectbox("Built on", list(bases), key=f"{name}_base", disabled=start_from != "scratch",
                            help=f"A {name} is trained on top of a trained {base_model}: a shipped one, one saved "
                                 f"on this server, or one you trained in this tab.") if base_model else None

    busy = can_control and registry.view(run).active                         # one live run per owner
    if st.button("Start", icon=":material/play_arrow:", type="primary", disabled=busy, key="start",
                 help="Stop the current run first." if busy else None):
        try:
            init = base = None
            if start_from == "scratch":
                config = TrainConfig.for_model(name, model_args=model_args, **chosen)
                base = cached.load(bases[built_on]).checkpoint if built_on else None
            else:
                init = cached.load(choices[start_from]).checkpoint
                config = TrainConfig.for_checkpoint(init, **chosen)
            new = registry.submit(config, init_checkpoint=init, base_checkpoint=base, owner=session.owner())
        except (ValueError, RuntimeError, CheckpointError, OSError) as exc:
            st.error(f"Could not start: {exc}")
        else:
            st.query_params.update(run=new.id, key=new.key)
            session.remember_run(new.id)
            st.rerun()
    lab.preset_picker(registry)

if run is None:
    st.info("Choose a model and press **Start**. The defaults are tuned to show digits quickly on a CPU.")
    st.stop()


# ---- the live run ---------------------------------------------------------------------------------
watcher = None if can_control else session.owner()         # a read-only tab counts towards the class's budget
registry.heartbeat(run, watcher)
watchers = registry.watching(run)
every = 1 if can_control else watch_interval(watchers)     # seconds between polls of a live run
share, smooth = st.columns([4, 1], vertical_alignment="bottom")
with share:
    if can_control:
        st.markdown("**Share this link so the class watches your run** (read-only: they see it live, "
                    "but cannot pause or stop it; everyone watching shares one training):")
        st.code(session.share_url(run.id), language=None)
    else:
        st.caption(f"Watching run `{run.id}` read-only." + (
            f" {watchers} tabs are watching it, so each one refreshes every {every} s: together "
            f"they leave the training its speed." if every > 1 else ""))
smooth.slider("Chart smoothing", 0.0, 0.95, 0.8, 0.05, key=session.SMOOTHING,
              help="Exponential moving average of the losses: 0 shows the raw values, 0.95 a very smooth trend.")


def live():
    registry.heartbeat(run, watcher)
    view = registry.view(run)
    if (view.status is Status.QUEUED) != waiting:
        st.rerun()        # queued -> running: poll at the live rate from now on
    if watcher is not None and view.active and watch_interval(registry.watching(run)) != every:
        st.rerun()        # the class grew or shrank: poll at this tab's share of its budget from now on
    # a read-only tab has no controls, so no columns: each element is a message on every poll of every tab
    header, controls = st.columns([3, 2]) if can_control else (st, None)
    header.subheader(f"{view.model} · run {view.id} · {view.status}")
    if can_control:
        b1, b2, b3 = controls.columns(3)
        if view.status is Status.RUNNING and b1.button("Pause", icon=":material/pause:", key="pause"):
            registry.pause(run)
        if view.status in (Status.PAUSED, Status.INTERRUPTED) and b1.button("Resume", icon=":material/play_arrow:",
                                                                             key="resume"):
            registry.resume(run)
            if view.status is Status.INTERRUPTED:
                st.rerun()        # queued again: the whole page polls it from now on
        if view.active and view.status is not Status.FINISHING and b2.button(
                "Cancel" if view.status is Status.QUEUED else "Stop", icon=":material/stop:", key="stop"):
            registry.stop(run)
        if not view.active and b3.button("New run", icon=":material/add:", key="new"):
            st.query_params.clear()
            st.rerun()
    if view.status is Status.QUEUED:
        st.info(f"Waiting in the queue: position **{view.queue_position}**, about "
                f"{format_duration(view.expected_wait_s)} to wait. {registry.max_jobs} training(s) run at a time "
                f"on this server so that each stays fast; watching and exploring never wait.")
    if view.status is Status.FINISHING:
        st.info(MODELS[view.model][1].finishing_note, icon=":material/hourglass_top:")
    if view.status.went_wrong:
        st.error(view.message)
    elif view.message:
        st.warning(view.message)
    with st.container():  # one element whatever it holds, so the charts below keep their place (no remount)
        lab.coach(registry, run, view, can_control)
        if can_control and view.status is Status.PAUSED:
            lab.slow_motion(registry, run, view)

    log = view.last_log
    st.progress(min(1.0, view.step / max(1, view.target_step)), text=(
        f"step {view.step:,} / {view.target_step:,} · {log.get('images_per_s', 0):,.0f} images/s · "
        f"ETA {format_duration(log.get('eta_s', float('nan'))) if view.active else '—'} · "
        f"{log.get('seconds', 0):.0f} s of training"))
    chart, samples = st.columns([1, 1], gap="medium")
    with chart:       # drawn from the start (empty axes over the whole run): nothing jumps when data arrives
        panels = charts.live_panels(run.id, view.model, len(view.history.get("step", [])),
                                    st.session_state.get(session.SMOOTHING, 0.8), view.target_step, view.history,
                                    view.marks)
        for chart in panels:                       # stacked: time runs left to right over the full width
            st.vega_lite_chart(spec=chart, width="stretch")
        lab.readings(view)
    with samples:
        if view.grid is not None:
            grid_step = view.snapshot_steps[-1] if view.snapshot_steps else view.step
            st.image(cached.grid_png(view.grid), width="stretch", output_format="PNG",
                     caption=f"{len(view.grid)} samples from fixed noise, step {grid_step}")
            score = lab.grid_reading(view, grid_step) or cached.quick_score(view.grid)
            if score is not None:
                verdict = "clear digits" if score["digits_ok"] else "not there yet"
                st.markdown(f"{':green-badge' if score['digits_ok'] else ':orange-badge'}[{verdict}] "
                            f"classifier confidence **{score['confidence']:.2f}** · **{score['present']}**/10 digits "
                            f"present",
                            help="A digit classifier (≥ 99% accurate on real digits) reads the grid: mean "
                                 "top-class probability, and how many of the ten digits it sees.")
        else:
            st.image(cached.blank_grid(), width="stretch", output_format="PNG",
                     caption="waiting in the queue…" if view.status is Status.QUEUED else "preparing the first samples…")
    if can_control and view.active and view.live_settings and view.status is not Status.FINISHING:
        lab.live_settings(registry, run, view)
    paused = "_paused_" + run.id
    if can_control and (view.status is Status.PAUSED) != st.session_state.get(paused, False):
        st.session_state[paused] = view.status is Status.PAUSED
        st.rerun()        # paused or resumed (by its owner or the coach): the time machine comes or goes
    was_active = "_was_active_" + run.id
    if not view.active and st.session_state.get(was_active, False):
        st.session_state[was_active] = False
        st.rerun()        # it just ended under our eyes: refresh the whole page once (replay, save, download)
    if view.active:
        st.session_state[was_active] = True


view = registry.view(run)
waiting = view.status is Status.QUEUED
# a queued run polls slowly (its page only shows the queue), a live one once a second (the class's read-only
# tabs less often when so many watch that their polls would take the training's cores: aigc.runs.watch_interval,
# bench/audience.py), an ended one not
st.fragment(run_every=None if not view.active else 2.0 if waiting else every)(live)()

view = registry.view(run)


def branches():
    lab.branches(registry, run, registry.view(run), st.session_state.get(session.SMOOTHING, 0.8))


family = registry.family(run)
if len(family) > 1:       # redrawn every second while one of them trains: a run without branches costs no polls
    st.fragment(run_every=1.0 if any(registry.view(r).active for r in family) else None)(branches)()
if can_control and view.status is Status.PAUSED:
    st.divider()
    lab.time_machine(registry, run, view)
if view.active or not view.snapshot_steps:
    st.stop()

# ---- after the run ----------------------------------------------------------------------------------
st.divider()
left, right = st.columns([2, 3])
with left:
    st.subheader("How the samples evolved")
    chosen_step = st.select_slider("Replay: the grid at step", options=view.snapshot_steps, value=view.snapshot_steps[-1],
                                   key=f"replay-{run.id}", help="Drag to replay the fixed-noise grid through training.")
    step, pixels = run.snapshot(view.snapshot_steps.index(chosen_step))
    png = cached.grid_png(pixels)
    st.image(png, width="stretch", caption=f"step {step}", output_format="PNG")   # as is: no JPEG re-encode
    d1, d2 = st.columns(2)
    d1.download_button("PNG of this grid", png, file_name=f"{view.model}-{run.id}-step{step}.png",
                       mime="image/png", key="png", icon=":material/download:", on_click="ignore")
    frames = [run.snapshot(i) for i in range(len(view.snapshot_steps))]
    d2.download_button("GIF of the whole run", lambda: cached.evolution_gif(
                           run.id, tuple(s for s, _ in frames), [f for _, f in frames]),
                       file_name=f"{view.model}-{run.id}-evolution.gif", mime="image/gif", key="gif",
                       icon=":material/download:", on_click="ignore")
    lab.copy_check(pixels)
with right:
    st.subheader("Keep it")
    if view.has_weights:
        # deferred: the bytes are made when someone clicks, not on every rerun
        st.download_button("Download checkpoint (.pt)", run.checkpoint_bytes, icon=":material/download:",
                           file_name=f"{view.model}-{run.id}.pt", mime="application/octet-stream",
                           key="download_checkpoint", on_click="ignore")
        if can_control and st.button("Save to this server (then explore it)", icon=":material/save:", key="save"):
            try:
                path = registry.save(run)
            except CheckpointError as exc:
                st.error(str(exc))
            else:
                st.success(f"Saved as {path.name}. Open **Explore** and pick “{path.stem} (saved run)”.")
        st.page_link("pages/explore.py", label="Explore this model's latent space", icon=":material/explore:")
        st.caption(f"Explore lists it as “{view.model} run {run.id}, … (this session)” while this tab is open; "
                   f"a run saved to the server is there for everyone.")

if can_control:
    st.divider()
    lab.time_machine(registry, run, view)
