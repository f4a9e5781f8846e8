"""The time machine and the controls of a live run: exact branches, settings changed mid-run, slow motion."""
import threading
from dataclasses import replace

import pytest
import torch
from conftest import base_for, wait_for

from aigc import MODELS, Status, TrainConfig, Trainer, live_values
from aigc.runs import RunRegistry

TINY = dict(steps=12, batch_size=16, log_every=2, sample_every=3, num_samples=8)


def losses(history: dict) -> dict:
    """A history without its clock."""
    return {k: v for k, v in history.items() if k != "seconds"}


def states_of(trainer: Trainer) -> dict:
    """Runs the trainer, keeping its state() at every snapshot."""
    states = {}
    trainer.add_callback("on_samples", lambda t: states.setdefault(t.step, t.state()))
    trainer.run()
    return states


@pytest.mark.parametrize("name", list(MODELS))
def test_a_branch_with_unchanged_settings_repeats_the_run_exactly(name, mnist):
    original = Trainer(TrainConfig.for_model(name, **TINY), data=mnist, base=base_for(name))
    states = states_of(original)
    state = states[3]                      # between two logs: the half-filled log window is part of the state
    branch = Trainer(replace(TrainConfig.from_dict(state["train_config"]), steps=9), data=mnist, init=state)
    branch.run()
    assert branch.step == original.step == 12
    assert losses(branch.history) == losses(original.history), "the same losses after the branch point, to the last bit"
    ours, theirs = branch.model.state_dict(), original.model.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs), "the same weights at the end"


def test_other_random_numbers_drawn_meanwhile_do_not_change_a_run(mnist):
    a = Trainer(TrainConfig.for_model("cgan", **TINY), data=mnist)
    a.add_callback("on_log", lambda t: torch.randn(1000))       # another user of torch's global generator
    a.run()
    b = Trainer(TrainConfig.for_model("cgan", **TINY), data=mnist)
    b.run()
    assert losses(a.history) == losses(b.history)


def paused_at(trainer: Trainer, step: int) -> threading.Thread:
    paused = threading.Event()
    trainer.add_callback("on_log", lambda t: t.step == step and t.pause())
    trainer.add_callback("on_status", lambda t: t.status is Status.PAUSED and paused.set())
    thread = threading.Thread(target=trainer.run, daemon=True)      # a failed test leaves no thread behind
    thread.start()
    assert paused.wait(60)
    return thread


def test_a_change_mid_run_keeps_step_weights_and_history_and_is_marked(mnist):
    trainer = Trainer(TrainConfig.for_model("cgan", steps=20, batch_size=16, lr=5e-4, log_every=2, sample_every=5),
                      data=mnist)
    thread = paused_at(trainer, 10)
    weights = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    history = {k: list(v) for k, v in trainer.history.items()}
    changed = threading.Event()
    trainer.add_callback("on_log", lambda t: t.events and changed.set())
    trainer.change(**{"lr.d": 1e-4, "beta1": 0.0, "ema_decay": 0.99})
    assert changed.wait(30), "a paused run applies the change at once"
    assert trainer.step == 10 and trainer.history == history
    assert all(torch.equal(weights[k], v) for k, v in trainer.model.state_dict().items())
    assert trainer.optimizers["d"].param_groups[0]["lr"] == 1e-4 and trainer.optimizers["g"].param_groups[0]["lr"] == 5e-4
    assert all(opt.param_groups[0]["betas"][0] == 0.0 for opt in trainer.optimizers.values())
    assert trainer.model.config.ema_decay == 0.99
    assert trainer.events[0]["step"] == 10 and "Discriminator's learning rate 0.0005 → 0.0001" in trainer.events[0]["text"]
    assert trainer.config.lr_of == {"d": 1e-4} and trainer.config.beta1 == 0.0
    trainer.resume()
    thread.join(60)
    assert trainer.status is Status.FINISHED and trainer.step == 20
    assert trainer.history["step"][:5] == history["step"], "the history goes on from where it was"
    # its checkpoint remembers the change, so a branch from it starts with D's own learning rate
    state = trainer.state()
    assert live_values(state, trainer.live_settings())["lr.d"] == 1e-4 and state["events"] == trainer.events
    again = Trainer(replace(TrainConfig.from_dict(state["train_config"]), steps=1), data=mnist, init=state)
    assert again.optimizers["d"].param_groups[0]["lr"] == 1e-4


def test_bad_changes_are_refused_with_the_reason(mnist):
    trainer = Trainer(TrainConfig.for_model("cgan", **TINY), data=mnist)
    with pytest.raises(ValueError, match="between 1e-06 and 0.1"):
        trainer.change(**{"lr.g": 3.0})
    with pytest.raises(ValueError, match="cannot|not a setting"):
        trainer.change(width=64)
    vae = Trainer(TrainConfig.for_model("vae", **TINY), data=mnist)
    assert [s.name for s in vae.live_settings()] == ["lr", "beta1", "batch_size", "beta"]
    with pytest.raises(ValueError, match="no separate update"):
        vae.update_once("d")
    with pytest.raises(RuntimeError, match="pause the run first"):
        trainer.advance(1)


