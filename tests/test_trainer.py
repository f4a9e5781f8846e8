import math
import platform
import subprocess
import sys
import threading

import pytest
import torch
from conftest import REPO, base_for, wait_for

from aigc import MODELS, Status, TrainConfig, Trainer

TINY = dict(steps=6, batch_size=16, log_every=2, sample_every=3, num_samples=8)


@pytest.mark.parametrize("name", list(MODELS))
def test_trainer_reports_through_callbacks(name, mnist):
    events = []
    trainer = Trainer(TrainConfig.for_model(name, **TINY), data=mnist, base=base_for(name))
    for event in ("on_log", "on_samples", "on_end"):
        trainer.add_callback(event, lambda t, e=event: events.append((e, t.step)))
    assert trainer.run() is Status.FINISHED
    assert ("on_log", 2) in events and ("on_log", 6) in events
    assert ("on_samples", 3) in events and events[-1] == ("on_end", 6)
    assert trainer.samples.shape == (8, 1, 28, 28)
    assert trainer.history["step"] == [2, 4, 6]
    assert all(math.isfinite(v) for k in trainer.model.metric_names for v in trainer.history[k])
    assert trainer.last_log["images_per_s"] > 0


def test_same_seed_same_weights(mnist):
    a = Trainer(TrainConfig.for_model("dcgan", **TINY), data=mnist)
    a.run()
    b = Trainer(TrainConfig.for_model("dcgan", **TINY), data=mnist)
    b.run()
    assert torch.equal(a.samples, b.samples)


def test_pause_resume_stop_from_another_thread(mnist):
    trainer = Trainer(TrainConfig.for_model("vae", steps=100_000, batch_size=16, log_every=1), data=mnist)
    paused, statuses = threading.Event(), []
    trainer.add_callback("on_status", lambda t: (statuses.append(t.status), t.status is Status.PAUSED and paused.set()))
    trainer.add_callback("on_log", lambda t: t.step == 5 and t.pause())
    thread = threading.Thread(target=trainer.run)
    thread.start()
    assert paused.wait(30)
    step_when_paused = trainer.step
    assert trainer.status is Status.PAUSED
    trainer.resume()
    wait_for(lambda: trainer.step >= step_when_paused + 3, 30, "steps after resuming")
    trainer.stop()
    thread.join(30)
    assert trainer.status is Status.STOPPED and step_when_paused < trainer.step < 100_000
    # every change was reported, the resume included
    assert statuses == [Status.RUNNING, Status.PAUSED, Status.RUNNING, Status.FINISHING, Status.STOPPED]


def test_nan_stops_the_run_and_keeps_last_good_weights(mnist):
    trainer = Trainer(TrainConfig.for_model("dcgan", steps=50, batch_size=16, log_every=2), data=mnist)
    original_step = trainer.model.train_step
    snapshots = {}

    def poisoned(x, y, opts, amp):
        if trainer.step == 4:   # the 5th step: weights after 4 steps were the last seen finite
            snapshots["good"] = {k: v.clone() for k, v in trainer.model.state_dict().items()}
            with torch.no_grad():
                next(trainer.model.generator.parameters()).fill_(float("nan"))
        return original_step(x, y, opts, amp)

    trainer.model.train_step = poisoned
    assert trainer.run() is Status.DIVERGED
    assert "NaN or infinite" in trainer.message and "learning rate" in trainer.message
    assert "step 4" in trainer.message
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(v, snapshots["good"][k]), k
    assert torch.isfinite(trainer.samples).all()


def test_huge_learning_rate_ends_as_diverged_or_finite(mnist):
    """lr at the top of its range: either it survives or it stops with the divergence message."""
    trainer = Trainer(TrainConfig.for_model("mlp_gan", steps=40, lr=0.1, batch_size=32, log_every=2), data=mnist)
    status = trainer.run()
    assert status in (Status.FINISHED, Status.DIVERGED)
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_max_seconds_stops_early(mnist):
    trainer = Trainer(TrainConfig.for_model("vae", steps=100_000, max_seconds=0.5, log_every=5), data=mnist)
    assert trainer.run() is Status.FINISHED and trainer.step < 100_000


