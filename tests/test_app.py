"""The app through streamlit.testing's AppTest, page by page, as a person would use it."""
import json
import shutil
import threading
import time

import pandas as pd
import pytest
import torch
from conftest import tiny_vae_run, wait_for
from streamlit.testing.v1 import AppTest

from aigc import Status, TrainConfig, build_model, make_checkpoint
from aigc.checkpoint import checkpoint_bytes
from ui import cached, charts


@pytest.fixture(autouse=True)
def fresh_server(tmp_path, monkeypatch):
    """Each test gets a new run registry (as a new server would) writing into its own runs folder."""
    monkeypatch.setenv("AIGC_RUNS_DIR", str(tmp_path / "runs"))
    cached.registry.clear()
    yield
    reg = cached.registry()
    for run in reg.all_runs():
        reg.stop(run)
    for thread in threading.enumerate():      # a training thread still in a torch op at exit aborts the process
        if thread.name.startswith("aigc-run-"):
            thread.join(60)
    cached.registry.clear()


def registry():
    return cached.registry()


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


def image_captions(at) -> str:
    return " ".join(img.caption for el in at.get("image") for img in el.proto.imgs)


def live_charts(at):
    """The live loss charts (Vega-Lite: they update in place in the browser, see ui.charts)."""
    return at.get("vega_lite_chart")


def chart_rows(at) -> int:
    import pyarrow as pa
    tables = [c.proto.data.data for c in live_charts(at) if c.proto.data.data]
    tables += [d.data.data for c in live_charts(at) for d in c.proto.datasets]      # the specs' named datasets
    return sum(pa.ipc.open_stream(t).read_all().num_rows for t in tables)


def element(at, kind: str, key: str):
    """The element of that kind whose widget key is `key` (for kinds AppTest offers no key lookup for)."""
    return next(e for e in at.get(kind) if e.proto.id.endswith(f"-{key}"))


def run_in_address(at) -> str:
    run_id = at.query_params["run"]
    return run_id[0] if isinstance(run_id, list) else run_id


def texts(at):
    return " ".join(e.value for kind in ("markdown", "caption", "code", "subheader", "info", "warning", "error")
                    for e in at.get(kind) if isinstance(getattr(e, "value", None), str))


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
    at.number_input(key="vae_steps").set_value(60).run()
    at.button(key="start").click().run()
    assert not at.exception, at.exception
    run_id = run_in_address(at)
    assert run_id and at.query_params["key"]
    assert any(f"?run={run_id}" in c.value and "key" not in c.value for c in at.code), "a read-only share link"
    assert len(live_charts(at)) == 4, "every chart's frame is there from the start: the VAE's 2 panels, 2 readings"
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
    groups = at.select_slider(key="mlp_gan_clusters")
    assert groups.label == "Groups found without labels" and groups.value == 0      # the plain GAN unless asked
    groups.set_value(10).run()
    at.number_input(key="mlp_gan_steps").set_value(20).run()
    at.button(key="start").click().run()
    assert not at.exception, at.exception
    run = registry().get(run_in_address(at))
    assert run.config.model_args["clusters"] == 10
    wait_for(lambda: run.status is Status.FINISHED and run.final_checkpoint is not None, timeout=120)
    ckpt = run.final_checkpoint
    assert ckpt["model_args"]["clusters"] == 10 and ckpt["state_dict"]["clusters_fitted"].item()
    assert ckpt["state_dict"]["cluster_centres"].shape == (10, 784)


def test_saving_a_run_makes_it_explorable(tmp_path):
    reg = registry()
    run = reg.submit(TrainConfig.for_model("vae", steps=10, batch_size=16, model_args={"latent_dim": 2}))
    wait_for(lambda: reg.view(run).status is Status.FINISHED)
    at = app("pages/train.py", run=run.id, key=run.key)
    at.button(key="save").click().run()
    assert not at.exception, at.exception
    assert any(f"vae-{run.id}.pt" in s.value for s in at.success)
    assert (tmp_path / "runs" / f"vae-{run.id}.pt").is_file()
    at.switch_page("pages/explore.py").run()
    at.selectbox(key="explore_ckpt").set_value(f"vae-{run.id} (saved run)").run()
    assert not at.exception, at.exception
    assert at.get("vega_lite_chart"), "a 2-D VAE shows its latent map"


