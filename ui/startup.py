"""A fresh server's first seconds, when nothing is imported or cached yet.

The backend (PyTorch, torchvision, aigc) takes seconds to import on a small CPU, and a server imports it
only when its first visitor arrives. So this module imports only Streamlit: the frame and the Home page draw
their text at once, warm_up() imports the backend in a background thread, and what needs it appears when
backend_ready() says it is in (rerun_when_ready() reruns the page then).
"""
from __future__ import annotations

import sys
import threading

import streamlit as st

_frame = threading.local()   # .active while app.py runs a page on this script thread


def run_page(page) -> None:
    """app.py runs the chosen page through here, so that require_frame can tell the page has the app's frame,
    and then starts warm_up(): after the page, not before, because the import holds the GIL for long
    stretches and the first visitor's page would wait for it to send its text."""
    _frame.active = True
    try:
        page.run()
    finally:
        _frame.active = False
        warm_up()


def require_frame() -> None:
    """Call first thing in every page. Streamlit runs a script of pages/ on its own, without app.py (its
    older "pages directory" mode), until some run of app.py has called st.navigation in this process, and
    offers no setting to turn that mode off. So on a fresh server the first visitors who open a page
    address directly (a shared /train?run=… link, or every tab of a class reconnecting to a restarted
    server at once) would get the page without the app's frame. Such a run switches the mode off and reruns
    through app.py, landing on the same page. It asks whether this run came through app.py, not whether the
    mode is still on: another session may have switched it off while this run had already started without
    the frame. Once per session, because streamlit.testing's AppTest turns the mode back on before every
    run and a rerun in each would swallow the clicks a test makes. tests/test_e2e_browser.py opens a share
    link first on a fresh server; tests/test_server_restart.py reconnects two tabs to a restarted one."""
    from streamlit.runtime.pages_manager import PagesManager

    if not getattr(_frame, "active", False) and not st.session_state.get("_framed"):
        st.session_state["_framed"] = True
        PagesManager.uses_pages_directory = False
        st.rerun()


@st.cache_resource(show_spinner=False)
def _ready() -> threading.Event:
    """Set once the backend is imported and the Home page's picture drawn: by warm_up(), or at once where
    the backend was imported before any page ran, as in tests."""
    ready = threading.Event()
    if "ui.cached" in sys.modules:
        ready.set()
    return ready


def backend_ready() -> bool:
    """Whether the backend is imported, so that using it costs no wait."""
    return _ready().is_set()


@st.cache_resource(show_spinner=False)
def warm_up() -> None:
    """Once per server, in the background: import the backend and draw the Home page's picture (then
    backend_ready() says so), then import the charts' pandas and read MNIST and the metrics classifier, so
    the first Start does not wait for them and the first live score is instant. A page that needs any of it
    meanwhile waits for this thread's import."""
    ready = _ready()

    def work():
        try:
            from ui import cached, session, widgets  # noqa: F401
            cached.demo_grid()
        finally:
            ready.set()                       # after a failed import, the page that needs it shows the error
        try:
            from ui import charts  # noqa: F401
            from aigc import load_mnist
            from aigc.metrics import load_classifier
            load_mnist(train=True)
            load_classifier()
        except Exception:                     # no data yet / no classifier: the run or the badge reports it later
            pass

    threading.Thread(target=work, name="aigc-warm-up", daemon=True).start()


@st.fragment(run_every=0.5)
def rerun_when_ready() -> None:
    """Shows nothing; checks twice a second and reruns the whole page once the backend is in."""
    if backend_ready():
        st.rerun()