def test_a_finished_vae_run_fits_its_prior_and_redraws_the_grid(mnist):
    trainer = Trainer(TrainConfig.for_model("vae", **TINY), data=mnist)
    assert trainer.fixed_labels is None                      # N(0, I) while training
    grids, events = [], []
    trainer.add_callback("on_samples", lambda t: grids.append((t.step, t.samples.clone())))
    for event in ("on_status", "on_end"):
        trainer.add_callback(event, lambda t, event=event: events.append((event, t.status)))
    assert trainer.run() is Status.FINISHED
    assert events == [("on_status", Status.RUNNING), ("on_status", Status.FINISHING),   # the UI can say what
                      ("on_status", Status.FINISHED), ("on_end", Status.FINISHED)]     # it waits for
    assert trainer.model.conditional and trainer.fixed_labels.tolist() == list(range(8))
    assert grids[-1][0] == grids[-2][0] == 6 and not torch.equal(grids[-1][1], grids[-2][1])


def test_a_gan_has_nothing_to_fit_when_its_run_ends(mnist):
    trainer = Trainer(TrainConfig.for_model("dcgan", **TINY), data=mnist)
    events = []
    trainer.add_callback("on_status", lambda t: events.append(t.status))
    assert trainer.run() is Status.FINISHED and Status.FINISHING not in events


def test_a_self_conditioned_gan_run_groups_the_data_first_and_keeps_its_groups(mnist, tmp_path):
    from aigc import load_checkpoint, save_checkpoint
    config = TrainConfig.for_model("dcgan", **TINY, model_args={"clusters": 4, "width": 8})
    trainer = Trainer(config, data=mnist)
    assert not trainer.model.clusters_fitted
    assert trainer.fixed_labels.tolist() == [0, 1, 2, 3, 0, 1, 2, 3]     # the grid shows the groups in turn
    assert trainer.run() is Status.FINISHED and trainer.model.clusters_fitted
    path = save_checkpoint(trainer.checkpoint(), tmp_path / "sc.pt")
    model, _ = load_checkpoint(path)
    torch.testing.assert_close(model.cluster_centres, trainer.model.cluster_centres)
    resumed = Trainer(config, model=model, data=mnist)
    centres = model.cluster_centres.clone()
    resumed.run()                                                            # a resumed run keeps its groups
    torch.testing.assert_close(resumed.model.cluster_centres, centres)


def test_continuing_a_checkpoint_keeps_its_model_settings_step_and_history(mnist):
    from aigc import make_checkpoint

    first = Trainer(TrainConfig.for_model("dcgan", **TINY, model_args={"width": 8}), data=mnist)
    first.run()
    ckpt = first.checkpoint()
    config = TrainConfig.for_checkpoint(ckpt, steps=4, batch_size=16, log_every=2)
    assert config.model == "dcgan" and config.model_args == ckpt["model_args"] and config.steps == 4
    second = Trainer(config, init=ckpt, data=mnist)
    assert second.step == 6 and second.target_step == 10
    torch.testing.assert_close(second.model.state_dict()["generator.project.0.weight"],
                               first.model.state_dict()["generator.project.0.weight"])
    second.run()
    assert second.history["step"] == [2, 4, 6, 8, 10]
    with pytest.raises(ValueError, match="starting checkpoint is a dcgan, but the run trains a vae"):
        TrainConfig.for_checkpoint(ckpt, model="vae")
    with pytest.raises(ValueError, match="starting checkpoint is a dcgan"):
        Trainer(TrainConfig.for_model("vae", **TINY), init=ckpt, data=mnist)
    with pytest.raises(ValueError, match="width must be between"):     # settings laid over the checkpoint's
        TrainConfig.for_checkpoint(make_checkpoint(first.model), model_args={"width": 0}).validate()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="configure_allocator tunes glibc's malloc")
def test_configure_allocator_applies_on_glibc():
    """glibc takes both settings (what they save a training is bench/allocator.py's to measure: page faults
    depend on where the heap's blocks happen to lie). In a process of its own: they last for its life."""
    script = "from aigc import configure_allocator; print(configure_allocator())"
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True"]
