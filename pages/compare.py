import streamlit as st

import app_state
from aigc import CheckpointError, list_checkpoints

st.title("Compare the shipped models")
st.markdown("Every model draws from the same random seeds. The scores come from a digit classifier "
            "(≥ 99% accurate on MNIST's test set) — see the notes below the pictures.")

shipped = list_checkpoints()
if not shipped:
    st.warning("No shipped checkpoints found in checkpoints/.")
    st.stop()
c1, c2 = st.columns([1, 2])
seed = c1.number_input("Seed", 0, 1_000_000, 0)
score = c2.toggle("Score each model (about 10 s per model, once)", value=False)

names = list(shipped)
for row in range(0, len(names), 3):                       # three per row: big enough for a projector
    for col, name in zip(st.columns(3), names[row:row + 3]):
        path = shipped[name]
        model, ckpt = app_state.load_path(path)
        with col:
            st.subheader(name)
            app_state.image(app_state.sample_grid(model, int(seed), n=36, nrow=6, scale=4),
                            caption=f"{ckpt['model_name']} · {ckpt['step']:,} steps")
            if score:
                try:
                    s = app_state.evaluate(str(path), path.stat().st_mtime)
                except CheckpointError as exc:
                    st.caption(str(exc))
                else:
                    st.metric("Fréchet distance", f"{s['fid']:.1f}", help="Lower is better.")
                    st.caption(f"{s['fid_ratio']:.1f}× the real-data floor ({s['fid_floor']:.2f}) · "
                               f"confidence {s['confidence']:.2f} · {s['coverage']}/10 digits")

st.divider()
st.markdown(
    "**Fréchet distance**: how far the statistics of 10,000 samples are from those of the 10,000 test digits, "
    "in the classifier's 128-d feature space (the FID recipe with an MNIST classifier in place of Inception). "
    "The **real-data floor** is the same distance for 10,000 real training digits — as good as it gets. "
    "**Confidence**: the classifier's mean top probability. **Digits**: classes that get at least 1% of samples.")
