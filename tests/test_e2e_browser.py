"""The app in a real browser: `streamlit run app.py` on localhost, driven by Playwright in Debian's Chromium.

Skipped where Chromium or Playwright is missing, unless AIGC_REQUIRE_BROWSER=1 (CI), where it must run.
Screenshots go to $AIGC_SCREENSHOT_DIR (default: a pytest temp folder). The tests share one server and
one browser tab and run in file order, like a person going through the app; the cold-start test has a
fresh server of its own.
"""
import os
import re
import shutil
import time
from pathlib import Path

import pytest
from conftest import free_port, start_streamlit, stop_streamlit

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CONNECTED = "[data-testid='stApp'][data-test-connection-state='CONNECTED']"
CHART = "[data-testid='stVegaLiteChart']"
TRAIN_STEPS = 100


def _require_browser():
    reason = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        reason = "playwright is not installed (pip install playwright; the browser is Debian's chromium)"
    if not os.path.exists(CHROMIUM):
        reason = f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    if reason:
        if os.environ.get("AIGC_REQUIRE_BROWSER") == "1":
            pytest.fail(f"browser test required (AIGC_REQUIRE_BROWSER=1) but {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    _require_browser()
    port = free_port()
    proc = start_streamlit(tmp_path_factory.mktemp("runs"), port, AIGC_MAX_JOBS="1")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:                                   # always: the server and its training threads go away
        stop_streamlit(proc)


@pytest.fixture(scope="module")
def browser():
    _require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync"])
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def page(server, browser):
    pg = browser.new_context(viewport={"width": 1400, "height": 1600}).new_page()
    pg.set_default_timeout(30_000)
    return pg


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = Path(os.environ.get("AIGC_SCREENSHOT_DIR") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_page(page, url):
    page.goto(url)
    page.wait_for_selector(CONNECTED, timeout=60_000)
    page.wait_for_selector("[data-testid='stMain'] h1", timeout=60_000)


def sidebar_pages(page) -> str:
    return page.locator("[data-testid='stSidebarNav']").inner_text()


def progress_step(page) -> int:
    page.wait_for_function(       # a page that just reran (paused: the time machine came) redraws its bar first
        "() => /step [0-9]/.test(document.querySelector(\"[data-testid='stProgress']\")?.innerText)")
    text = page.locator("[data-testid='stProgress']").first.inner_text()
    return int(text.split("step", 1)[1].split("/", 1)[0].replace(",", ""))


def test_a_share_link_opened_first_on_a_fresh_server_keeps_the_app_frame(page, server, shots):
    # the server has served nothing yet: Streamlit's old pages/ mode would run train.py without app.py
    open_page(page, f"{server}/train?run=nosuchrun")
    page.get_by_text("no longer on this server").wait_for()
    nav = sidebar_pages(page)
    assert "Explore" in nav and "app" not in nav.split(), nav
    assert "running" in page.locator("[data-testid='stSidebar']").inner_text()
    page.screenshot(path=str(shots / "train_unknown_run.png"))


def test_home_renders(page, server, shots):
    open_page(page, server)
    assert "watch a machine learn" in page.inner_text("h1")
    page.wait_for_selector("[data-testid='stImage'] img")
    page.screenshot(path=str(shots / "home.png"), full_page=True)


# Notes the order in which the Home page's parts first show (not when: how long it takes is bench/cold_start.py's).
FIRST_SEEN = """
window._seen = [];
const poll = setInterval(() => {
  const main = document.querySelector("[data-testid='stMain']");
  const note = (what, shown) => { if (shown && !window._seen.includes(what)) window._seen.push(what); };
  note("title", main?.querySelector("h1")?.innerText.includes("watch a machine learn"));
  note("placeholder", main?.innerText.includes("Loading PyTorch to draw digits"));
  note("grid", main?.querySelector("[data-testid='stImage'] img")?.complete);
}, 10);
"""


def test_a_fresh_server_shows_the_home_text_before_pytorch_is_in(browser, tmp_path, shots):
    # the first visitor of a server that has imported nothing yet: the text comes at once, a placeholder
    # says what is coming, and the digits replace it once the backend is imported
    port = free_port()
    proc = start_streamlit(tmp_path / "runs", port)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.add_init_script(FIRST_SEEN)
        page.goto(f"http://127.0.0.1:{port}")
        page.get_by_text("Loading PyTorch to draw digits").wait_for(timeout=60_000)
        page.screenshot(path=str(shots / "home_cold_start.png"))
        page.wait_for_function("() => window._seen.includes('grid')", timeout=120_000)
        assert page.evaluate("() => window._seen") == ["title", "placeholder", "grid"]
        page.get_by_text("Loading PyTorch to draw digits").wait_for(state="detached")
        page.locator("[data-testid='stSidebar']").get_by_text("Trainings:").wait_for()
        page.screenshot(path=str(shots / "home_warm.png"))
    finally:
        context.close()
        stop_streamlit(proc)


def test_train_live_then_finished(page, server, shots):
    open_page(page, f"{server}/train")
    steps = page.get_by_role("spinbutton", name="Steps")
    steps.fill(str(TRAIN_STEPS))
    steps.press("Enter")
    page.wait_for_timeout(500)
    started = time.monotonic()
    page.locator("button[kind='primary']", has_text="Start").click()
    page.wait_for_url("**key=*")
    page.wait_for_selector(CHART, timeout=60_000)
    frame_s = time.monotonic() - started
    # the first log entry (step 5, TrainConfig.log_every) is the chart's first data point
    page.wait_for_function(
        "() => /step ([5-9]|[1-9][0-9])/.test(document.querySelector(\"[data-testid='stProgress']\")?.innerText)",
        timeout=60_000)
    first_data_s = time.monotonic() - started
    print(f"\nchart frame {frame_s:.1f} s, first chart data {first_data_s:.1f} s after pressing Start")

    # steady: over ~3 s of live updates the charts are never unmounted, blanked or resized
    page.evaluate("""(sel) => {
        window._removed = 0; window._heights = new Set();
        new MutationObserver(ms => { for (const m of ms) for (const n of m.removedNodes)
            if (n.nodeType === 1 && (n.matches?.(sel) || n.querySelector?.(sel))) window._removed++; })
          .observe(document.body, {childList: true, subtree: true});
        window._iv = setInterval(() => document.querySelectorAll(sel).forEach(
            c => window._heights.add(Math.round(c.getBoundingClientRect().height))), 25);
    }""", CHART)
    before = progress_step(page)
    page.wait_for_timeout(3000)
    removed, heights = page.evaluate("() => { clearInterval(window._iv); return [window._removed, [...window._heights]]; }")
    assert progress_step(page) > before, "training made progress while we watched"
    assert removed == 0, f"the live chart was unmounted {removed} times (flicker)"
    assert 0 not in heights, f"the live chart collapsed: heights {heights}"
    page.screenshot(path=str(shots / "train_running.png"), full_page=True)

    page.get_by_text("· finished").wait_for(timeout=80_000)
    page.get_by_text("Replay: the grid at step").wait_for()
    page.wait_for_timeout(1000)
    page.screenshot(path=str(shots / "train_finished.png"), full_page=True)
    share = page.locator("[data-testid='stCode']").first.inner_text().strip()
    assert "?run=" in share and "key" not in share

    # a refresh reattaches to the same run
    run_url = page.url
    page.reload()
    page.wait_for_selector(CONNECTED, timeout=60_000)
    page.get_by_text("· finished").wait_for()
    assert page.url == run_url

    # the read-only link shows the run without its controls
    watcher = page.context.new_page()
    try:
        watcher.set_viewport_size({"width": 1400, "height": 1100})
        open_page(watcher, share)
        watcher.get_by_text("read-only").first.wait_for()
        watcher.get_by_text(f"step {TRAIN_STEPS} / {TRAIN_STEPS}").wait_for()
        watcher.wait_for_timeout(500)
        assert watcher.get_by_role("button", name="New run", exact=True).count() == 0
        watcher.screenshot(path=str(shots / "train_watcher.png"))
        watcher.set_viewport_size({"width": 390, "height": 844})         # a student watching on a phone
        watcher.wait_for_timeout(1000)
        for i, part in enumerate([watcher.locator("h1").first, watcher.locator(CHART).first,
                                  watcher.get_by_text("Replay: the grid at step")]):
            part.scroll_into_view_if_needed()           # the page scrolls inside stMain, not the window
            watcher.wait_for_timeout(500)
            watcher.screenshot(path=str(shots / f"train_watcher_phone_{i}.png"))
    finally:
        watcher.close()


def test_explore_the_run_just_trained(page, server, shots):
    page.locator("[data-testid='stSidebarNav'] a", has_text="Explore").click()      # same session
    page.get_by_text(f"trained {TRAIN_STEPS} steps").wait_for()   # the first choice: this tab's finished run
    image = page.locator("[data-testid='stImage'] img").first
    image.wait_for()
    before = image.get_attribute("src")
    slider = page.get_by_role("slider").first
    slider.focus()
    started = time.monotonic()
    for _ in range(15):
        page.keyboard.press("ArrowRight")
    page.wait_for_function("(b) => document.querySelector(\"[data-testid='stImage'] img\").src !== b", arg=before)
    print(f"\nslider moved -> new image in {time.monotonic() - started:.2f} s")
    page.wait_for_timeout(1000)
    page.screenshot(path=str(shots / "explore.png"), full_page=True)


def test_explore_the_2d_vae_map(page, server, shots):
    open_page(page, f"{server}/explore")
    page.locator("[data-testid='stSelectbox']").first.click()
    option = page.get_by_role("option", name="vae2d (shipped)")
    if option.count() == 0:
        pytest.skip("no shipped vae2d checkpoint")
    option.click()
    page.get_by_text("The whole latent map").wait_for()
    chart = page.locator(CHART).first
    chart.wait_for()
    chart.scroll_into_view_if_needed()
    page.wait_for_timeout(1500)
    decoded = page.locator("[data-testid='stImage'] img").last
    before = decoded.get_attribute("src")
    box = chart.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.35)
    page.wait_for_function("(b) => [...document.querySelectorAll(\"[data-testid='stImage'] img\")].pop().src !== b",
                           arg=before)
    page.wait_for_timeout(1000)
    page.screenshot(path=str(shots / "explore_vae2d_map.png"))


def test_pause_resume_and_stop_say_so(page, server, shots):
    open_page(page, f"{server}/train")
    steps = page.get_by_role("spinbutton", name="Steps")
    steps.fill("100000")
    steps.press("Enter")
    page.wait_for_timeout(500)
    page.locator("button[kind='primary']", has_text="Start").click()
    page.get_by_text("· running").wait_for(timeout=60_000)
    page.get_by_role("button", name="Pause", exact=True).click()
    page.get_by_text("· paused").wait_for()
    page.get_by_role("button", name="Resume", exact=True).wait_for()
    paused_at = progress_step(page)
    page.get_by_role("button", name="Resume", exact=True).click()
    page.get_by_text("· running").wait_for()
    page.get_by_role("button", name="Pause", exact=True).wait_for()
    page.wait_for_function(f"() => /step ([0-9,]+)/.exec(document.querySelector(\"[data-testid='stProgress']\")"
                           f"?.innerText)?.[1].replace(/,/g, '') > {paused_at}", timeout=30_000)
    # while the page redraws after the resume, the paused page's Resume button can linger, faded, beside
    # Pause until that redraw ends (a loaded machine caught it); it must then be gone
    page.get_by_role("button", name="Resume", exact=True).wait_for(state="detached", timeout=10_000)
    page.screenshot(path=str(shots / "train_resumed.png"))
    # the live settings are drawn once their expander is open, and stay open through the page's polls
    from playwright.sync_api import expect
    beta1 = page.get_by_role("spinbutton", name="Adam's β₁")
    assert beta1.count() == 0
    page.get_by_text("Change settings while it trains").click()
    beta1.fill("0.6")
    beta1.press("Enter")
    apply = page.get_by_role("button", name="Apply", exact=True)
    expect(apply).to_be_enabled(timeout=10_000)           # once the page has read the new value
    apply.click()
    expect(apply).to_be_disabled(timeout=30_000)           # applied: 0.6 is now the run's own value
    page.wait_for_timeout(2_500)                           # two polls later: still open, still showing it
    assert beta1.input_value() == "0.60" and apply.is_disabled()
    page.get_by_role("button", name="Stop", exact=True).click()
    page.get_by_text("· stopped").wait_for(timeout=60_000)
    page.get_by_role("button", name="New run", exact=True).click()        # back to an empty Train page for the next test
    page.wait_for_url(lambda url: "run=" not in url)


def test_the_coach_sees_a_collapse_its_remedy_cures_it_and_a_branch_rewinds(page, server, shots):
    open_page(page, f"{server}/train")
    page.locator("[data-testid='stSelectbox']", has_text="Or start a lesson").locator("input").click()
    page.get_by_role("option", name="Mode collapse, and its cure").click()
    page.get_by_role("button", name="Start this lesson").click()
    page.wait_for_url("**key=*")
    page.get_by_text("The coach paused the run").wait_for(timeout=120_000)
    page.get_by_text("Mode collapse: it draws").first.wait_for()
    page.wait_for_timeout(1000)
    page.screenshot(path=str(shots / "train_coach_collapse.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(1000)
    page.get_by_text("Why: G is rewarded").first.scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    page.screenshot(path=str(shots / "train_coach_collapse_phone.png"))
    page.set_viewport_size({"width": 1400, "height": 1600})
    page.get_by_role("button", name="Set β₁ back to 0.5").first.click()
    page.get_by_text("Applied at the next step:").wait_for()
    page.wait_for_function("() => ![...document.querySelectorAll('button')].some(b => b.innerText.includes('Set β₁'))",
                           timeout=30_000)      # the coach judges only what comes after the change
    page.get_by_role("button", name="Resume", exact=True).click()
    page.get_by_text("· running").wait_for()
    paused_at = progress_step(page)
    page.wait_for_function(f"() => /step ([0-9,]+)/.exec(document.querySelector(\"[data-testid='stProgress']\")"
                           f"?.innerText)?.[1].replace(/,/g, '') > {paused_at + 300}", timeout=60_000)
    page.get_by_role("button", name="Pause", exact=True).click()
    page.get_by_text("· paused").wait_for()
    page.get_by_text("Time machine: branch from an earlier moment").wait_for()
    slider = page.get_by_role("slider").last
    slider.focus()
    slider.press("Home")                       # the first moment it kept
    page.get_by_text("the grid at step 1", exact=True).wait_for()
    beta1 = page.get_by_label("Adam's β₁", exact=True).last
    beta1.fill("0.50")
    beta1.press("Enter")
    page.get_by_text("Changed: Adam's β₁ 0.95 → 0.5").wait_for()
    page.get_by_text("Time machine: branch from an earlier moment").scroll_into_view_if_needed()
    page.wait_for_timeout(1000)
    page.screenshot(path=str(shots / "train_time_machine.png"))
    parent = page.url.split("run=")[1].split("&")[0]
    page.get_by_role("button", name="Branch from here").click()
    page.wait_for_url(lambda url: "run=" in url and f"run={parent}" not in url)
    page.get_by_text("Branches").first.wait_for(timeout=60_000)
    page.get_by_text("branch 1:").first.wait_for(timeout=60_000)
    page.wait_for_timeout(4000)
    page.get_by_text("Branches").first.scroll_into_view_if_needed()
    page.wait_for_timeout(1000)
    page.screenshot(path=str(shots / "train_branches.png"))
    page.get_by_role("button", name="Stop", exact=True).click()
    page.get_by_text("· stopped").wait_for(timeout=60_000)
    page.get_by_role("button", name="New run", exact=True).click()
    page.wait_for_url(lambda url: "run=" not in url)


def test_compare_renders(page, server, shots):
    open_page(page, f"{server}/compare")
    if page.get_by_text("No shipped checkpoints").count():
        page.screenshot(path=str(shots / "compare.png"), full_page=True)
        return
    page.wait_for_function("() => document.querySelectorAll(\"[data-testid='stImage'] img\").length >= 4",
                           timeout=60_000)
    page.wait_for_timeout(500)
    page.screenshot(path=str(shots / "compare.png"), full_page=True)


def test_uploading_a_bad_checkpoint_shows_a_clear_error(page, server, shots, tmp_path):
    bad = tmp_path / "notes.pt"
    bad.write_bytes(b"this is not a checkpoint at all")
    open_page(page, f"{server}/explore")
    page.get_by_text("Upload a checkpoint").click()
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(bad))
    alert = page.locator("[data-testid='stAlert']", has_text="can't be used")
    alert.wait_for()
    assert "notes.pt" in alert.inner_text() and "not a readable checkpoint" in alert.inner_text()
    page.screenshot(path=str(shots / "explore_bad_upload.png"))


def choose(page, selectbox: str, option: str):
    """Picks the first option starting with `option` in the selectbox labelled `selectbox`."""
    box = page.locator("[data-testid='stSelectbox']", has_text=selectbox).first
    box.scroll_into_view_if_needed()          # a click that first has to scroll the page opens no list
    page.wait_for_timeout(300)
    box.click()
    page.get_by_role("option", name=re.compile("^" + re.escape(option))).first.click()
    page.wait_for_timeout(500)


def train_briefly(page, server, model: str, steps: int, base: str | None = None):
    open_page(page, f"{server}/train")
    choose(page, "Model", model + " —")
    if base:
        choose(page, "Built on", base)
    field = page.get_by_role("spinbutton", name="Steps")
    field.fill(str(steps))
    field.press("Enter")
    page.wait_for_timeout(500)
    page.locator("button[kind='primary']", has_text="Start").click()
    page.wait_for_url("**key=*")


def test_diffusion_trains_live_then_samples_step_by_step(page, server, shots):
    train_briefly(page, server, "diffusion", 60)
    page.get_by_text("Loss by noise level").wait_for(timeout=60_000)  # the declared panel of the t-bins
    page.get_by_text("· finished").wait_for(timeout=120_000)
    page.wait_for_timeout(1000)
    page.screenshot(path=str(shots / "train_diffusion.png"), full_page=True)

    page.locator("[data-testid='stSidebarNav'] a", has_text="Explore").click()
    page.get_by_text("Sampling, step by step").wait_for()
    choose(page, "Checkpoint", "diffusion run")
    page.get_by_text("Sampling, step by step").wait_for()
    page.get_by_text("The forward process").wait_for()
    x_t = page.locator("[data-testid='stImage']", has_text="x_t after").locator("img")
    before = x_t.get_attribute("src")
    # Explore opens at the run's own sampling, the 8 steps its live grid took
    assert "8 of 8 steps" in page.locator("[data-testid='stImage']", has_text="x_t after").inner_text()
    page.locator("input[type='range'][aria-label='Step']").focus()
    for _ in range(5):
        page.keyboard.press("ArrowLeft")          # scrub back towards the noise
    page.get_by_text("x_t after 3 of 8 steps").wait_for()
    assert x_t.get_attribute("src") != before
    assert page.get_by_text("x̂₀, its guess of the finished digit").count() == 1
    seed = page.get_by_role("spinbutton", name="Random seed").first
    server_ms = []
    for k in range(5):                            # new seeds: a new trajectory each, the section's own rerun
        shown = page.locator("[data-testid='stCaptionContainer']", has_text="Server time").first.inner_text()
        seed.fill(str(100 + k))
        seed.press("Enter")
        page.wait_for_function("(s) => [...document.querySelectorAll(\"[data-testid='stCaptionContainer']\")]"
                               ".some(c => c.innerText.startsWith('Server time') && c.innerText !== s)", arg=shown)
        shown = page.locator("[data-testid='stCaptionContainer']", has_text="Server time").first.inner_text()
        server_ms.append(float(shown.split(": ")[1].split(" ms")[0]))
    print(f"\nnew seed -> 8-step trajectory, server time per update: {sorted(server_ms)} ms")
    page.wait_for_timeout(500)
    page.screenshot(path=str(shots / "explore_diffusion.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})            # a student's phone
    page.wait_for_timeout(1000)
    page.screenshot(path=str(shots / "explore_diffusion_phone.png"), full_page=True)
    page.set_viewport_size({"width": 1400, "height": 1600})


def test_latent_diffusion_over_the_2d_vae_draws_its_paths_on_the_map(page, server, shots):
    open_page(page, f"{server}/train")
    choose(page, "Model", "latent_diffusion —")
    page.locator("[data-testid='stSelectbox']", has_text="Built on").first.click()
    if page.get_by_role("option", name="vae2d (shipped)").count() == 0:
        pytest.skip("no shipped vae2d checkpoint")
    page.keyboard.press("Escape")
    train_briefly(page, server, "latent_diffusion", 100, base="vae2d (shipped)")
    page.get_by_text("· finished").wait_for(timeout=120_000)
    page.locator("[data-testid='stSidebarNav'] a", has_text="Explore").click()
    page.get_by_text("Sampling, step by step").wait_for()
    choose(page, "Checkpoint", "latent_diffusion run")
    page.get_by_text("The black lines are the ways ten samples").wait_for()
    chart = page.locator(CHART).last
    chart.scroll_into_view_if_needed()
    page.wait_for_timeout(1500)
    page.screenshot(path=str(shots / "explore_latent_diffusion_map.png"), full_page=True)


def stroke(page, box, points):
    """One pen stroke through `points`, given as fractions (x, y) of the box `box`."""
    at = lambda p: (box["x"] + p[0] * box["width"], box["y"] + p[1] * box["height"])
    page.mouse.move(*at(points[0]))
    page.mouse.down()
    for p in points[1:]:
        page.mouse.move(*at(p), steps=12)
    page.mouse.up()


def test_draw_a_digit_and_see_what_each_kind_of_model_makes_of_it(page, server, shots):
    open_page(page, f"{server}/explore")
    choose(page, "Checkpoint", "vae2d (shipped)")
    page.get_by_text("Draw a digit on the left").wait_for()
    canvas = page.locator("canvas.upper-canvas").first             # Fabric.js's drawing layer
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    stroke(page, box, [(0.25, 0.22), (0.72, 0.22), (0.42, 0.85)])  # a 7: the bar, then down to the left
    page.get_by_text("The classifier reads a").wait_for()
    assert "The classifier reads a 7" in page.get_by_text("The classifier reads a").inner_text()
    page.get_by_text("Where the encoder puts the drawing").wait_for()
    page.wait_for_timeout(1000)
    page.get_by_text("Draw a digit", exact=True).scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "explore_drawing_vae2d.png"))
    served = page.locator("[data-testid='stCaptionContainer']", has_text="Server time").last.inner_text()
    print(f"\nstroke -> classifier reading, VAE point and reconstruction: {served}")

    choose(page, "Checkpoint", "cgan (shipped)")                    # the drawing stays on the canvas
    page.get_by_role("button", name="Find it in the latent space").click()
    page.get_by_text("the best random z").wait_for(timeout=60_000)
    page.wait_for_timeout(1000)
    page.get_by_text("Draw a digit", exact=True).scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "explore_drawing_cgan.png"))

    choose(page, "Checkpoint", "diffusion (shipped)")
    page.get_by_text("The way back").wait_for(timeout=60_000)
    page.set_viewport_size({"width": 390, "height": 844})            # a student's phone
    page.wait_for_timeout(1500)
    for i, anchor in enumerate(["Draw a digit", "What diffusion makes of it", "The way back", "Morph to seed"]):
        page.get_by_text(anchor).first.scroll_into_view_if_needed()   # the page scrolls inside stMain
        page.wait_for_timeout(500)
        page.screenshot(path=str(shots / f"explore_drawing_diffusion_phone_{i}.png"))
    page.set_viewport_size({"width": 1400, "height": 1600})