def test_the_train_page_says_what_a_finishing_vae_is_fitting(monkeypatch):
    import threading

    from aigc.models.vae import VAE

    release, fit = threading.Event(), VAE.finish_training
    monkeypatch.setattr(VAE, "finish_training", lambda self, data: release.wait(60) and fit(self, data))
    reg = registry()
    run = reg.submit(TrainConfig.for_model("vae", steps=6, batch_size=16))
    try:
        wait_for(lambda: reg.view(run).status is Status.FINISHING)
        at = app("pages/train.py", run=run.id, key=run.key)
        assert "finishing" in at.subheader[0].value and VAE.finishing_note in [i.value for i in at.info]
        assert not [b for b in at.button if b.key in ("pause", "stop", "new")]
        unfitted_grid = image_urls(at)[0]
    finally:
        release.set()
    wait_for(lambda: reg.view(run).status is Status.FINISHED)
    at.run()
    assert "finished" in at.subheader[0].value and VAE.finishing_note not in texts(at)
    # the grid redrawn from the fitted prior (same step) replaces the old one, live and in the replay
    assert unfitted_grid not in image_urls(at)


def buttons(at) -> list[str]:
    return [b.key for b in at.button]


def test_watchers_without_the_key_cannot_control_the_run():
    reg = registry()
    run = reg.submit(tiny_vae_run())
    at = app("pages/train.py", run=run.id)
    assert any("read-only" in c.value for c in at.caption)
    assert not {"pause", "stop"} & set(buttons(at))
    assert not at.code, "watchers get no share link with a key in it"
    for tab in range(20):               # a class arrives: 21 tabs with this one (AppTest's tabs share one session id)
        reg.heartbeat(run, f"another tab {tab}")
    crowd = app("pages/train.py", run=run.id)
    assert any("21 tabs are watching it, so each one refreshes every 3 s" in c.value for c in crowd.caption)
    for wrong in (run.key[:-1], run.key + "x", "ключ"):          # a near miss, or not even ASCII
        guesser = app("pages/train.py", run=run.id, key=wrong)
        assert not guesser.exception and not {"pause", "stop"} & set(buttons(guesser))
    owner = app("pages/train.py", run=run.id, key=run.key)
    assert owner.button(key="stop").label == "Stop"
    owner.button(key="pause").click().run()
    wait_for(lambda: reg.view(run).status is Status.PAUSED, what="the run to pause")
    owner.run()
    assert owner.button(key="resume").label == "Resume"
    assert "paused" in owner.subheader[0].value
    # resumed, the run says so, and offers Pause again (it used to stay "paused" while its steps advanced)
    owner.button(key="resume").click().run()
    wait_for(lambda: reg.view(run).status is Status.RUNNING, what="the run to resume")
    step = reg.view(run).step
    wait_for(lambda: reg.view(run).step > step, what="steps after resuming")
    owner.run()
    assert "running" in owner.subheader[0].value and "pause" in buttons(owner) and "resume" not in buttons(owner)


def test_the_owner_changes_a_setting_while_it_trains_from_an_expander_drawn_only_when_open():
    reg = registry()
    run = reg.submit(tiny_vae_run())
    wait_for(lambda: reg.view(run).live_settings, what="the trainer to declare its live settings")
    at = app("pages/train.py", run=run.id, key=run.key)
    assert at.expander(key=f"live-settings-{run.id}").label == "Change settings while it trains"
    assert not [n for n in at.number_input if n.key.startswith("live-")], "closed, it draws nothing on each poll"
    at.session_state[f"live-settings-{run.id}"] = True          # the owner opens it
    at.run()
    beta = at.number_input(key=f"live-{run.id}-beta-1.0")
    assert beta.label == "Weight of the KL term (β)" and beta.value == 1.0
    beta.set_value(2.5).run()
    at.button(key=f"apply-{run.id}").click().run()
    assert not at.exception, at.exception
    wait_for(lambda: any(e["text"] == "Weight of the KL term (β) 1 → 2.5" for e in reg.view(run).events), 30,
             "the change, at the run's next step")
    at.run()
    assert at.number_input(key=f"live-{run.id}-beta-2.5").value == 2.5, "the box shows the run's value now"


