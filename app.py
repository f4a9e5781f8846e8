"""aigc — the Streamlit frame: navigation, the sidebar, and nothing else (pages live in pages/)."""
import os

# Set before torch loads OpenMP. Training threads and page scripts both call into torch. With OpenMP's
# default a thread team spins for about 300,000 rounds after each parallel op, and two teams spin against
# each other on a 2-core machine; with no spinning at all (OMP_WAIT_POLICY=PASSIVE) the training's team
# sleeps between its many small ops and trains at about 60% of its speed. A short spin keeps the training
# at full speed and lets an idle team sleep at once (bench/audience.py).
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

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
