"""The app through streamlit.testing's AppTest, page by page, as a person would use it."""
import time

import pytest
import torch
from streamlit.testing.v1 import AppTest

from aigc import TrainConfig, build_model, make_checkpoint
from aigc.checkpoint import checkpoint_bytes


@pytest.fixture(autouse=True)
def fresh_server(tmp_path, monkeypatch):
    """Each test gets a new run registry (as a new server would) writing into its own runs folder."""
    import app_state

    monkeypatch.setenv("AIGC_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setattr(app_state, "RUNS_DIR", tmp_path / "runs")
    app_state.registry.clear()
    yield
    reg = app_state.registry()
    for run in reg.all_runs():
        reg.stop(run)
    app_state.registry.clear()


def registry():
    import app_state
    return app_state.registry()


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


def charts(at):
    """The live loss charts (Vega-Lite: they update in place in the browser, see app_common.live_chart)."""
    return at.get("vega_lite_chart")


def chart_rows(at) -> int:
    import pyarrow as pa
    return sum(pa.ipc.open_stream(c.proto.data.data).read_all().num_rows for c in charts(at) if c.proto.data.data)


def texts(at):
    return " ".join(e.value for kind in ("markdown", "caption", "code", "subheader", "info", "warning", "error")
                    for e in at.get(kind) if isinstance(getattr(e, "value", None), str))


def wait_for(predicate, timeout=60):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.mark.parametrize("page", [None, "pages/train.py", "pages/explore.py", "pages/compare.py"])
def test_every_page_renders(page):
    at = app(page)
    assert at.title[0].value


def test_home_names_device_and_checkpoints():
    at = app()
    captions = " ".join(c.value for c in at.caption)
    assert "Device in use" in captions and "cgan (shipped)" in captions
    sidebar = " ".join(c.value for c in at.sidebar.caption)
    assert "0 running · 0 queued" in sidebar


def test_a_tiny_training_run_updates_chart_and_grid_then_is_explorable():
    at = app("pages/train.py")
    at.selectbox(key="train_model").set_value("vae").run()
    at.number_input[0].set_value(60).run()                      # steps
    next(b for b in at.button if b.label == "Start").click().run()
    assert not at.exception, at.exception
    run_id = at.query_params["run"][0] if isinstance(at.query_params["run"], list) else at.query_params["run"]
    assert run_id and at.query_params["key"]
    assert any(f"?run={run_id}" in c.value and "key" not in c.value for c in at.code), "a read-only share link"
    assert len(charts(at)) == 2, "the chart frame is there from the start"
    blank = image_urls(at)[0]                                   # the placeholder grid
    rows = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        time.sleep(0.3)
        at.run()                       # AppTest does not fire run_every; each run() reruns the fragment
        rows.append(chart_rows(at))
        if any("finished" in s.value for s in at.subheader):
            break
    assert not at.exception, at.exception
    assert any("finished" in s.value for s in at.subheader)
    assert rows[-1] > 0 and len(set(rows)) >= 2, f"the chart never filled in: {rows}"
    assert image_urls(at)[0] != blank, "the sample grid replaced its placeholder"
    assert any("samples from fixed noise" in img.caption for el in at.get("image") for img in el.proto.imgs)
    assert "step 60 / 60" in at.get("progress")[0].proto.text
    # after the run: the replay slider changes the grid
    replay = at.select_slider(key=f"replay-{run_id}")
    last = image_urls(at)
    replay.set_value(replay.options[0]).run()
    assert image_urls(at) != last
    # the finished run of this session can be explored without saving it
    at.switch_page("pages/explore.py").run()
    assert not at.exception, at.exception
    mine = [o for o in at.selectbox(key="explore_ckpt").options if "this session" in o]
    assert mine and run_id in mine[0]
    at.selectbox(key="explore_ckpt").set_value(mine[0]).run()
    assert not at.exception, at.exception
    assert "trained 60 steps" in texts(at)


def test_the_train_page_starts_a_self_conditioned_gan_with_the_groups_asked_for():
    at = app("pages/train.py")
    at.selectbox(key="train_model").set_value("mlp_gan").run()
    groups = next(s for s in at.get("select_slider") if s.label == "Groups found without labels")
    assert groups.value == 0                                    # the plain GAN unless asked
    groups.set_value(10).run()
    at.number_input[0].set_value(20).run()                      # steps
    next(b for b in at.button if b.label == "Start").click().run()
    assert not at.exception, at.exception
    run = registry().get(at.query_params["run"][0] if isinstance(at.query_params["run"], list) else at.query_params["run"])
    assert run.config.model_args["clusters"] == 10
    wait_for(lambda: run.status == "finished" and run.final_checkpoint is not None, timeout=120)
    ckpt = run.final_checkpoint
    assert ckpt["model_args"]["clusters"] == 10 and ckpt["state_dict"]["clusters_fitted"].item()
    assert ckpt["state_dict"]["cluster_centres"].shape == (10, 784)


def test_saving_a_run_makes_it_explorable(tmp_path):
    reg = registry()
    run = reg.submit(TrainConfig.for_model("vae", steps=10, batch_size=16, model_args={"latent_dim": 2}))
    wait_for(lambda: reg.view(run).status == "finished")
    at = app("pages/train.py", run=run.id, key=run.key)
    next(b for b in at.button if b.label.startswith("Save to this server")).click().run()
    assert not at.exception, at.exception
    assert any(f"vae-{run.id}.pt" in s.value for s in at.success)
    assert (tmp_path / "runs" / f"vae-{run.id}.pt").is_file()
    at.switch_page("pages/explore.py").run()
    at.selectbox(key="explore_ckpt").set_value(f"vae-{run.id} (saved run)").run()
    assert not at.exception, at.exception
    assert at.get("plotly_chart") or at.get("vega_lite_chart"), "a 2-D VAE shows its latent map"


def test_the_train_page_says_what_a_finishing_vae_is_fitting(monkeypatch):
    import threading

    from aigc.models.vae import VAE

    release, fit = threading.Event(), VAE.finish_training
    monkeypatch.setattr(VAE, "finish_training", lambda self, data: release.wait(60) and fit(self, data))
    reg = registry()
    run = reg.submit(TrainConfig.for_model("vae", steps=6, batch_size=16))
    try:
        wait_for(lambda: reg.view(run).status == "finishing")
        at = app("pages/train.py", run=run.id, key=run.key)
        assert "finishing" in at.subheader[0].value and VAE.finishing_note in [i.value for i in at.info]
        assert not [b for b in at.button if b.label in ("Pause", "Stop", "New run")]
        unfitted_grid = image_urls(at)[0]
    finally:
        release.set()
    wait_for(lambda: reg.view(run).status == "finished")
    at.run()
    assert "finished" in at.subheader[0].value and VAE.finishing_note not in texts(at)
    # the grid redrawn from the fitted prior (same step) replaces the old one, live and in the replay
    assert unfitted_grid not in image_urls(at)


def test_watchers_without_the_key_cannot_control_the_run():
    reg = registry()
    run = reg.submit(TrainConfig.for_model("vae", steps=100_000, batch_size=16))
    at = app("pages/train.py", run=run.id)
    assert any("read-only" in c.value for c in at.caption)
    assert not [b for b in at.button if b.label in ("Pause", "Stop")]
    assert not at.code, "watchers get no share link with a key in it"
    owner = app("pages/train.py", run=run.id, key=run.key)
    assert [b for b in owner.button if b.label == "Stop"]
    next(b for b in owner.button if b.label == "Pause").click().run()
    wait_for(lambda: reg.view(run).status == "paused")
    owner.run()
    assert [b for b in owner.button if b.label == "Resume"]


def test_a_queued_run_shows_its_place_and_can_be_cancelled():
    reg = registry()
    first = reg.submit(TrainConfig.for_model("vae", steps=100_000, batch_size=16))
    others = [reg.submit(TrainConfig.for_model("vae", steps=100_000, batch_size=16)) for _ in range(reg.max_jobs)]
    queued = others[-1]
    assert reg.view(queued).status == "queued"
    at = app("pages/train.py", run=queued.id, key=queued.key)
    assert any("position" in i.value for i in at.info)
    next(b for b in at.button if b.label == "Cancel").click().run()
    assert reg.view(queued).status == "cancelled"
    assert first.status in ("running", "paused", "queued")


def test_a_diverged_run_explains_itself():
    model = build_model("dcgan")
    for p in model.generator.parameters():
        p.data.fill_(float("nan"))
    reg = registry()
    run = reg.submit(TrainConfig.for_model("dcgan", steps=20, batch_size=16, log_every=2),
                     init_checkpoint=make_checkpoint(model, step=3))
    wait_for(lambda: reg.view(run).status == "diverged")
    at = app("pages/train.py", run=run.id, key=run.key)
    assert any("NaN or infinite" in e.value and "learning rate" in e.value for e in at.error)


def test_an_unknown_run_id_says_so():
    at = app("pages/train.py", run="deadbeef")
    assert any("no longer on this server" in w.value for w in at.warning)


def test_explore_sliders_and_interpolation_change_the_pictures():
    at = app("pages/explore.py")
    before = image_urls(at)
    at.slider(key="dir_thickness").set_value(3.0).run()
    assert not at.exception
    after = image_urls(at)
    assert after[0] != before[0] and after[1] == before[1]      # the sample moved, the strip did not
    at.radio(key="morph_mode").set_value("lerp").run()
    assert image_urls(at)[1] != after[1]
    assert [d for d in at.get("download_button") if "GIF" in d.proto.label]


def test_explore_conditional_digit_picker_and_vae_map():
    at = app("pages/explore.py")
    at.selectbox(key="explore_ckpt").set_value("cgan (shipped)").run()
    first = image_urls(at)[0]
    digit = at.radio(key="digit")
    digit.set_value(8).run()
    assert image_urls(at)[0] != first
    at.selectbox(key="explore_ckpt").set_value("vae2d (shipped)").run()
    assert not at.exception
    assert at.get("plotly_chart") or at.get("vega_lite_chart"), "the 2-D VAE shows its latent map"
    z1 = next(s for s in at.slider if s.label == "z₁")
    decoded = image_urls(at)[-1]
    z1.set_value(2.0).run()
    assert image_urls(at)[-1] != decoded
    # the shipped VAE samples from its per-digit prior: it too takes the digit to draw
    at.selectbox(key="explore_ckpt").set_value("vae (shipped)").run()
    first = image_urls(at)[0]
    at.radio(key="digit").set_value(2).run()
    assert not at.exception and image_urls(at)[0] != first


def test_explore_group_picker_of_the_self_conditioned_dcgan():
    at = app("pages/explore.py")
    at.selectbox(key="explore_ckpt").set_value("dcgan (shipped)").run()
    groups = at.get("select_slider")[0]
    assert groups.label == "Group to draw from" and groups.options[0] == "any" and len(groups.options) > 10
    assert any("self-conditioned" in c.value for c in at.caption)
    assert any("One sample from each group" in img.caption for el in at.get("image") for img in el.proto.imgs)
    strip, sample, morph = image_urls(at)[:3]
    groups.set_value(groups.options[4]).run()           # group 3: the sample and the morph change, the strip not
    assert not at.exception
    after = image_urls(at)
    assert after[0] == strip and after[1] != sample and after[2] != morph


def test_explore_upload_corrupt_and_good_checkpoints():
    at = app("pages/explore.py")
    at.radio(key="explore_source").set_value("Upload a checkpoint").run()
    at.file_uploader[0].set_value(("notes.pt", b"this is not a checkpoint at all", "application/octet-stream")).run()
    assert not at.exception, at.exception
    assert any("can't be used" in e.value and "notes.pt is not a readable checkpoint" in e.value for e in at.error)
    good = checkpoint_bytes(make_checkpoint(build_model("dcgan"), step=7))
    at.file_uploader[0].set_value(("mine.pt", good, "application/octet-stream")).run()
    assert not at.exception, at.exception
    assert not at.error
    assert "trained 7 steps" in texts(at) and image_urls(at)


def test_upload_helper_refuses_foreign_files_with_a_reason():
    import app_common
    from aigc import CheckpointError

    with pytest.raises(CheckpointError, match="notes.pt is not a readable checkpoint"):
        app_common.load_upload(b"this is not a checkpoint at all", "notes.pt")
    with pytest.raises(CheckpointError, match="not an aigc checkpoint"):
        app_common.load_upload(checkpoint_bytes({"weights": torch.zeros(3)}), "other.pt")
    model, ckpt = app_common.load_upload(checkpoint_bytes(make_checkpoint(build_model("vae"), step=1)), "ok.pt")
    assert ckpt["model_name"] == "vae" and model.latent_dim == 16


def test_compare_shows_every_shipped_model():
    at = app("pages/compare.py")
    assert len(image_urls(at)) >= 5


def test_without_shipped_checkpoints_every_page_explains(tmp_path, monkeypatch):
    import aigc.checkpoint

    monkeypatch.setattr(aigc.checkpoint, "SHIPPED_DIR", tmp_path / "empty")
    at = app()
    assert "No checkpoints" in texts(at)
    at.switch_page("pages/explore.py").run()
    assert not at.exception, at.exception
    assert "No checkpoints on this server yet" in texts(at)
    at.switch_page("pages/compare.py").run()
    assert not at.exception, at.exception
    assert "No shipped checkpoints" in texts(at)
    at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
    assert at.selectbox[1].options == ["scratch"]


def test_two_tabs_of_one_session_share_one_run():
    reg = registry()
    run = reg.submit(TrainConfig.for_model("vae", steps=100_000, batch_size=16))
    tab1 = app("pages/train.py", run=run.id, key=run.key)
    tab2 = app("pages/train.py", run=run.id, key=run.key)
    next(b for b in tab1.button if b.label == "Stop").click().run()
    wait_for(lambda: reg.view(run).status == "stopped", 30)
    tab2.run()
    assert any("stopped" in s.value for s in tab2.subheader)
    assert reg.counts()["running"] == 0


def test_compare_scores_with_the_metrics_module(monkeypatch):
    import aigc.metrics

    def fake_evaluate(model, n=10_000, seed=0):
        return {"fid": 3.5, "fid_floor": 0.5, "fid_ratio": 7.0, "confidence": 0.93, "coverage": 10,
                "class_hist": [n // 10] * 10, "digits_ok": True, "n": n}

    monkeypatch.setattr(aigc.metrics, "evaluate_model", fake_evaluate)
    import app_state
    app_state.evaluate.clear()
    at = app("pages/compare.py")
    at.toggle(key="compare_score").set_value(True).run()
    assert not at.exception, at.exception
    assert any(m.label == "Fréchet distance" and m.value == "3.5" for m in at.metric)
    assert len(at.get("vega_lite_chart")) >= 5, "a class histogram per model"
    app_state.evaluate.clear()


def test_map_click_helper_reads_the_selection():
    import app_common

    assert app_common.map_pick(None) is None
    assert app_common.map_pick({"selection": {"pick": []}}) is None
    assert app_common.map_pick({"selection": {"pick": [{"z1": 1.25, "z2": -0.5}]}}) == (1.25, -0.5)