def test_a_queued_run_shows_its_place_and_can_be_cancelled():
    reg = registry()
    first = reg.submit(tiny_vae_run())
    others = [reg.submit(tiny_vae_run()) for _ in range(reg.max_jobs)]
    queued = others[-1]
    assert reg.view(queued).status is Status.QUEUED
    at = app("pages/train.py", run=queued.id, key=queued.key)
    assert any("position" in i.value for i in at.info)
    assert at.button(key="stop").label == "Cancel"
    at.button(key="stop").click().run()
    assert reg.view(queued).status is Status.CANCELLED
    assert first.status.active


def test_a_diverged_run_explains_itself():
    model = build_model("dcgan")
    for p in model.generator.parameters():
        p.data.fill_(float("nan"))
    reg = registry()
    run = reg.submit(TrainConfig.for_model("dcgan", steps=20, batch_size=16, log_every=2),
                     init_checkpoint=make_checkpoint(model, step=3))
    wait_for(lambda: reg.view(run).status is Status.DIVERGED)
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
    assert element(at, "download_button", "morph_gif").proto.label == "Animated GIF"


def test_explore_conditional_digit_picker_and_vae_map():
    at = app("pages/explore.py")
    at.selectbox(key="explore_ckpt").set_value("cgan (shipped)").run()
    first = image_urls(at)[0]
    digit = at.radio(key="label_10")
    assert digit.label == "Digit to draw"
    digit.set_value(8).run()
    assert image_urls(at)[0] != first
    at.selectbox(key="explore_ckpt").set_value("vae2d (shipped)").run()
    assert not at.exception
    assert at.get("vega_lite_chart"), "the 2-D VAE shows its latent map"
    decoded = image_urls(at)[-1]
    at.slider(key="z1").set_value(2.0).run()
    assert image_urls(at)[-1] != decoded
    # the shipped VAE samples from its per-digit prior: it too takes the digit to draw
    at.selectbox(key="explore_ckpt").set_value("vae (shipped)").run()
    first = image_urls(at)[0]
    at.radio(key="label_10").set_value(2).run()
    assert not at.exception and image_urls(at)[0] != first


def test_the_drawing_bench_reads_a_digit_with_every_kind_of_model():
    at = app("pages/explore.py")
    at.selectbox(key="explore_ckpt").set_value("vae2d (shipped)").run()
    assert "Draw a digit on the left" in texts(at)             # an empty canvas: nothing to read yet
    at.radio(key="draw_source").set_value("A test digit").run()     # test digit 0 is a 7
    assert not at.exception
    assert "The classifier reads a **7**" in texts(at) and "Where the encoder puts the drawing" in texts(at)
    assert "nearest training digits (a 7 at" in image_captions(at)
    at.number_input(key="draw_test_digit").set_value(1).run()          # a 2
    assert "The classifier reads a **2**" in texts(at)
    # a GAN has no encoder: the search runs when asked, then stays while other things move
    at.selectbox(key="explore_ckpt").set_value("cgan (shipped)").run()
    assert "the best random z" not in image_captions(at)
    at.button(key="draw_invert").click().run()
    assert not at.exception and "the best random z" in image_captions(at)
    at.number_input(key="draw_morph_seed").set_value(3).run()
    assert "the best random z" in image_captions(at) and element(at, "download_button", "draw_gif")
    # a diffusion model noises the drawing part of the way and takes the noise out again
    at.selectbox(key="explore_ckpt").set_value("diffusion (shipped)").run()
    before = texts(at)
    assert "SDEdit" in before and "The way back" in image_captions(at)
    at.slider(key="draw_strength").set_value(0.9).run()
    assert not at.exception and texts(at) != before


def test_explore_offers_directions_the_model_found_and_one_per_dimension_of_a_small_latent():
    at = app("pages/explore.py")
    at.selectbox(key="explore_ckpt").set_value("cgan (shipped)").run()
    assert at.radio(key="direction_kind").options == ["measured", "found by the model"]   # 64-D: no per-dim sliders
    at.radio(key="direction_kind").set_value("found by the model").run()
    assert not at.exception
    labels = [s.label for s in at.slider if s.key and s.key.startswith("dir_pc")]
    assert len(labels) == 5 and all(label.startswith(f"PC {i + 1} →") for i, label in enumerate(labels))
    sample = image_urls(at)[0]
    at.slider(key="dir_pc1").set_value(3.0).run()
    assert image_urls(at)[0] != sample
    at.toggle(key="sample_nearest").set_value(True).run()
    assert "The nearest training digits" in image_captions(at)
    at.selectbox(key="explore_ckpt").set_value("vae2d (shipped)").run()
    at.radio(key="direction_kind").set_value("one per dimension").run()
    assert [s.key for s in at.slider if s.key.startswith("dir_")] == ["dir_z1", "dir_z2"]


