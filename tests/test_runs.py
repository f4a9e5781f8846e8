import shutil
from pathlib import Path

import pytest
import torch
from conftest import tiny_vae_run, wait_for

from aigc import Status, TrainConfig, Trainer, build_model, make_checkpoint, read_checkpoint
from aigc.runs import WATCH_POLLS_PER_S, WATCHER_TTL, RunRegistry, watch_interval


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
    assert run.checkpoint()["step"] > 0 and (tmp_path / "state" / f"{run.id}.pt").exists()


def test_a_class_of_watchers_shares_a_budget_of_polls(tmp_path):
    clock = FakeClock()
    reg = RunRegistry(max_jobs=1, runs_dir=tmp_path, clock=clock)
    run = reg.submit(long_run())
    reg.heartbeat(run)                                           # the owner does not count
    for tab in range(29):
        reg.heartbeat(run, f"tab{tab}")
        reg.heartbeat(run, f"tab{tab}")                          # polling again is still one tab
    assert reg.watching(run) == 29
    assert [watch_interval(n) for n in (0, 1, WATCH_POLLS_PER_S, WATCH_POLLS_PER_S + 1, 29)] == [1, 1, 1, 2, 4]
    assert 29 / watch_interval(29) <= WATCH_POLLS_PER_S          # together they stay within the budget
    clock.now += WATCHER_TTL / 2
    for tab in range(5):
        reg.heartbeat(run, f"tab{tab}")
    clock.now += WATCHER_TTL / 2 + 0.1                           # the other 24 closed their tabs
    assert reg.watching(run) == 5 and len(run.watchers) == 5
    reg.stop(run)
    wait_for(lambda: not reg.view(run).active)


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


def test_diverged_run_is_reported_and_kept(tmp_path):
    model = build_model("dcgan")
    for p in model.generator.parameters():
        p.data.fill_(float("nan"))
    reg = RunRegistry(max_jobs=1, runs_dir=tmp_path)
    run = reg.submit(TrainConfig.for_model("dcgan", steps=20, batch_size=16, log_every=2),
                     init_checkpoint=make_checkpoint(model, step=50))
    wait_for(lambda: reg.view(run).status is Status.DIVERGED)
    assert "became NaN or infinite" in reg.view(run).message and "learning rate" in reg.view(run).message
    saved = read_checkpoint(tmp_path / "state" / f"{run.id}.pt")
    assert saved["run"]["status"] == "diverged" and "NaN or infinite" in saved["run"]["message"]


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


def test_a_restart_reads_the_runs_back_and_the_key_holder_resumes_an_interrupted_one(tmp_path):
    before, after = tmp_path / "before", tmp_path / "after"
    reg = RunRegistry(max_jobs=1, runs_dir=before, state_every=0.0)     # a state at every log
    run = reg.submit(tiny_vae_run(steps=400, log_every=5, sample_every=10))
    done = reg.submit(TrainConfig.for_model("cgan", steps=3, batch_size=8))
    reg.stop(done)                                                      # cancelled while queued: nothing to keep
    wait_for(lambda: reg.view(run).step >= 20 and (before / "state" / f"{run.id}.pt").exists(), what="a saved state")
    reg.pause(run)
    wait_for(lambda: reg.view(run).status is Status.PAUSED, what="paused")
    shutil.copytree(before, after)                  # the folder as a server killed at this moment leaves it
    (after / "state" / "garbage.pt").write_bytes(b"not a checkpoint")
    saved = read_checkpoint(after / "state" / f"{run.id}.pt")
    reg.stop(run)
    wait_for(lambda: reg.view(run).status is Status.STOPPED, what="stopped")

    restarted = RunRegistry(max_jobs=1, runs_dir=after)
    back = restarted.get(run.id)
    view = restarted.view(back)
    assert [r.id for r in restarted.all_runs()] == [run.id]             # the garbage file is skipped
    assert view.status is Status.INTERRUPTED and "resume" in view.message and view.has_weights
    assert view.step == saved["step"] >= 20 and view.target_step == 400 and view.history == saved["history"]
    assert view.snapshot_steps == saved["run"]["snapshot_steps"] and (view.grid == saved["snapshots"][-1].numpy()).all()
    assert back.opens_with(run.key) and not back.opens_with(run.key[:-1]) and not back.opens_with("")
    assert back.checkpoint()["step"] == saved["step"] and "run" not in back.checkpoint()   # Explore, downloads

    restarted.resume(back)
    wait_for(lambda: restarted.view(back).status is Status.FINISHED, what="the resumed run to finish")
    steps = restarted.view(back).history["step"]
    assert steps[:len(saved["history"]["step"])] == saved["history"]["step"] and steps[-1] == 400
    assert steps == sorted(set(steps))                                 # one run, going on where it was saved
    seconds = restarted.view(back).history["seconds"]
    assert seconds == sorted(seconds)                                  # and its clock too
    assert restarted.view(back).snapshot_steps[-1] == 400