def test_slow_motion_steps_a_paused_run_and_updates_d_or_g_alone(mnist):
    trainer = Trainer(TrainConfig.for_model("cgan", steps=100, batch_size=16, log_every=5, sample_every=50),
                      data=mnist)
    grids = []
    trainer.add_callback("on_samples", lambda t: grids.append(t.step))
    thread = paused_at(trainer, 10)
    before = len(grids)
    trainer.advance(3)
    wait_for(lambda: len(grids) > before, 30, "the grid redrawn after the steps")
    assert trainer.step == 13 and trainer.status is Status.PAUSED
    assert trainer.history["step"][-1] == 13, "the charts get the steps at once"

    def parts():          # the learned weights (a forward pass in training mode moves BatchNorm's statistics)
        return ({k: v.detach().clone() for k, v in trainer.model.discriminator.named_parameters()},
                {k: v.detach().clone() for k, v in trainer.model.generator.named_parameters()})

    def same(a, b):
        return all(torch.equal(a[k], b[k]) for k in a)

    d0, g0 = parts()
    trainer.update_once("d")
    wait_for(lambda: len(grids) > before + 1, 30, "the grid after D's update")
    d1, g1 = parts()
    assert not same(d0, d1) and same(g0, g1), "only D learned"
    assert trainer.step == 13 and trainer.events[-1] == {"step": 13, "text": "one D update", "kind": "update"}
    assert trainer.last_log["update"] == "d" and trainer.last_log["updated"] == ["loss_d", "d_real", "d_fake"]
    trainer.update_once("g")
    wait_for(lambda: len(grids) > before + 2, 30, "the grid after G's update")
    d2, g2 = parts()
    assert same(d1, d2) and not same(g1, g2), "only G learned"
    trainer.stop()
    thread.join(30)
    assert trainer.status is Status.STOPPED


def finished(registry: RunRegistry, run) -> None:
    wait_for(lambda: not registry.view(run).active, 120, f"run {run.id} to end")


def test_the_registry_branches_a_run_into_a_family_that_shares_its_past(mnist):
    registry = RunRegistry(max_jobs=1, monitor=False)
    config = TrainConfig.for_model("cgan", steps=40, batch_size=16, lr=5e-4, log_every=5, sample_every=10,
                                    num_samples=8)
    run = registry.submit(config, owner="teacher")
    finished(registry, run)
    parent = registry.view(run)
    assert parent.branch_steps == [1, 10, 20, 30, 40]
    exact = registry.branch(run, 20, {}, owner="teacher")
    finished(registry, exact)
    replay = registry.view(exact)
    assert replay.status is Status.FINISHED and losses(replay.history) == losses(parent.history)
    assert (replay.parent, replay.branch_step, replay.family) == (run.id, 20, run.id)
    assert replay.snapshot_steps == parent.snapshot_steps
    assert [(s, p.tobytes()) for s, p in exact.snapshots] == [(s, p.tobytes()) for s, p in run.snapshots]
    changed = registry.branch(exact, 30, {"lr.g": 1e-3}, owner="teacher")       # a branch of a branch
    finished(registry, changed)
    other = registry.view(changed)
    assert other.events == [{"step": 30, "text": "Generator's learning rate 0.0005 → 0.001", "kind": "settings"}]
    assert other.history["loss_g"][:6] == parent.history["loss_g"][:6]
    assert other.history["loss_g"][6:] != parent.history["loss_g"][6:]
    assert [r.id for r in registry.family(changed)] == [run.id, exact.id, changed.id]
    with pytest.raises(ValueError, match="keeps no state at step 21"):
        registry.branch(run, 21)
    with pytest.raises(ValueError, match="between"):
        registry.branch(run, 20, {"batch_size": 1})
    with pytest.raises(ValueError, match="not a setting"):
        registry.branch(run, 20, {"latent_dim": 3})


def test_branching_a_paused_run_stops_it_and_the_branch_takes_its_place(mnist):
    registry = RunRegistry(max_jobs=1, monitor=False)
    run = registry.submit(TrainConfig.for_model("cgan", steps=100_000, batch_size=16, sample_every=10), owner="t")
    wait_for(lambda: len(registry.view(run).branch_steps) >= 3, 60, "a few branch points")
    registry.pause(run)
    wait_for(lambda: registry.view(run).status is Status.PAUSED, 30, "the pause")
    step = registry.view(run).branch_steps[1]
    branch = registry.branch(run, step, {"lr.d": 1e-4}, owner="t")
    wait_for(lambda: registry.view(branch).status is Status.RUNNING, 60, "the branch to start")
    assert registry.view(run).status is Status.STOPPED and "branch" in registry.view(run).message
    registry.stop(branch)
    finished(registry, branch)


def test_branch_points_stay_within_their_bounds(mnist):
    config = TrainConfig.for_model("cgan", steps=60, batch_size=16, log_every=5, sample_every=5, num_samples=8)
    registry = RunRegistry(max_jobs=1, monitor=False, max_branch_points=4)
    run = registry.submit(config)
    finished(registry, run)
    steps = registry.view(run).branch_steps
    assert 2 <= len(steps) <= 4 and steps[0] == 1 and steps[-1] == 60, "thinned, the first and the last kept"
    one_run = run.branch_bytes()
    # memory for the ended runs' states: room for one run's; the run unseen the longest gives its states up
    registry = RunRegistry(max_jobs=1, monitor=False, max_branch_points=4, branch_memory_total=one_run)
    first = registry.submit(config)
    finished(registry, first)
    second = registry.submit(config)
    finished(registry, second)
    assert registry.view(first).branch_steps == [] and registry.view(second).branch_steps == steps
