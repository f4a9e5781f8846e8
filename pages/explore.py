import time

import streamlit as st
import torch
from streamlit_drawable_canvas import st_canvas

from aigc import CheckpointError, Redraw, Section, drawing, sampling
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
        kinds = ["measured", "found by the model"] + (["one per dimension"] if model.latent_dim <= 16 else [])
        kind = st.radio("Directions", kinds, horizontal=True, key="direction_kind",
                        help="Measured: for each of ink, slant and width, the direction that, over 1,024 random "
                             "samples, most increases it (a least-squares fit on z). Found by the model: the "
                             "directions in which its samples vary most, found without any labels (GANSpace, "
                             "Härkönen et al. 2020), each named by what it measurably changes. One per dimension: "
                             "the latent vector's own coordinates.")
        found = cached.directions(f"{loaded.key}-{label}", model, label, kind)
        offsets = {d.name: st.slider(d.help, -4.0, 4.0, 0.0, 0.1, key=f"dir_{d.name}",
                                     help="In standard deviations of z along this direction.") for d in found}
        nearest = st.toggle("Show the nearest training digits", key="sample_nearest",
                            help="Is the sample new, or a copy of something the model saw?")
    with left:
        z = noise(model, 1, seed)                                                       # (1, d)
        for d in found:
            z = z + offsets[d.name] * d.vector          # unit vector: 1 = one standard deviation of z along it
        with torch.no_grad():
            image = model.sample(z, as_labels(model, 1, label), **options)                   # (1, 1, 28, 28)
        pixels = grid(image, nrow=1, pad=0, scale=15)                                       # 420×420 px
        widgets.image(pixels, width=420)
        st.download_button("PNG", lambda: png_bytes(pixels), file_name=f"{ckpt['model_name']}-seed{seed}.png",
                           mime="image/png", key="png_one", icon=":material/download:", on_click="ignore")
        if nearest:
            show_neighbours(drawing.nearest_training_digits(image))
        st.caption(f"Server time for this update: {(time.perf_counter() - started) * 1000:.1f} ms")


def show_neighbours(found: drawing.Neighbours) -> None:
    widgets.image(grid(found.images, nrow=len(found.images), scale=3), width=90 * len(found.images),
                  caption="The nearest training digits (" + ", ".join(
                      f"a {d} at {r:.1f}" for d, r in zip(found.labels, found.distances)) + "; distance in pixels)")


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


