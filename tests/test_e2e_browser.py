"""The app in a real browser: `streamlit run app.py` on localhost, driven by Playwright in Debian's Chromium.

Skipped where Chromium or Playwright is missing, unless AIGC_REQUIRE_BROWSER=1 (CI), where it must run.
Screenshots go to $AIGC_SCREENSHOT_DIR (default: a pytest temp folder).
"""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CONNECTED = "[data-testid='stApp'][data-test-connection-state='CONNECTED']"


def _require_browser():
    reason = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reason = "playwright is not installed"
    if not os.path.exists(CHROMIUM):
        reason = "Debian's chromium is not installed (apt-get install chromium)"
    if reason:
        if os.environ.get("AIGC_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser test required but {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _require_browser()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    runs = tmp_path_factory.mktemp("runs")
    env = {**os.environ, "AIGC_RUNS_DIR": str(runs), "AIGC_MAX_JOBS": "1"}
    log = open(runs / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("streamlit did not start: " + (runs / "server.log").read_text()[-2000:])
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync"])
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        yield pg
        browser.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = Path(os.environ.get("AIGC_SCREENSHOT_DIR") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_page(page, url):
    page.goto(url)
    page.wait_for_selector(CONNECTED, timeout=60_000)
    page.wait_for_selector("[data-testid='stMain'] h1", timeout=60_000)


def test_home_renders(page, server, shots):
    open_page(page, server)
    assert "watch a machine learn" in page.inner_text("h1")
    page.screenshot(path=str(shots / "home.png"), full_page=True)


def test_train_shows_chart_and_samples(page, server, shots):
    open_page(page, f"{server}/train")
    page.locator("button[kind='primary']", has_text="Start").click()
    page.wait_for_url("**run=*", timeout=30_000)
    started = time.monotonic()
    page.wait_for_selector(".js-plotly-plot", timeout=90_000)
    first_chart_s = time.monotonic() - started
    page.wait_for_selector("[data-testid='stImage'] img", timeout=60_000)
    page.wait_for_timeout(4000)
    page.screenshot(path=str(shots / "train_running.png"), full_page=True)
    assert "run " in page.inner_text("[data-testid='stMain']")
    print(f"first chart update {first_chart_s:.1f} s after Start")
    # a refresh reattaches to the same run
    run_url = page.url
    page.reload()
    page.wait_for_selector(CONNECTED, timeout=60_000)
    page.wait_for_selector(".js-plotly-plot", timeout=60_000)
    assert page.url == run_url


def test_explore_slider_changes_the_image(page, server, shots):
    open_page(page, f"{server}/explore")
    page.wait_for_selector("[data-testid='stImage'] img", timeout=60_000)
    before = page.locator("[data-testid='stImage'] img").first.get_attribute("src")
    slider = page.get_by_role("slider").first
    slider.focus()
    for _ in range(15):
        page.keyboard.press("ArrowRight")
    page.wait_for_timeout(2500)
    after = page.locator("[data-testid='stImage'] img").first.get_attribute("src")
    page.screenshot(path=str(shots / "explore.png"), full_page=True)
    assert before != after


def test_compare_renders(page, server, shots):
    open_page(page, f"{server}/compare")
    page.wait_for_selector("[data-testid='stImage'] img", timeout=60_000)
    assert page.locator("[data-testid='stImage'] img").count() >= 4
    page.screenshot(path=str(shots / "compare.png"), full_page=True)


def test_uploading_a_bad_checkpoint_shows_a_clear_error(page, server, shots, tmp_path):
    bad = tmp_path / "notes.pt"
    bad.write_bytes(b"this is not a checkpoint at all")
    open_page(page, f"{server}/explore")
    page.get_by_text("Upload a checkpoint").click()
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(bad))
    alert = page.locator("[data-testid='stAlert']", has_text="can't be used")
    alert.wait_for(timeout=30_000)
    assert "not a readable checkpoint" in alert.inner_text()
    page.screenshot(path=str(shots / "explore_bad_upload.png"), full_page=True)
