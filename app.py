"""aigc — the Streamlit frame: navigation, the sidebar, and nothing else (pages live in pages/)."""
import os

# Set before torch loads OpenMP. Training threads and page scripts both call into torch; with OpenMP's
# default busy-waiting their thread teams spin against each other on a 2-core machine, and the training
# slows down.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import streamlit as st  # noqa: E402

from ui import startup  # noqa: E402

st.set_page_config(page_title="aigc — generative models on MNIST", page_icon=":material/draw:", layout="wide")

pages = st.navigation([
    st.Page("pages/home.py", title="Home", icon=":material/home:", url_path="home", default=True),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:", url_path="train"),
    st.Page("pages/explore.py", title="Explore", icon=":material/explore:", url_path="explore"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare:", url_path="compare"),
])

with st.sidebar:
    if startup.backend_ready():
        from ui import cached

        st.caption(f"Running on **{cached.device_label()}**")
        counts = cached.registry().counts()
        st.caption(f"Trainings: {counts['running']} running · {counts['queued']} queued · "
                   f"{counts['max_jobs']} at a time")
    else:                      # a fresh server's first seconds: the page draws what it can meanwhile
        st.caption("Loading PyTorch…")
        startup.rerun_when_ready()

startup.run_page(pages)
