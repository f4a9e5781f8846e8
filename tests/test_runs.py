import pytest
from conftest import tiny_vae_run, wait_for

from aigc import Status, TrainConfig, build_model, make_checkpoint
from aigc.runs import RunRegistry


def long_run(**kw):
    return tiny_vae_run(log_every=5, sample_every=5, **kw)


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_cap_queue_position_wait_and_cancel():
    reg = RunRegistry(max_jobs=1)
    a, b, c = (reg.submit(long_run()) for _ in range(3))
    wait_for(lambda: reg.view(a).step > 0)
    assert [reg.view(r).status for r in (a, b, c)] == [Status.RUNNING, Status.QUEUED, Status.QUEUED]
    assert [reg.view(r).queue_position for r in (a, b, c)] == [0, 1, 2]
    assert 0 < reg.view(b).expected_wait_s < reg.view(c).expected_wait_s
    reg.stop(b)
    assert reg.view(b).status is Status.CANCELLED and reg.view(c).queue_position == 1
    reg.stop(a)
    wait_for(lambda: reg.view(c).status is Status.RUNNING)
    assert reg.view(a).status is Status.STOPPED and reg.view(a).has_weights
    reg.stop(c)
    wait_for(lambda: reg.view(c).status is Status.STOPPED)
    assert reg.counts()["running"] == 0


def test_runs_are_found_by_id_and_watched_by_many():
    reg = RunRegistry(max_jobs=2)
    run = reg.submit(TrainConfig.for_model("cgan", steps=20, batch_size=16, sample_every=5))
    assert reg.get(run.id) is run and reg.get("nope") is None and reg.get(None) is None
    wait_for(lambda: reg.view(run).status is Status.FINISHED)
    one, two = reg.view(run), reg.view(run)
    assert one.step == two.step == 20 and one.grid.shape == (64, 28, 28)
    assert one.snapshot_steps == [1, 5, 10, 15, 20]
    assert run.checkpoint()["step"] == 20 and run.trainer is None   # tensors of the trainer released


def test_closed_tab_stops_its_run_and_keeps_weights(tmp_path):
    clock = FakeClock()
    reg = RunRegistry(max_jobs=1, idle_timeout=90, runs_dir=tmp_path, clock=clock)
    run = reg.submit(long_run())
    wait_for(lambda: reg.view(run).step > 0)
    clock.now += 60
    assert reg.reap() == []              # still inside the timeout
    reg.heartbeat(run)
    clock.now += 91
    assert reg.reap() == [run]
    wait_for(lambda: reg.view(run).status is Status.STOPPED)
    assert "no browser watching" in reg.view(run).message
    wait_for(lambda: list(tmp_path.glob("*.pt")))
    assert run.checkpoint()["step"] > 0


def test_snapshots_are_thinned_to_their_limit():
    reg = RunRegistry(max_jobs=1, max_snapshots=6)
    run = reg.submit(TrainConfig.for_model("vae", steps=60, batch_size=16, sample_every=2))
    wait_for(lambda: reg.view(run).status is Status.FINISHED)
    steps = reg.view(run).snapshot_steps
    assert len(steps) <= 6 and steps[0] == 1 and steps[-1] == 60 and steps == sorted(steps)
    assert run.snapshot(0)[1].shape == (64, 28, 28)


def test_memory_is_bounded_by_forgetting_old_finished_runs():
    reg = RunRegistry(max_jobs=2, max_runs=3)
    runs = []
    for _ in range(5):
        runs.append(reg.submit(TrainConfig.for_model("vae", steps=2, batch_size=8)))
        wait_for(lambda: reg.view(runs[-1]).status is Status.FINISHED)
    assert len(reg.all_runs()) <= 3 and reg.get(runs[-1].id) is runs[-1]


def test_full_queue_and_bad_settings_are_refused_with_a_message():
    reg = RunRegistry(max_jobs=1, max_queue=1)
    first = reg.submit(long_run())
    reg.submit(long_run())
    with pytest.raises(RuntimeError, match="queue is full"):
        reg.submit(long_run())
    with pytest.raises(ValueError, match="lr must be between"):
        reg.submit(long_run(lr=10.0))
    with pytest.raises(ValueError, match="latent_dim must be between 1"):
        reg.submit(TrainConfig.for_model("vae", model_args={"latent_dim": 0}))
    for run in reg.all_runs():
        reg.stop(run)
    wait_for(lambda: reg.view(first).status is Status.STOPPED)


def test_start_from_a_checkpoint_continues_its_step_count():
    reg = RunRegistry(max_jobs=1)
    ckpt = make_checkpoint(build_model("vae"), step=100, history={"step": [100], "seconds": [1.0],
                                                                  "loss": [1.0], "recon": [1.0], "kl": [0.0]})
    run = reg.submit(TrainConfig.for_model("vae", steps=10, batch_size=16, log_every=5), init_checkpoint=ckpt)
    wait_for(lambda: reg.view(run).status is Status.FINISHED)
    assert reg.view(run).step == 110 and reg.view(run).history["step"][0] == 100
    with pytest.raises(ValueError, match="starting checkpoint is a vae"):
        reg.submit(TrainConfig.for_model("cgan"), init_checkpoint=ckpt)


def test_diverged_run_is_reported_and_autosaved(tmp_path):
    model = build_model("dcgan")
    for p in model.generator.parameters():
        p.data.fill_(float("nan"))
    reg = RunRegistry(max_jobs=1, runs_dir=tmp_path)
    run = reg.submit(TrainConfig.for_model("dcgan", steps=20, batch_size=16, log_every=2),
                     init_checkpoint=make_checkpoint(model, step=50))
    wait_for(lambda: reg.view(run).status is Status.DIVERGED)
    assert "became NaN or infinite" in reg.view(run).message and "learning rate" in reg.view(run).message
    wait_for(lambda: list(tmp_path.glob("dcgan-*.pt")))


def test_one_status_through_pause_resume_stop_and_finish():
    reg = RunRegistry(max_jobs=1)
    run = reg.submit(long_run())
    wait_for(lambda: reg.view(run).step > 0, what="the first steps")
    reg.pause(run)
    wait_for(lambda: reg.view(run).status is Status.PAUSED, what="paused")
    step = reg.view(run).step
    reg.resume(run)
    wait_for(lambda: reg.view(run).status is Status.RUNNING, what="running again")
    wait_for(lambda: reg.view(run).step > step, what="steps after resuming")
    reg.stop(run)
    wait_for(lambda: reg.view(run).status is Status.STOPPED, what="stopped")
    assert run.final_checkpoint is not None, "an ended run's status is set once its weights are kept"
    short = reg.submit(TrainConfig.for_model("cgan", steps=3, batch_size=8))
    wait_for(lambda: not reg.view(short).active, what="the short run to end")
    assert reg.view(short).status is Status.FINISHED and short.final_checkpoint["step"] == 3