def test_explore_group_picker_of_the_self_conditioned_dcgan():
    at = app("pages/explore.py")
    at.selectbox(key="explore_ckpt").set_value("dcgan (shipped)").run()
    groups = at.select_slider(key="label_51")
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
    element(at, "file_uploader", "explore_upload").set_value(
        ("notes.pt", b"this is not a checkpoint at all", "application/octet-stream")).run()
    assert not at.exception, at.exception
    assert any("can't be used" in e.value and "notes.pt is not a readable checkpoint" in e.value for e in at.error)
    good = checkpoint_bytes(make_checkpoint(build_model("dcgan"), step=7))
    element(at, "file_uploader", "explore_upload").set_value(("mine.pt", good, "application/octet-stream")).run()
    assert not at.exception, at.exception
    assert not at.error
    assert "trained 7 steps" in texts(at) and image_urls(at)


def test_upload_helper_refuses_foreign_files_with_a_reason():
    from aigc import CheckpointError

    with pytest.raises(CheckpointError, match="notes.pt is not a readable checkpoint"):
        cached.upload(b"this is not a checkpoint at all", "notes.pt")
    with pytest.raises(CheckpointError, match="not an aigc checkpoint"):
        cached.upload(checkpoint_bytes({"weights": torch.zeros(3)}), "other.pt")
    loaded = cached.upload(checkpoint_bytes(make_checkpoint(build_model("vae"), step=1)), "ok.pt")
    assert loaded.checkpoint["model_name"] == "vae" and loaded.model.latent_dim == 16


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
    assert at.selectbox(key="train_start_from").options == ["scratch"]


def test_two_tabs_of_one_session_share_one_run():
    reg = registry()
    run = reg.submit(tiny_vae_run())
    tab1 = app("pages/train.py", run=run.id, key=run.key)
    tab2 = app("pages/train.py", run=run.id, key=run.key)
    tab1.button(key="stop").click().run()
    wait_for(lambda: reg.view(run).status is Status.STOPPED, 30)
    tab2.run()
    assert any("stopped" in s.value for s in tab2.subheader)
    assert reg.counts()["running"] == 0


