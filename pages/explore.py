import time

import streamlit as st
import torch

from aigc import CheckpointError, Section
from aigc.images import gif_bytes, grid, png_bytes
from aigc.latent import interpolate
from aigc.sampling import as_labels, noise
from ui import cached, charts, session, startup, widgets

startup.require_frame()

st.title("Explore the latent space")

# ---- pick a model --------------------------------------------------------------------------------
registry = cached.registry()
choices = session.checkpoint_choices(registry)
source = st.radio("Model", ["Checkpoint on this server", "Upload a checkpoint"], horizontal=True,
                  label_visibility="collapsed", key="explore_source")
loaded = None
if source == "Upload a checkpoint":
    upload = st.file_uploader("aigc checkpoint (.pt), e.g. one downloaded from the Train page", type=["pt"],
                              key="explore_upload")
    if upload is not None:
        try:
            loaded = cached.upload(upload.getvalue(), upload.name)        # errors name the file
        except CheckpointError as exc:
            st.error(f"That file can't be used: {exc}")
        except Exception as exc:           # an untrusted file: whatever goes wrong, say so and carry on
            st.error(f"That file can't be used: {type(exc).__name__}: {exc}")
elif choices:
    label = st.selectbox("Checkpoint", list(choices), key="explore_ckpt",
                         help="Shipped models, runs saved on this server, and the runs you finished in this tab.")
    try:
        loaded = cached.load(choices[label])
    except (CheckpointError, OSError) as exc:
        st.error(f"That checkpoint can't be used: {exc}")
else:
    st.warning("No checkpoints on this server yet (checkpoints/ is empty): train a model on the **Train** page "
               "and save it, or upload a checkpoint.")
if loaded is None:
    st.stop()
model, ckpt = loaded.model, loaded.checkpoint
st.caption(" · ".join([f"**{ckpt['model_name']}**", f"latent size {model.latent_dim}",
                       f"trained {ckpt['step']:,} steps", *model.describe()]))
picker = model.label_setting
label = widgets.setting_input(picker, key=f"{picker.name}_{len(picker.choices)}") if picker else None
options = {s.name: widgets.setting_input(s, key=f"sample_{s.name}", where=column, slider=True)   # how it samples
           for s, column in zip(model.sampling_settings, st.columns(max(1, len(model.sampling_settings))))}


# ---- the sections this model has; each is a fragment: moving a slider reruns only its own section -------
def groups():
    st.image(cached.group_strip(loaded.key, model), width="stretch", clamp=True, output_format="PNG",
             caption=f"One sample from each group, 0 to {model.label_count - 1}, left to right and top to bottom.")


@st.fragment
def sliders():
    started = time.perf_counter()
    left, right = st.columns([1, 1])
    with right:
        seed = st.number_input("Random seed", 0, 1_000_000, 7, key="sample_seed",
                               help="Which random point z to start from.")
        st.markdown("**Directions.** Each slider moves *z* along the direction that, averaged over 1,024 random "
                    "samples, most increases what it names (a least-squares fit of that measurement on z).")
        found = cached.directions(f"{loaded.key}-{label}", model, label)
        offsets = {d.name: st.slider(d.help, -4.0, 4.0, 0.0, 0.1, key=f"dir_{d.name}",
                                     help="In standard deviations of z along this direction.") for d in found}
    with left:
        z = noise(model, 1, seed)                                                       # (1, d)
        for d in found:
            z = z + offsets[d.name] * d.vector          # unit vector: 1 = one standard deviation of z along it
        with torch.no_grad():
            pixels = grid(model.sample(z, as_labels(model, 1, label), **options), nrow=1, pad=0, scale=15)  # 420×420 px
        widgets.image(pixels, width=420)
        st.download_button("PNG", lambda: png_bytes(pixels), file_name=f"{ckpt['model_name']}-seed{seed}.png",
                           mime="image/png", key="png_one", icon=":material/download:", on_click="ignore")
        st.caption(f"Server time for this update: {(time.perf_counter() - started) * 1000:.1f} ms")


@st.fragment
def morph():
    st.subheader("Morph one sample into another")
    c1, c2, c3, c4 = st.columns(4)
    seed_a = c1.number_input("From seed", 0, 1_000_000, 1, key="morph_from")
    seed_b = c2.number_input("To seed", 0, 1_000_000, 2, key="morph_to")
    frames = c3.slider("Frames", 4, 16, 10, key="morph_frames")
    mode = c4.radio("Path", ["slerp", "lerp"], horizontal=True, key="morph_mode",
                    help="slerp follows the sphere where Gaussian samples live; lerp cuts straight across.")
    strip = interpolate(model, noise(model, 1, seed_a)[0], noise(model, 1, seed_b)[0], frames=frames, mode=mode,
                        label=label, **options)
    st.image(grid(strip, nrow=frames, scale=4), width="stretch", clamp=True, output_format="PNG")
    st.download_button("Animated GIF", lambda: gif_bytes([grid(img[None], nrow=1, pad=0, scale=8) for img in strip]),
                       icon=":material/download:", file_name=f"morph-{seed_a}-{seed_b}-{mode}.gif",
                       mime="image/gif", key="morph_gif", on_click="ignore")   # made on click, not on every move


