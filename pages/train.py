import math
from dataclasses import fields

import streamlit as st

import app_common
import app_state
from aigc import LIMITS, MODELS, CheckpointError, TrainConfig, list_checkpoints
from aigc.runs import ACTIVE

app_common.require_frame()      # a page opened directly on a fresh server: go through app.py

st.title("Train")
registry = app_state.registry()
run = registry.get(st.query_params.get("run"))
if st.query_params.get("run") and run is None:
    st.warning("That run is no longer on this server (it ended long ago or the server restarted). Start a new one.")
can_control = run is not None and st.query_params.get("key") == run.key
if run is not None:
    app_common.remember_run(run.id)      # Explore offers the runs this tab has seen, once they end


def fmt_time(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "—"
    m, s = divmod(int(seconds + 0.5), 60)
    return f"{m}:{s:02d}"


# ---- settings -------------------------------------------------------------------------------------
with st.expander("Model and settings", expanded=run is None):
    name = st.selectbox("Model", list(MODELS), format_func=lambda n: f"{n} — {MODELS[n][1].summary}",
                        key="train_model")
    recipe = TrainConfig.for_model(name)
    c1, c2, c3, c4 = st.columns(4)
    steps = c1.number_input("Steps", LIMITS["steps"][0], LIMITS["steps"][1], recipe.steps, step=100,
                            help="Optimisation steps; each sees one batch of real digits.")
    batch_size = c2.number_input("Batch size", LIMITS["batch_size"][0], LIMITS["batch_size"][1],
                                 recipe.batch_size, step=16)
    lr = c3.number_input("Learning rate", LIMITS["lr"][0], LIMITS["lr"][1], recipe.lr, format="%.5f",
                         step=1e-4, help="Adam's step size. Too high and the run diverges; aigc then stops it "
                                         "and keeps the last good weights.")
    seed = c4.number_input("Seed", 0, 2**31 - 1, 0, help="Same seed, same run.")
    model_args = {}
    if name == "vae":
        model_args["latent_dim"] = st.select_slider(
            "Latent size", [2, 4, 8, 16, 32, 64], value=16,
            help="2 gives a latent space you can see as a map on the Explore page.")
    if "clusters" in {f.name for f in fields(MODELS[name][0])}:      # the unconditional GANs
        model_args["clusters"] = st.select_slider(
            "Groups found without labels", [0, 10, 20, 30, 50], value=0,
            help="Self-conditioned GAN (Liu et al. 2020): before training, sort the training digits into this many "
                 "groups by k-means on their pixels (no labels), then tell G which group to draw and D which "
                 "group an image belongs to. 0 = the plain GAN. For a quick run try 30 groups with the "
                 "conditional GAN's recipe, batch 32 and learning rate 0.0005: a dcgan then drew digits after "
                 "26 s of training on 2 CPU cores.")
    shipped = {}
    for ckpt_name, path in list_checkpoints().items():
        try:
            if app_state.load_path(path)[1]["model_name"] == name:
                shipped[ckpt_name] = path
        except (CheckpointError, OSError):
            pass            # a damaged shipped file is simply not offered here; Explore explains it
    start_from = st.selectbox("Start from", ["scratch", *shipped],
                              help="Continue training a shipped checkpoint instead of random weights.")

    busy = can_control and run.status in ACTIVE                              # one live run per owner
    if st.button("Start", icon=":material/play_arrow:", type="primary", disabled=busy,
                 help="Stop the current run first." if busy else None):
        try:
            config = TrainConfig.for_model(name, steps=int(steps), batch_size=int(batch_size), lr=float(lr),
                                           seed=int(seed), model_args=model_args)
            init = None
            if start_from != "scratch":
                init = app_state.load_path(shipped[start_from])[1]
                config.model_args = dict(init["model_args"])
            new = registry.submit(config, init_checkpoint=init)
        except (ValueError, RuntimeError, CheckpointError) as exc:
            st.error(f"Could not start: {exc}")
        else:
            st.query_params.update(run=new.id, key=new.key)
            app_common.remember_run(new.id)
            st.rerun()

if run is None:
    st.info("Choose a model and press **Start**. The defaults are tuned to show digits quickly on a CPU.")
    st.stop()


# ---- the live run ---------------------------------------------------------------------------------
share, smooth = st.columns([4, 1], vertical_alignment="bottom")
with share:
    if can_control:
        st.markdown("**Share this link so the class watches your run** (read-only: they see it live, "
                    "but cannot pause or stop it; everyone watching shares one training):")
        st.code(app_common.share_url(run.id), language=None)
    else:
        st.caption(f"Watching run `{run.id}` read-only.")
smooth.slider("Chart smoothing", 0.0, 0.95, 0.8, 0.05, key=app_common.SMOOTHING,
              help="Exponential moving average of the losses: 0 shows the raw values, 0.95 a very smooth trend.")


def live():
    registry.heartbeat(run)
    view = registry.view(run)
    if (view.status == "queued") != waiting:
        st.rerun()        # queued -> running: poll at the live rate from now on
    header, controls = st.columns([3, 2])
    header.subheader(f"{view.model} · run {view.id} · {view.status}")
    if can_control:
        b1, b2, b3 = controls.columns(3)
        if view.status == "running" and b1.button("Pause", icon=":material/pause:", key="pause"):
            registry.pause(run)
        if view.status == "paused" and b1.button("Resume", icon=":material/play_arrow:", key="resume"):
            registry.resume(run)
        if view.active and view.status != "finishing" and b2.button("Stop" if view.status != "queued" else "Cancel", icon=":material/stop:", key="stop"):
            registry.stop(run)
        if not view.active and b3.button("New run", icon=":material/add:", key="new"):
            st.query_params.clear()
            st.rerun()
    if view.status == "queued":
        st.info(f"Waiting in the queue: position **{view.queue_position}**, about "
                f"{fmt_time(view.expected_wait_s)} to wait. {registry.max_jobs} training(s) run at a time on "
                f"this server so that each stays fast; watching and exploring never wait.")
    if view.status == "finishing":
        st.info(MODELS[view.model][1].finishing_note, icon=":material/hourglass_top:")
    if view.status in ("diverged", "failed"):
        st.error(view.message)
    elif view.message:
        st.warning(view.message)

    log = view.last_log
    done = view.step / max(1, view.target_step)
    st.progress(min(1.0, done), text=(
        f"step {view.step:,} / {view.target_step:,} · {log.get('images_per_s', 0):,.0f} images/s · "
        f"ETA {fmt_time(log.get('eta_s', float('nan'))) if view.active else '—'} · "
        f"{log.get('seconds', 0):.0f} s of training"))
    chart, samples = st.columns([1, 1], gap="medium")
    with chart:       # drawn from the start (empty axes over the whole run): nothing jumps when data arrives
        panels = app_common.live_chart(run.id, view.model, len(view.history.get("step", [])),
                                       st.session_state.get(app_common.SMOOTHING, 0.8), view.target_step,
                                       view.history)
        for spec, rows in panels:                  # stacked: time runs left to right over the full width
            st.vega_lite_chart(rows, spec, width="stretch")
    with samples:
        if view.grid is not None:
            grid_step = view.snapshot_steps[-1] if view.snapshot_steps else view.step
            st.image(app_common.grid_png(view.grid), width="stretch", output_format="PNG",
                     caption=f"{len(view.grid)} samples from fixed noise, step {grid_step}")
            score = app_common.quick_score(view.grid)
            if score is not None:
                present = sum(1 for c in score["class_hist"] if c)
                verdict = "clear digits" if score["digits_ok"] else "not there yet"
                st.markdown(f"{':green-badge' if score['digits_ok'] else ':orange-badge'}[{verdict}] "
                            f"classifier confidence **{score['confidence']:.2f}** · **{present}**/10 digits present",
                            help="A digit classifier (≥ 99% accurate on real digits) reads the grid: mean "
                                 "top-class probability, and how many of the ten digits it sees.")
        else:
            st.image(app_common.blank_grid(), width="stretch", output_format="PNG",
                     caption="waiting in the queue…" if view.status == "queued" else "preparing the first samples…")
    if not view.active and st.session_state.get("_was_active_" + run.id, False):
        st.session_state["_was_active_" + run.id] = False
        st.rerun()        # it just ended under our eyes: refresh the whole page once (replay, save, download)
    if view.active:
        st.session_state["_was_active_" + run.id] = True


# a queued run polls slowly (its page only shows the queue); a live one a few times a second
waiting = registry.view(run).status == "queued"
# a finished run stops polling (nothing changes any more)
st.fragment(run_every=None if not registry.view(run).active else 2.0 if waiting else 0.7)(live)()

view = registry.view(run)
if view.active or not view.snapshot_steps:
    st.stop()

# ---- after the run ----------------------------------------------------------------------------------
st.divider()
left, right = st.columns([2, 3])
with left:
    st.subheader("How the samples evolved")
    chosen = st.select_slider("Replay: the grid at step", options=view.snapshot_steps, value=view.snapshot_steps[-1],
                              key=f"replay-{run.id}", help="Drag to replay the fixed-noise grid through training.")
    step, pixels = run.snapshot(view.snapshot_steps.index(chosen))
    png = app_common.grid_png(pixels)
    st.image(png, width="stretch", caption=f"step {step}", output_format="PNG")   # as is: no JPEG re-encode
    d1, d2 = st.columns(2)
    d1.download_button("PNG of this grid", png, file_name=f"{view.model}-{run.id}-step{step}.png",
                       mime="image/png", key="png", icon=":material/download:", on_click="ignore")
    frames = [run.snapshot(i) for i in range(len(view.snapshot_steps))]
    d2.download_button("GIF of the whole run", lambda: app_common.evolution_gif(
                           run.id, tuple(s for s, _ in frames), [f for _, f in frames]),
                       file_name=f"{view.model}-{run.id}-evolution.gif", mime="image/gif", key="gif",
                       icon=":material/download:", on_click="ignore")
with right:
    st.subheader("Keep it")
    if view.has_weights:
        # deferred: the bytes are made when someone clicks, not on every rerun
        st.download_button("Download checkpoint (.pt)", run.checkpoint_bytes, icon=":material/download:",
                           file_name=f"{view.model}-{run.id}.pt", mime="application/octet-stream",
                           on_click="ignore")
        if can_control and st.button("Save to this server (then explore it)", icon=":material/save:"):
            try:
                path = registry.save(run)
            except CheckpointError as exc:
                st.error(str(exc))
            else:
                st.success(f"Saved as {path.name}. Open **Explore** and pick “{path.stem} (saved run)”.")
    if view.has_weights:
        st.page_link("pages/explore.py", label="Explore this model's latent space", icon=":material/explore:")
        st.caption(f"Explore lists it as “{view.model} run {run.id}, … (this session)” while this tab is open; "
                   f"a run saved to the server is there for everyone.")