def test_compare_scores_with_the_metrics_module(monkeypatch):
    import aigc.metrics

    def fake_evaluate(model, n=10_000, seed=0):
        return {"fid": 3.5, "fid_floor": 0.5, "fid_ratio": 7.0, "confidence": 0.93, "coverage": 10,
                "class_hist": [n // 10] * 10, "digits_ok": True, "n": n}

    monkeypatch.setattr(aigc.metrics, "evaluate_model", fake_evaluate)
    cached.evaluate.clear()
    at = app("pages/compare.py")
    at.toggle(key="compare_score").set_value(True).run()
    assert not at.exception, at.exception
    assert any(m.label == "Fréchet distance" and m.value == "3.5" for m in at.metric)
    assert len(at.get("vega_lite_chart")) >= 5, "a class histogram per model"
    cached.evaluate.clear()


def test_live_chart_rows_stay_bounded_however_long_the_run():
    from aigc import MODELS
    n = 5_000
    history = {"step": [5 * (i + 1) for i in range(n)], "loss_d": [1.0 + (i % 7) for i in range(n)],
               "loss_g": [2.0] * n}
    panel = MODELS["cgan"][1].panels[0]
    rows = pd.DataFrame(charts.panel_rows(history, panel, smoothing=0.8))
    per_line = rows.groupby(["series", "kind"]).size()
    assert len(per_line) == 4 and (per_line == charts.MAX_POINTS).all()
    assert rows["step"].max() == 5 * n and rows["step"].min() == 5            # the first and the last entry
    smoothed = rows[(rows.series == "D loss") & (rows.kind == "smoothed")]["value"].iloc[-1]
    assert smoothed == pytest.approx(charts.ema(history["loss_d"], 0.8)[-1])  # smoothed over every entry
    short = charts.panel_rows({k: v[:50] for k, v in history.items()}, panel, smoothing=0.8)
    assert all(len(column) == 4 * 50 for column in short.values())


def test_map_click_helper_reads_the_selection():
    assert charts.map_pick(None) is None
    assert charts.map_pick({"selection": {"pick": []}}) is None
    assert charts.map_pick({"selection": {"pick": [{"z1": 1.25, "z2": -0.5}]}}) == (1.25, -0.5)


def test_a_new_model_family_needs_no_page_edit(monkeypatch):
    """A model family the pages have never heard of: registered, declared, and then trained and explored
    through the pages as they are."""
    from dataclasses import dataclass

    import torch.nn as nn
    import torch.nn.functional as F

    from aigc import MODELS, Panel, Series, Setting
    from aigc.models import GenerativeModel, ModelConfig, check_range

    @dataclass
    class BlurConfig(ModelConfig):
        latent_dim: int = 4
        hidden: int = 16

        def validate(self):
            check_range("hidden", self.hidden, 4, 64)

    class Blur(GenerativeModel):       # a decoder that learns the mean digit: the smallest thing that trains
        name = "blur"
        summary = "A test model: one linear layer from noise to pixels."
        panels = (Panel("Squared error", (Series("mse", "mean squared error", "#4C6EF5"),)),)
        settings = (Setting("hidden", "Hidden units", default=16, choices=(8, 16, 32), ordered=True),)
        train_defaults = dict(steps=8, batch_size=16, lr=1e-2, beta1=0.9)

        def __init__(self, config=None):
            super().__init__(config or BlurConfig())
            self.net = nn.Sequential(nn.Linear(self.config.latent_dim, self.config.hidden), nn.Tanh(),
                                     nn.Linear(self.config.hidden, 784), nn.Tanh(), nn.Unflatten(1, (1, 28, 28)))

        def sample(self, z, labels=None):
            return self.net(z)

        def configure_optimizers(self, lr, betas):
            return {"net": torch.optim.Adam(self.parameters(), lr=lr, betas=betas)}

        def train_step(self, x, y, optimizers, autocast):
            loss = F.mse_loss(self.net(torch.randn(len(x), self.config.latent_dim)), x)
            optimizers["net"].zero_grad()
            loss.backward()
            optimizers["net"].step()
            return {"mse": loss.detach()}

    monkeypatch.setitem(MODELS, "blur", (BlurConfig, Blur))
    at = app("pages/train.py")
    at.selectbox(key="train_model").set_value("blur").run()
    assert at.number_input(key="blur_steps").value == 8          # its own recipe
    at.select_slider(key="blur_hidden").set_value(32).run()
    at.button(key="start").click().run()
    assert not at.exception, at.exception
    run = registry().get(run_in_address(at))
    wait_for(lambda: run.status is Status.FINISHED, what="the blur run")
    at.run()
    assert not at.exception, at.exception
    assert [c.proto.spec for c in live_charts(at)] and "Squared error" in live_charts(at)[0].proto.spec
    assert run.final_checkpoint["model_args"] == {"latent_dim": 4, "hidden": 32}
    at.switch_page("pages/explore.py").run()
    assert not at.exception, at.exception
    assert "blur" in at.selectbox(key="explore_ckpt").value and "trained 8 steps" in texts(at)
    before = image_urls(at)
    at.slider(key="morph_frames").set_value(5).run()
    assert not at.exception and image_urls(at)[0] == before[0] and image_urls(at)[1] != before[1]


def test_a_diffusion_run_shows_its_loss_by_noise_level_then_its_sampling_step_by_step():
    at = app("pages/train.py")
    at.selectbox(key="train_model").set_value("diffusion").run()
    assert at.radio(key="diffusion_objective").value == "flow"
    at.number_input(key="diffusion_steps").set_value(30).run()
    at.button(key="start").click().run()
    assert not at.exception, at.exception
    run = registry().get(run_in_address(at))
    wait_for(lambda: run.status is Status.FINISHED, 180, "the diffusion run")
    at.run()
    specs = [json.loads(c.proto.spec) for c in live_charts(at)]
    assert [s["title"]["text"][:17] for s in specs] == [
        "Loss (squared err", "Loss by noise lev", "Digits in the gri", "Quality and varie"], "its panels, then the readings"
    assert specs[1]["layer"][1]["encoding"]["color"]["scale"]["domain"] == ["t 0–¼", "t ¼–½", "t ½–¾", "t ¾–1"]
    at.switch_page("pages/explore.py").run()
    assert not at.exception, at.exception
    assert "trained by flow matching" in texts(at)
    # Explore opens at the model's own sampling, the one its live grid used: 8 Euler steps at guidance 3
    assert at.slider(key="sample_steps").value == 8 and at.slider(key="sample_guidance").value == 3.0
    assert at.radio(key="sample_sampler").value == "euler"
    at.slider(key="sample_steps").set_value(6).run()
    scrubber = at.slider(key="trajectory_step")
    assert scrubber.max == 6 and scrubber.value == 6
    before = image_urls(at)
    scrubber.set_value(2).run()
    after = image_urls(at)
    assert not at.exception and after[0] != before[0] and after[1] != before[1]      # x_t and x̂₀ at step 2
    assert element(at, "download_button", "trajectory_gif")
    assert any("The forward process" in s.value for s in at.subheader)
    assert at.get("vega_lite_chart"), "the schedule is charted"
    forward = image_urls(at)[-1]
    at.number_input(key="forward_digit").set_value(5).run()
    assert image_urls(at)[-1] != forward
    images = image_urls(at)
    at.radio(key="sample_sampler").set_value("heun").run()
    assert not at.exception and image_urls(at)[0] != images[0]
    at.radio(key="sample_sampler").set_value("ancestral").run()
    assert not at.exception and image_urls(at)[0] != images[0]


def test_latent_diffusion_is_built_on_a_vae_picked_on_the_train_page():
    at = app("pages/train.py")
    at.selectbox(key="train_model").set_value("latent_diffusion").run()
    built_on = at.selectbox(key="latent_diffusion_base")
    assert "vae (shipped)" in built_on.options and "vae2d (shipped)" in built_on.options
    assert not [o for o in built_on.options if o.startswith(("cgan", "dcgan"))]
    built_on.set_value("vae2d (shipped)").run()
    at.number_input(key="latent_diffusion_steps").set_value(40).run()
    at.button(key="start").click().run()
    assert not at.exception, at.exception
    run = registry().get(run_in_address(at))
    wait_for(lambda: run.status is Status.FINISHED, 180, "the latent diffusion run")
    assert run.final_checkpoint["model_args"]["vae_args"]["latent_dim"] == 2
    at.switch_page("pages/explore.py").run()
    assert not at.exception, at.exception
    assert "a flow over the codes of a VAE with latent size 2" in texts(at)
    assert any("The whole latent map" in s.value for s in at.subheader) and "black lines" in texts(at)


def test_pressing_start_again_and_again_holds_one_place_in_the_queue():
    reg = registry()
    busy = [reg.submit(tiny_vae_run()) for _ in range(reg.max_jobs)]    # every job slot taken
    at = app("pages/train.py")
    at.button(key="start").click().run()
    queued = registry().get(run_in_address(at))
    assert reg.view(queued).status is Status.QUEUED
    for _ in range(3):                  # the Train page again, without the run in its address, and Start
        at.query_params.clear()
        at.run()
        at.button(key="start").click().run()
        assert not at.exception, at.exception
        assert any("already have a run waiting in the queue" in e.value for e in at.error)
    assert reg.counts()["queued"] == 1
    for run in busy:
        reg.stop(run)


def test_after_a_restart_a_watch_link_shows_the_interrupted_run_and_its_owner_resumes_it(tmp_path, monkeypatch):
    monkeypatch.setenv("AIGC_STATE_EVERY", "0")
    reg = registry()
    run = reg.submit(tiny_vae_run(steps=300, log_every=5, sample_every=10))
    wait_for(lambda: reg.view(run).step >= 20 and (tmp_path / "runs" / "state" / f"{run.id}.pt").exists())
    reg.pause(run)
    wait_for(lambda: reg.view(run).status is Status.PAUSED)
    shutil.copytree(tmp_path / "runs", tmp_path / "restarted")       # what a server killed now leaves behind
    reg.stop(run)
    wait_for(lambda: reg.view(run).status is Status.STOPPED)
    monkeypatch.setenv("AIGC_RUNS_DIR", str(tmp_path / "restarted"))
    cached.registry.clear()                                            # the new server

    watcher = app("pages/train.py", run=run.id)
    assert "interrupted" in watcher.subheader[0].value and "can resume it" in texts(watcher)
    assert not {"resume", "stop"} & set(buttons(watcher))
    assert watcher.select_slider(key=f"replay-{run.id}").options, "its replay survived"
    owner = app("pages/train.py", run=run.id, key=run.key)
    owner.button(key="resume").click().run()
    assert not owner.exception, owner.exception
    resumed = registry().get(run.id)
    wait_for(lambda: registry().view(resumed).status is Status.FINISHED, what="the resumed run to finish")
    owner.run()
    assert "finished" in owner.subheader[0].value and "step 300 / 300" in owner.get("progress")[0].proto.text


def test_a_lesson_pauses_at_the_coachs_warning_its_remedy_applies_and_a_branch_rewinds():
    at = app("pages/train.py")
    at.selectbox(key="lesson").set_value("diverge").run()
    assert any("β₁ 0.9" in c.value for c in at.caption), "the lesson says what the class will see"
    at.button(key="start_lesson").click().run()
    assert not at.exception, at.exception
    reg = registry()
    run = reg.get(run_in_address(at))
    wait_for(lambda: reg.view(run).status is Status.PAUSED, 120, "the coach to pause the run at its warning")
    at.run()
    assert any("The coach paused the run" in i.value for i in at.info)
    assert "Divergence ahead" in texts(at) and "Why:" in texts(at)
    # paused: slow motion is offered, one D update leaves the step where it was
    step = reg.view(run).step
    at.button(key="slow-One D update").click().run()
    wait_for(lambda: reg.view(run).events, 30, "the D update")
    assert reg.view(run).step == step and reg.view(run).events[-1]["text"] == "one D update"
    at.run()
    at.button(key="remedy-diverging").click().run()
    assert not at.exception, at.exception
    assert [t for t in at.toast if t.value.startswith("Applied at the next step:")], "it says so where it stays"
    wait_for(lambda: any("β₁ 0.9 → 0.5" in e["text"] for e in reg.view(run).events), 30, "the remedy")
    assert reg.view(run).step == step, "a remedy changes the settings, not the run's place"
    # the time machine: back to the first snapshot, with the remedy from the start
    at.run()
    at.select_slider(key=f"branch-step-{run.id}").set_value(reg.view(run).branch_steps[0]).run()
    first = reg.view(run).branch_steps[0]
    at.number_input(key=f"branch-{run.id}-{first}-beta1").set_value(0.5).run()
    assert any("Changed: Adam's β₁ 0.9 → 0.5" in c.value for c in at.caption)
    at.button(key=f"branch-{run.id}").click().run()
    assert not at.exception, at.exception
    branch = reg.get(run_in_address(at))
    assert branch is not run and reg.view(branch).parent == run.id
    wait_for(lambda: reg.view(run).status is Status.STOPPED, 30, "the paused parent to stop for its branch")
    wait_for(lambda: len(reg.view(branch).history.get("step", [])) > 3, 60,
             f"the branch to train: {reg.view(branch).status} {reg.view(branch).events} {reg.view(branch).paused_for}")
    at.run()
    assert [s.value for s in at.subheader if s.value == "Branches"], "the family's chart"
    family = [spec for spec in (json.loads(c.proto.spec) for c in live_charts(at))
              if spec.get("encoding", {}).get("color", {}).get("field") == "branch"]
    assert family and family[0]["encoding"]["color"]["scale"]["domain"] == [
        f"run {run.id}", f"branch 1: {branch.id}, from step {first}"]


def test_the_readings_charts_stay_bounded_however_long_the_run():
    n = 5000
    readings = {"step": list(range(25, 25 * n + 1, 25)), "shares": [[0.1] * 10] * n, "confidence": [0.9] * n,
                "coverage": [10] * n, "precision": [0.8 if i % 20 == 0 else None for i in range(n)],
                "recall": [0.7 if i % 20 == 0 else None for i in range(n)]}
    strip = pd.DataFrame(charts.coverage_rows(readings))
    assert len(strip) == 10 * charts.MAX_POINTS and strip["step"].iloc[-10] == 25 * n
    assert (strip["until"] > strip["step"]).all(), "every cell has a width"
    quality = pd.DataFrame(charts.quality_rows(readings, ((100, "β₁ 0.9 → 0.5"),)))
    assert len(quality) <= 3 * charts.MAX_POINTS + 1 and (quality["kind"] == "event").sum() == 1
