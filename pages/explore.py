import time

import streamlit as st
import torch

import app_common
import app_state
from aigc import CheckpointError
from aigc.images import gif_bytes, grid, png_bytes
from aigc.latent import interpolate

app_common.require_frame()      # a page opened directly on a fresh server: go through app.py

st.title("Explore the latent space")

# ---- pick a model --------------------------------------------------------------------------------
registry = app_state.registry()
choices = app_common.checkpoint_choices(registry)
source = st.radio("Model", ["Checkpoint on this server", "Upload a checkpoint"], horizontal=True,
                  label_visibility="collapsed", key="explore_source")
model = None
if source == "Upload a checkpoint":
    upload = st.file_uploader("aigc checkpoint (.pt), e.g. one downloaded from the Train page", type=["pt"])
    if upload is not None:
        try:
            model, ckpt = app_common.load_upload(upload.getvalue(), upload.name)   # errors name the file
            model_key = f"upload-{upload.file_id}"
        except CheckpointError as exc:
            st.error(f"That file can't be used: {exc}")
        except Exception as exc:           # an untrusted file: whatever goes wrong, say so and carry on
            st.error(f"That file can't be used: {type(exc).__name__}: {exc}")
elif choices:
    label = st.selectbox("Checkpoint", list(choices), key="explore_ckpt",
                         help="Shipped models, runs saved on this server, and the runs you finished in this tab.")
    kind, what = choices[label]
    try:
        if kind == "run":
            model, ckpt = app_common.run_model(what.id, registry.view(what).step, what.checkpoint())
            model_key = f"run-{what.id}-{ckpt['step']}"
        else:
            model, ckpt = app_state.load_path(what)
            model_key = f"{what}"
    except (CheckpointError, OSError) as exc:
        st.error(f"That checkpoint can't be used: {exc}")
else:
    st.warning("No checkpoints on this server yet (checkpoints/ is empty): train a model on the **Train** page "
               "and save it, or upload a checkpoint.")
if model is None:
    st.stop()
groups = 0 if model.conditional else model.label_count        # a self-conditioned GAN's k-means groups
st.caption(f"**{ckpt['model_name']}** · latent size {model.latent_dim} · trained {ckpt['step']:,} steps"
           + (" · pick the digit below" if model.conditional else "")
           + (f" · self-conditioned on {groups} groups it found in the training digits" if groups else ""))

# ---- one sample, moved by sliders -----------------------------------------------------------------
# Each section is a fragment: moving a slider reruns only its own section, not the whole page.
label = None
if model.conditional:
    label = st.radio("Digit to draw", list(range(10)), index=3, horizontal=True, key="digit")
elif groups:
    group = st.select_slider(
        "Group to draw from", ["any", *range(groups)], value="any", key=f"group-{groups}",
        help="Before training, this GAN sorted the training digits into groups by k-means on their pixels, "
             "without their labels, and learned to draw each group. 'any' lets z pick the group, as often "
             "as it occurs in the data.")
    label = None if group == "any" else group
    st.image(app_state.group_strip(model_key, model), width="stretch", clamp=True, output_format="PNG",
             caption=f"One sample from each group, 0 to {groups - 1}, left to right and top to bottom.")


@st.fragment
def one_sample():
    started = time.perf_counter()
    left, right = st.columns([1, 1])
    with right:
        seed = st.number_input("Random seed", 0, 1_000_000, 7, help="Which random point z to start from.")
        st.markdown("**Directions.** Each slider moves *z* along the direction that, averaged over 1,024 random "
                    "samples, most increases what it names (a least-squares fit of that measurement on z).")
        found = app_state.directions(f"{model_key}-{label}", model, label)
        offsets = {d.name: st.slider(d.help, -4.0, 4.0, 0.0, 0.1, key=f"dir_{d.name}",
                                     help="In standard deviations of z along this direction.") for d in found}
    with left:
        z = model.make_noise(1, generator=torch.Generator().manual_seed(int(seed)))      # (1, d)
        for d in found:
            z = z + offsets[d.name] * d.vector          # unit vector: 1 = one standard deviation of z along it
        labels = torch.tensor([label]) if label is not None else None
        with torch.no_grad():
            pixels = grid(model.sample(z, labels), nrow=1, pad=0, scale=15)           # 420×420 px
        app_state.image(pixels, width=420)
        st.download_button("PNG", lambda: png_bytes(pixels), file_name=f"{ckpt['model_name']}-seed{seed}.png",
                           mime="image/png", key="png_one", icon=":material/download:", on_click="ignore")
        st.caption(f"Server time for this update: {(time.perf_counter() - started) * 1000:.1f} ms")


@st.fragment
def morph():
    st.subheader("Morph one sample into another")
    c1, c2, c3, c4 = st.columns(4)
    seed_a = c1.number_input("From seed", 0, 1_000_000, 1)
    seed_b = c2.number_input("To seed", 0, 1_000_000, 2)
    frames = c3.slider("Frames", 4, 16, 10)
    mode = c4.radio("Path", ["slerp", "lerp"], horizontal=True, key="morph_mode",
                    help="slerp follows the sphere where Gaussian samples live; lerp cuts straight across.")
    za = model.make_noise(1, generator=torch.Generator().manual_seed(int(seed_a)))[0]
    zb = model.make_noise(1, generator=torch.Generator().manual_seed(int(seed_b)))[0]
    with torch.no_grad():
        strip = interpolate(model, za, zb, steps=frames, mode=mode, label=label)
    st.image(grid(strip, nrow=frames, scale=4), width="stretch", clamp=True, output_format="PNG")
    st.download_button("Animated GIF", lambda: gif_bytes([grid(img[None], nrow=1, pad=0, scale=8) for img in strip]),
                       icon=":material/download:", file_name=f"morph-{seed_a}-{seed_b}-{mode}.gif",
                       mime="image/gif", on_click="ignore")     # made on click, not on every slider move


@st.fragment
def latent_map():
    st.subheader("The whole latent map")
    st.markdown("Each dot is one of 2,000 test digits, placed where the encoder puts it and coloured by what "
                "digit it is: similar digits land together. **Click anywhere on the map** (or move the sliders) "
                "to decode that point into an image; the black cross marks it.")
    coords, digits = app_state.latent_map(model_key, model)
    pick = app_common.map_pick(st.session_state.get("latent_map"))
    if pick is not None:
        if pick != st.session_state.get("_map_pick"):          # a new click: move the sliders there
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
        app_state.image(grid(decoded, nrow=1, pad=0, scale=12), width=336, caption=f"decoded at ({x:.1f}, {y:.1f})")
    with c1:
        st.vega_lite_chart(app_common.latent_map_rows(model_key, coords, digits, (x, y)),
                           app_common.latent_map_spec(), key="latent_map", on_select="rerun",
                           selection_mode="pick", width="stretch")


one_sample()
st.divider()
morph()
if ckpt["model_name"] == "vae" and model.latent_dim == 2:      # a 2-D latent can be seen whole
    st.divider()
    latent_map()
