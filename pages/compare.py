import streamlit as st

from aigc import CheckpointError, list_checkpoints
from ui import cached, charts, startup, widgets

startup.require_frame()

st.title("Compare the shipped models")
st.markdown("Every model draws from the same random seeds. The scores come from a digit classifier "
            "(≥ 99% accurate on MNIST's test set) — see the notes below the pictures.")

shipped = list_checkpoints()
if not shipped:
    st.warning("No shipped checkpoints found in checkpoints/ yet. They appear here once they are trained "
               "(scripts/make_checkpoints.sh); meanwhile train and save your own on the **Train** page.")
    st.stop()
can_score = cached.metrics_available()
c1, c2 = st.columns([1, 2], vertical_alignment="bottom")
seed = c1.number_input("Seed", 0, 1_000_000, 0, key="compare_seed", help="Change it to see other samples from every model.")
score = c2.toggle("Score each model (a few seconds per model, once per server)", value=False, key="compare_score",
                  disabled=not can_score,
                  help=None if can_score else "The metrics module (aigc.metrics) is not available on this server.")

names = list(shipped)
for row in range(0, len(names), 3):                       # three per row: big enough for a projector
    for col, name in zip(st.columns(3, gap="medium"), names[row:row + 3]):
        path = shipped[name]
        with col:
            st.subheader(name)
            try:
                loaded = cached.model_file(path)
            except (CheckpointError, OSError) as exc:
                st.error(f"This checkpoint can't be used: {exc}")
                continue
            widgets.image(cached.sample_grid(loaded.key, loaded.model, int(seed), n=36, nrow=6, scale=4),
                          caption=f"{loaded.checkpoint['model_name']} · {loaded.checkpoint['step']:,} steps · "
                                  f"{cached.sampling_ms(loaded.key, loaded.model):.2f} ms per image")
            if score:
                try:
                    s = cached.evaluate(str(path), path.stat().st_mtime)
                except (CheckpointError, ImportError, OSError, RuntimeError) as exc:
                    st.error(f"Could not score it: {exc}")
                else:
                    m1, m2 = st.columns(2)
                    m1.metric("Fréchet distance", f"{s['fid']:.1f}", help="Lower is better.")
                    m2.metric("Confidence", f"{s['confidence']:.2f}", help="Higher is better (max 1).")
                    st.caption(f"{s['fid_ratio']:.1f}× the real-data floor ({s['fid_floor']:.2f}) · "
                               f"{s['coverage']}/10 digits · what the classifier reads:")
                    st.vega_lite_chart(charts.class_histogram_rows(s["class_hist"]),
                                       charts.class_histogram_spec(), width="stretch")

st.divider()
st.markdown(
    "**Fréchet distance**: how far the statistics of 10,000 samples are from those of the 10,000 test digits, "
    "in the classifier's 128-d feature space (the FID recipe with an MNIST classifier in place of Inception). "
    "The **real-data floor** is the same distance for 10,000 real training digits — as good as it gets. "
    "**Confidence**: the classifier's mean top probability. **Digits**: classes that get at least 1% of samples; "
    "the bars show the share of samples read as each digit (even bars: no digit is forgotten).")
