"""A server killed mid-run and started again, in a real browser: the run is still there, and its owner resumes it.

Like tests/test_e2e_browser.py (whose browser helpers it uses), skipped without Chromium and Playwright unless
AIGC_REQUIRE_BROWSER=1. The server saves a run's state every second here (AIGC_STATE_EVERY) instead of 30.
"""
import re

from conftest import free_port, start_streamlit, stop_streamlit, wait_for
from test_e2e_browser import CONNECTED, browser, shots  # noqa: F401 (browser, shots: its fixtures)

STATE_EVERY = "1"


def shown_step(page) -> int:
    """The step the progress bar shows, once it shows one (it is redrawn every second)."""
    return int(page.wait_for_function("""() => /step ([0-9,]+)/.exec(
        document.querySelector("[data-testid='stProgress']")?.innerText)?.[1].replace(/,/g, '')""").json_value())


def test_a_run_survives_its_server_being_killed_and_its_owner_resumes_it(tmp_path, browser, shots):  # noqa: F811
    runs, port = tmp_path / "runs", free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_streamlit(runs, port, AIGC_STATE_EVERY=STATE_EVERY, AIGC_MAX_JOBS="1")
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{url}/train")
        page.wait_for_selector(CONNECTED)
        steps = page.get_by_role("spinbutton", name="Steps")
        steps.fill("100000")
        steps.press("Enter")
        page.wait_for_timeout(500)
        page.locator("button[kind='primary']", has_text="Start").click()
        page.wait_for_url("**key=*")
        owner_url = page.url
        run_id = re.search(r"run=(\w+)", owner_url).group(1)
        state = runs / "state" / f"{run_id}.pt"
        page.get_by_text("· running").wait_for()
        wait_for(state.exists, what="the running run's first saved state")
        shown = shown_step(page)
        page.wait_for_timeout(2500)               # more than AIGC_STATE_EVERY of training after that step
        stop_streamlit(server, kill=True)

        server = start_streamlit(runs, port, AIGC_STATE_EVERY=STATE_EVERY, AIGC_MAX_JOBS="1")
        watcher = context.new_page()                  # another person, with the read-only link
        watcher.goto(f"{url}/train?run={run_id}")                       # the read-only link still works
        watcher.wait_for_selector(CONNECTED)
        watcher.get_by_text("· interrupted").wait_for()
        watcher.get_by_text("whoever started it can resume it").wait_for()
        nav = watcher.locator("[data-testid='stSidebarNav']").inner_text()
        assert "Explore" in nav and "app" not in nav.split(), "the app's frame, though both tabs came at once"
        assert watcher.get_by_role("button", name="Resume").count() == 0
        saved_at = shown_step(watcher)
        assert saved_at >= shown, "the restart lost no more than the last second of training"
        watcher.screenshot(path=str(shots / "restart_watcher.png"), full_page=True)

        page.goto(owner_url)
        page.wait_for_selector(CONNECTED)
        page.get_by_role("button", name="Resume").click()
        page.get_by_text("· running").wait_for()
        page.wait_for_function(f"() => /step ([0-9,]+)/.exec(document.querySelector(\"[data-testid='stProgress']\")"
                               f"?.innerText)?.[1].replace(/,/g, '') > {saved_at}")
        page.screenshot(path=str(shots / "restart_resumed.png"), full_page=True)
        page.get_by_role("button", name="Stop").click()
        page.get_by_text("· stopped").wait_for()
    finally:
        context.close()
        stop_streamlit(server)
