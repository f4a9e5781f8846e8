"""aigc — the Streamlit frame: navigation, the sidebar, and nothing else (pages live in pages/)."""
import streamlit as st

import app_state

st.set_page_config(page_title="aigc — generative models on MNIST", page_icon=":material/draw:", layout="wide")

pages = st.navigation([
    st.Page("pages/home.py", title="Home", icon=":material/home:", url_path="home", default=True),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:", url_path="train"),
    st.Page("pages/explore.py", title="Explore", icon=":material/explore:", url_path="explore"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare:", url_path="compare"),
])

with st.sidebar:
    st.caption(f"Running on **{app_state.device_label()}**")
    counts = app_state.registry().counts()
    st.caption(f"Trainings: {counts['running']} running · {counts['queued']} queued · "
               f"{counts['max_jobs']} at a time")

pages.run()