def test_a_resumed_trainer_keeps_its_optimizers_state(mnist):
    config = tiny_vae_run(steps=5, log_every=5)
    first = Trainer(config, data=mnist)
    first.run()
    state = first.checkpoint(extra={"optimizers": {k: o.state_dict() for k, o in first.optimizers.items()}})
    resumed = Trainer(config, data=mnist, init=state)
    for k, opt in first.optimizers.items():
        before, after = opt.state_dict()["state"], resumed.optimizers[k].state_dict()["state"]
        assert before.keys() == after.keys() and before
        assert all(torch.equal(before[i]["exp_avg"], after[i]["exp_avg"]) for i in before)
    assert Trainer(config, data=mnist, init=first.checkpoint()).optimizers["vae"].state_dict()["state"] == {}


def test_saved_states_stay_within_their_quota_ended_runs_going_first(tmp_path):
    reg = RunRegistry(max_jobs=1, runs_dir=tmp_path, state_every=0.0, state_quota=1)
    ended = reg.submit(TrainConfig.for_model("vae", steps=5, batch_size=8))
    wait_for(lambda: reg.view(ended).status is Status.FINISHED and (tmp_path / "state" / f"{ended.id}.pt").exists())
    running = reg.submit(tiny_vae_run(log_every=5))
    wait_for(lambda: (tmp_path / "state" / f"{running.id}.pt").exists(), what="the running run's state")
    assert not (tmp_path / "state" / f"{ended.id}.pt").exists()
    reg.stop(running)
    wait_for(lambda: reg.view(running).status is Status.STOPPED)


def test_a_state_that_cannot_be_written_is_said_and_training_goes_on(tmp_path):
    (tmp_path / "state").write_text("a file where the state folder should be")
    reg = RunRegistry(max_jobs=1, runs_dir=tmp_path, state_every=0.0)
    run = reg.submit(TrainConfig.for_model("vae", steps=20, batch_size=8, log_every=5))
    wait_for(lambda: reg.view(run).status is Status.FINISHED)
    assert "could not be saved" in reg.view(run).message and reg.view(run).step == 20


def test_a_browser_session_holds_one_place_in_the_queue():
    reg = RunRegistry(max_jobs=1)
    running = reg.submit(tiny_vae_run(), owner="tab-1")
    queued = reg.submit(tiny_vae_run(), owner="tab-1")
    with pytest.raises(RuntimeError, match="already have a run waiting in the queue \\(position 1\\)"):
        reg.submit(tiny_vae_run(), owner="tab-1")
    other = reg.submit(tiny_vae_run(), owner="tab-2")
    assert [reg.view(r).queue_position for r in (queued, other)] == [1, 2]
    reg.stop(queued)
    again = reg.submit(tiny_vae_run(), owner="tab-1")                  # its place is free once it is cancelled
    for run in (again, other, running):
        reg.stop(run)
    wait_for(lambda: reg.view(running).status is Status.STOPPED)


def test_an_ended_run_is_read_from_its_saved_state_not_held_in_memory(tmp_path):
    reg = RunRegistry(max_jobs=1, runs_dir=tmp_path)
    run = reg.submit(TrainConfig.for_model("vae", steps=20, batch_size=8, sample_every=5))
    wait_for(lambda: reg.view(run).status is Status.FINISHED)
    state = tmp_path / "state" / f"{run.id}.pt"
    mapped = [[int(a, 16) for a in line.split()[0].split("-")]            # the file's pages in this process
              for line in Path("/proc/self/maps").read_text().splitlines() if line.endswith(str(state))]
    for tensor in run.checkpoint()["state_dict"].values():                # views of the file, not copies
        assert any(low <= tensor.data_ptr() < high for low, high in mapped)
    assert reg.view(run).snapshot_steps == [1, 5, 10, 15, 20] and run.snapshot(-1)[1].shape == (64, 28, 28)
    assert run.init_checkpoint is None and run.base_checkpoint is None


def test_closing_the_registry_stops_its_trainings_and_keeps_them_resumable(tmp_path):
    reg = RunRegistry(max_jobs=1, runs_dir=tmp_path)
    run = reg.submit(tiny_vae_run(log_every=5))
    queued = reg.submit(tiny_vae_run())
    wait_for(lambda: reg.view(run).step >= 10, what="some training")
    reg.close()
    assert not run.worker.is_alive() and reg.view(queued).status is Status.QUEUED       # nothing new starts
    restarted = RunRegistry(max_jobs=1, runs_dir=tmp_path)
    view = restarted.view(restarted.get(run.id))
    assert view.status is Status.INTERRUPTED and view.step >= 10      # saved as it stood, not 30 s earlier


def test_a_training_thread_keeps_its_torch_threads_while_a_page_scores_with_one():
    import threading

    from aigc import configure_threads
    from aigc.device import torch_threads
    torch.set_num_threads(2)
    seen, scoring = [], threading.Event()

    def training():
        configure_threads(2)                          # as RunRegistry._work does with threads=2
        scoring.wait(10)
        seen.append(torch.get_num_threads())

    worker = threading.Thread(target=training)
    worker.start()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
        scoring.set()
        worker.join(10)
    assert seen == [2] and torch.get_num_threads() == 2
