"""The app through streamlit.testing's AppTest, page by page, as a person would use it."""
import time

import pytest
import torch
from streamlit.testing.v1 import AppTest

from aigc import TrainConfig, build_model, make_checkpoint


@pytest.fixture(autouse=True)
def runs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("AIGC_RUNS_DIR", str(tmp_path / "runs"))


def app(page=None, **query):
    at = AppTest.from_file("../app.py", default_timeout=120)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def image_urls(at):
    return [img.url for el in at.get("image") for img in el.proto.imgs]


@pytest.mark.parametrize("page", [None, "pages/train.py", "pages/explore.py", "pages/compare.py"])
def test_every_page_renders(page):
    at = app(page)
    assert at.title[0].value


def test_home_names_device_and_checkpoints():
    at = app()
    captions = " ".join(c.value for c in at.caption)
    assert "Device in use" in captions and "cgan (shipped)" in captions


def test_a_tiny_training_run_updates_chart_and_grid():
    at = app("pages/train.py")
    at.selectbox(key="train_model").set_value("vae").run()
    at.number_input[0].set_value(60).run()                      # steps
    next(b for b in at.button if b.label == "Start").click().run()
    assert not at.exception, at.exception
    run_id = at.query_params["run"][0] if isinstance(at.query_params["run"], list) else at.query_params["run"]
    assert run_id
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        time.sleep(0.5)
        at.run()                       # AppTest does not fire run_every; each run() reruns the fragment
        if at.get("plotly_chart") and image_urls(at) and any("finished" in s.value for s in at.subheader):
            break
    assert not at.exception, at.exception
    assert at.get("plotly_chart"), "no loss chart"
    assert image_urls(at), "no sample grid"
    assert any("finished" in s.value for s in at.subheader)
    # after the run: the replay slider changes the grid
    replay = next(s for s in at.slider if s.label == "Snapshot")
    last = image_urls(at)
    replay.set_value(0).run()
    assert image_urls(at) != last


def test_watchers_without_the_key_cannot_control_the_run():
    import app_state
    reg = app_state.registry()
    run = reg.submit(TrainConfig.for_model("vae", steps=100_000, batch_size=16))
    try:
        at = app("pages/train.py", run=run.id)
        assert any("read-only" in c.value for c in at.caption)
        assert not [b for b in at.button if b.label in ("Pause", "Stop")]
        owner = app("pages/train.py", run=run.id, key=run.key)
        assert [b for b in owner.button if b.label == "Stop"]
    finally:
        reg.stop(run)


def test_a_diverged_run_explains_itself():
    import app_state
    model = build_model("dcgan")
    for p in model.generator.parameters():
        p.data.fill_(float("nan"))
    reg = app_state.registry()
    run = reg.submit(TrainConfig.for_model("dcgan", steps=20, batch_size=16, log_every=2),
                     init_checkpoint=make_checkpoint(model, step=3))
    deadline = time.monotonic() + 60
    while reg.view(run).status != "diverged" and time.monotonic() < deadline:
        time.sleep(0.2)
    at = app("pages/train.py", run=run.id, key=run.key)
    assert any("NaN or infinite" in e.value and "learning rate" in e.value for e in at.error)


def test_explore_sliders_and_interpolation_change_the_pictures():
    at = app("pages/explore.py")
    before = image_urls(at)
    at.slider(key="dir_thickness").set_value(3.0).run()
    assert not at.exception
    after = image_urls(at)
    assert after[0] != before[0] and after[1] == before[1]      # the sample moved, the strip did not
    at.radio[2].set_value("lerp").run()                          # Path: slerp -> lerp
    assert image_urls(at)[1] != after[1]


def test_explore_conditional_digit_picker_and_vae_map():
    at = app("pages/explore.py")
    at.selectbox(key="explore_ckpt").set_value("cgan (shipped)").run()
    first = image_urls(at)[0]
    digit = next(r for r in at.radio if r.label == "Digit")
    digit.set_value(8).run()
    assert image_urls(at)[0] != first
    at.selectbox(key="explore_ckpt").set_value("vae2d (shipped)").run()
    assert not at.exception
    assert at.get("plotly_chart"), "the 2-D VAE shows its latent map"
    z1 = next(s for s in at.slider if s.label == "z₁")
    decoded = image_urls(at)[-1]
    z1.set_value(2.0).run()
    assert image_urls(at)[-1] != decoded


def test_compare_shows_every_shipped_model():
    at = app("pages/compare.py")
    assert len(image_urls(at)) >= 5


def test_two_tabs_of_one_session_share_one_run():
    import app_state
    reg = app_state.registry()
    run = reg.submit(TrainConfig.for_model("vae", steps=100_000, batch_size=16))
    tab1 = app("pages/train.py", run=run.id, key=run.key)
    tab2 = app("pages/train.py", run=run.id, key=run.key)
    next(b for b in tab1.button if b.label == "Stop").click().run()
    deadline = time.monotonic() + 30
    while reg.view(run).status != "stopped" and time.monotonic() < deadline:
        time.sleep(0.1)
    tab2.run()
    assert any("stopped" in s.value for s in tab2.subheader)
    assert reg.counts()["running"] == 0