@st.fragment
def drawing_bench():
    st.subheader("Draw a digit")
    st.markdown("Draw a digit in the black square with the mouse or a finger. Before anything sees it, it is "
                "scaled and centred the way MNIST's digits were: its outline fitted to 20×20 pixels, its centre of "
                "mass in the middle of 28×28. Then the classifier reads it, and this model draws its own version.")
    started = time.perf_counter()
    source = st.radio("Start from", ["My drawing", "A test digit"], horizontal=True, key="draw_source")
    left, right = st.columns(2)
    with left:
        if source == "My drawing":
            tool = st.segmented_control("Tool", ["Pen", "Eraser"], default="Pen", key="draw_tool",
                                        help="The eraser draws in black. The bin under the square clears it; "
                                             "the arrows undo and redo.")
            canvas = st_canvas(stroke_width=22, stroke_color="#000000" if tool == "Eraser" else "#FFFFFF",
                               background_color="#000000", width=280, height=280, return_image_data=True,
                               key="draw_canvas")
            digit = None if canvas.image_data is None else drawing.mnist_like(drawing.canvas_ink(canvas.image_data))
        else:
            index = st.number_input("Test digit", 0, 9_999, 0, key="draw_test_digit",
                                    help="One of MNIST's 10,000 test digits, which no model trained on.")
            digit = sampling.test_digits(torch.tensor([int(index)]))[0]
    if digit is None:
        right.info("Draw a digit on the left: what the classifier and the model make of it appears here.")
        return
    probabilities = drawing.classifier_reading(digit)
    read = int(probabilities.argmax())
    with right:
        widgets.image(grid(digit, nrow=1, pad=0, scale=6), width=168, caption="What the models see (28×28)")
        st.markdown(f"The classifier reads a **{read}** ({probabilities[read]:.0%} sure).")
        st.vega_lite_chart(charts.probability_rows(probabilities), charts.class_histogram_spec(), width="stretch")

    st.markdown(f"**What {ckpt['model_name']} makes of it.** " + REDRAW_TEXT[model.redraw])
    digest = digit.float().numpy().tobytes()
    label_for = read if model.conditional else None
    strength = 0.5
    if model.redraw is Redraw.EDIT:
        strength = st.slider("Strength", 0.05, 1.0, 0.5, 0.05, key="draw_strength",
                             help="How far the drawing is noised before the model takes the noise out again: "
                                  "0.05 keeps it almost as it is, 1 keeps nothing of it.")
    redraw_key = (loaded.key, digest, label_for, strength, tuple(options.items()))
    if model.redraw is Redraw.INVERT:         # a search of a second or two: on a click, then kept for this tab
        found_key, redrawn = st.session_state.get("_draw_found", (None, None))
        if found_key != redraw_key:
            slot = st.empty()
            if not slot.button("Find it in the latent space", key="draw_invert", icon=":material/search:"):
                return
            bar = slot.progress(0.0, text="Searching for the z that redraws it…")     # in the button's place
            redrawn = drawing.redraw(model, digit, label_for, progress=lambda done: bar.progress(
                min(1.0, done), text=f"Searching for the z that redraws it… {done:.0%}"))
            slot.empty()
            st.session_state["_draw_found"] = (redraw_key, redrawn)
    else:
        redrawn = cached.redrawing(*redraw_key, _model=model)
    c1, c2 = st.columns(2)
    with c1:
        widgets.image(grid(redrawn.image, nrow=1, pad=0, scale=6), width=168,
                      caption=f"Its version: squared error {redrawn.error:.3f} per pixel"
                              + (f" (the best random z: {redrawn.start_error:.3f})" if redrawn.start_error else ""))
        if redrawn.path is not None:
            st.image(grid(torch.cat([redrawn.path.images[:, 0], redrawn.path.estimates[:, 0]]),
                          nrow=len(redrawn.path.images), scale=2), clamp=True, output_format="PNG",
                     caption="The way back: the noised drawing and each step after it above, the guess x̂₀ below.")
    with c2:
        show_neighbours(drawing.nearest_training_digits(digit))
    if model.redraw is Redraw.ENCODE:
        coords, digits, mean, basis = cached.code_map(loaded.key, model)
        point = (redrawn.code[0].numpy() - mean) @ basis
        st.vega_lite_chart(charts.latent_map_rows(loaded.key, coords, digits, tuple(point)), charts.latent_map_spec(),
                           width="stretch")
        st.caption("Where the encoder puts the drawing (the black cross) among 2,000 test digits" +
                   ("." if model.latent_dim == 2 else f": the {model.latent_dim}-D codes seen along their two "
                                                      "principal axes."))

    c1, c2 = st.columns([1, 3])
    seed = c1.number_input("Morph to seed", 0, 1_000_000, 7, key="draw_morph_seed")
    strip = cached.morph_from(redraw_key, model, digest, redrawn, int(seed), 10, label_for, tuple(options.items()))
    c2.image(grid(strip, nrow=len(strip), scale=3), width="stretch", clamp=True, output_format="PNG",
             caption=MORPH_TEXT[model.redraw])
    st.download_button("Animated GIF of the morph", lambda: gif_bytes([grid(img[None], nrow=1, pad=0, scale=8)
                                                                       for img in strip]),
                       icon=":material/download:", file_name=f"drawing-to-seed{seed}.gif", mime="image/gif",
                       key="draw_gif", on_click="ignore")
    st.caption(f"Server time for this update: {(time.perf_counter() - started) * 1000:.1f} ms")


REDRAW_TEXT = {
    Redraw.ENCODE: "Its encoder turns the drawing into a code, a point in its latent space, and its decoder "
                   "draws that point: the reconstruction shows what the code kept.",
    Redraw.INVERT: "It has no encoder: like every GAN it only goes from z to an image. To find the drawing in its "
                   "latent space, the lab searches for the z whose image comes closest, by gradient descent on the "
                   "pixel error from several random starts (GAN inversion).",
    Redraw.EDIT: "The drawing is noised part of the way, then the model takes the noise out again, guided towards "
                 "the digit the classifier reads (SDEdit, Meng et al. 2021): it keeps the drawing's shape and "
                 "redraws its strokes the way it learned.",
}
MORPH_TEXT = {
    Redraw.ENCODE: "From the drawing's code to the code of the seed's sample, in a straight line.",
    Redraw.INVERT: "From the z found for the drawing to the seed's z, along the sphere.",
    Redraw.EDIT: "The drawing, then noised with the seed's noise to ever more strength and denoised: at full "
                 "strength nothing of it is left, and the model draws the seed's own sample.",
}

SECTIONS = {Section.GROUPS: groups, Section.SLIDERS: sliders, Section.TRAJECTORY: trajectory, Section.MORPH: morph,
            Section.FORWARD_PROCESS: forward_process, Section.LATENT_MAP: latent_map, Section.DRAWING: drawing_bench}
for i, section in enumerate(model.explore_sections):
    if i:
        st.divider()
    SECTIONS[section]()