@st.fragment
def trajectory():
    st.subheader("Sampling, step by step")
    st.markdown(
        "The model starts from pure noise (t = 1) and removes a little of it at each step until a digit is left "
        "(t = 0). At every step it also makes a guess of the finished digit, **x̂₀**: blurry early on, when "
        "almost anything could still come out, sharp at the end. **Guidance** w pushes each step towards what "
        "the model thinks the chosen digit looks like and away from what any digit looks like: w = 0 ignores the "
        "digit, w = 1 is the plain model, larger w gives more typical, cleaner digits that look more alike.")
    started = time.perf_counter()
    c1, c2 = st.columns([1, 3])
    seed = c1.number_input("Random seed", 0, 1_000_000, 7, key="trajectory_seed",
                           help="Which noise image the sampling starts from.")
    path = cached.trajectory(loaded.key, model, seed, label, tuple(options.items()))
    steps = len(path.estimates)
    step = c2.slider("Step", 0, steps, steps, key="trajectory_step",
                     help="0 is the starting noise; each step removes some of it.")
    left, right = st.columns(2)
    with left:
        widgets.image(grid(path.images[step:step + 1], nrow=1, pad=0, scale=12), width=336,
                      caption=f"x_t after {step} of {steps} steps, t = {path.t[step]:.2f}")
    with right:       # the guess made from x_t at this step; after the last step, the digit itself
        guess = path.estimates[step:step + 1] if step < steps else path.images[steps:]
        widgets.image(grid(guess, nrow=1, pad=0, scale=12), width=336,
                      caption="x̂₀, its guess of the finished digit" if step < steps else "the finished digit")
    st.image(grid(torch.cat([path.images[1:], path.estimates]), nrow=steps, scale=2), width="stretch", clamp=True,
             output_format="PNG", caption="Every step: x_t above, the guess x̂₀ made at that step below.")
    st.download_button("Animated GIF of the trajectory", lambda: gif_bytes(
                           [grid(torch.stack([x, x0]), nrow=2, pad=2, scale=8)
                            for x, x0 in zip(path.images[1:], path.estimates)], ms_per_frame=150, bounce=False),
                       icon=":material/download:", file_name=f"trajectory-seed{seed}.gif", mime="image/gif",
                       key="trajectory_gif", on_click="ignore")
    st.caption(f"Server time for this update: {(time.perf_counter() - started) * 1000:.1f} ms")


@st.fragment
def forward_process():
    st.subheader("The forward process: how training noises a digit")
    st.markdown(
        "Training runs the other way. It takes a real digit x₀, picks a noise level t and mixes the two: "
        "**x_t = α(t)·x₀ + σ(t)·ε**, with ε random noise. The network sees x_t and t and learns to say what "
        "was added; that is all it ever learns. The chart shows how much of the digit (α, signal) and of the "
        "noise (σ) each t keeps.")
    c1, c2 = st.columns([1, 3])
    index = c1.number_input("Test digit", 0, 9_999, 0, key="forward_digit", help="Which of MNIST's 10,000 test digits.")
    strip, schedule = cached.forward_process(loaded.key, model, int(index))
    c2.image(strip, width="stretch", clamp=True, output_format="PNG",
             caption="The digit at t = 0, 0.1, 0.2, … 1, always with the same noise ε.")
    st.vega_lite_chart(charts.schedule_rows(*schedule), charts.schedule_spec(), width="stretch")


@st.fragment
def latent_map():
    st.subheader("The whole latent map")
    st.markdown("Each dot is one of 2,000 test digits, placed where the encoder puts it and coloured by what "
                "digit it is: similar digits land together. **Click anywhere on the map** (or move the sliders) "
                "to decode that point into an image; the black cross marks it.")
    coords, digits = cached.encoded_test_digits(loaded.key, model)
    paths = cached.latent_paths(loaded.key, model, tuple(options.items()))
    if paths is not None:
        st.markdown("The black lines are the ways ten samples, one of each digit, travel from noise to the "
                    "place where the decoder draws them, one step at a time.")
    pick = charts.map_pick(st.session_state.get("latent_map"))
    if pick is not None and pick != st.session_state.get("_map_pick"):       # a new click: move the sliders there
        st.session_state["_map_pick"] = pick
        st.session_state["z1"], st.session_state["z2"] = (round(min(4.0, max(-4.0, v)), 1) for v in pick)
    c1, c2 = st.columns([3, 2])
    with c2:
        for k in ("z1", "z2"):
            st.session_state.setdefault(k, 0.0)      # no value= below: the state (maybe set by a click) rules
        x = st.slider("z₁", -4.0, 4.0, step=0.1, key="z1")
        y = st.slider("z₂", -4.0, 4.0, step=0.1, key="z2")
        with torch.no_grad():
            decoded = model.decode(torch.tensor([[x, y]], dtype=torch.float32))     # the map is the latent space itself
        widgets.image(grid(decoded, nrow=1, pad=0, scale=12), width=336, caption=f"decoded at ({x:.1f}, {y:.1f})")
    with c1:
        st.vega_lite_chart(charts.latent_map_rows(loaded.key, coords, digits, (x, y), paths), charts.latent_map_spec(),
                           key="latent_map", on_select="rerun", selection_mode="pick", width="stretch")


SECTIONS = {Section.GROUPS: groups, Section.SLIDERS: sliders, Section.TRAJECTORY: trajectory, Section.MORPH: morph,
            Section.FORWARD_PROCESS: forward_process, Section.LATENT_MAP: latent_map}
for i, section in enumerate(model.explore_sections):
    if i:
        st.divider()
    SECTIONS[section]()
