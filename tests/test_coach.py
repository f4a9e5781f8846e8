"""The coach's rules on measured runs written out by hand: each fires on its failure, with the evidence and a
remedy, and stays quiet on a healthy run and after a remedy was applied."""
import pytest

from aigc import MODELS, PRESETS, TrainConfig, diagnose
from aigc.coach import Measured

RECIPE = {"lr.d": 5e-4, "lr.g": 5e-4, "beta1": 0.5, "batch_size": 32, "ema_decay": 0.999}
HEALTHY_SHARES = [0.1] * 10


def gan_run(steps=1000, d_real=0.7, d_fake=0.3, loss_g=1.5, shares=None, live=None, events=(), every=5, snap=25):
    """A cgan's history logged every `every` steps and readings every `snap` steps; values may be functions
    of the step."""
    value = lambda v, s: v(s) if callable(v) else v
    logged = range(every, steps + 1, every)
    history = {"step": list(logged), "seconds": [s / 60 for s in logged],
               "loss_d": [1.2 for _ in logged], "loss_g": [value(loss_g, s) for s in logged],
               "d_real": [value(d_real, s) for s in logged], "d_fake": [value(d_fake, s) for s in logged]}
    snaps = list(range(snap, steps + 1, snap))
    grid_shares = [value(shares or HEALTHY_SHARES, s) for s in snaps]
    readings = {"step": snaps, "shares": grid_shares,
                "coverage": [sum(1 for x in row if x > 0) for row in grid_shares],
                "confidence": [0.95 for _ in snaps], "precision": [None for _ in snaps], "recall": [None for _ in snaps]}
    return Measured("cgan", steps, 3000, history, readings, list(events), {**RECIPE, **(live or {})})


def kinds(measured) -> list[str]:
    return [d.kind for d in diagnose(measured)]


def one_digit(step):          # the grid fills with 3s from step 300
    return HEALTHY_SHARES if step < 300 else [0, 0.05, 0, 0.9, 0, 0, 0.05, 0, 0, 0]


def test_a_healthy_run_gets_no_warning():
    assert kinds(gan_run(steps=900)) == []
    # D's loss falls while D leads early on and rises again as G catches up: that is no divergence
    d_loss_back = gan_run(steps=200)
    d_loss_back.history["loss_d"] = [0.3] * 33 + [0.5, 0.8, 1.3, 1.35, 1.4, 1.45, 1.5]
    assert kinds(d_loss_back) == []


def test_collapse_names_the_lost_digits_and_offers_momentum_back():
    found = diagnose(gan_run(steps=400, shares=one_digit, live={"beta1": 0.95}))
    collapse = next(d for d in found if d.kind == "collapse")
    assert collapse.title == "Mode collapse: it draws 3 of the 10 digits"
    assert "90% of them a 3" in collapse.evidence and "lost 0, 2, 4, 5, 7, 8, 9" in collapse.evidence
    assert collapse.remedy.changes == {"beta1": 0.5}


def test_one_reading_is_not_a_collapse_and_neither_is_an_early_blob():
    assert "collapse" not in kinds(gan_run(steps=300, shares=one_digit))      # one reading of it so far
    early = lambda s: [0.5, 0.5] + [0] * 8
    assert "collapse" not in kinds(gan_run(steps=75, shares=early)), "before step 100 the grid is blobs"


def test_the_discriminator_winning_is_cured_by_a_faster_generator():
    found = diagnose(gan_run(steps=500, d_real=0.99, d_fake=0.01, loss_g=9.0, live={"lr.g": 2.5e-5}))
    wins = next(d for d in found if d.kind == "discriminator_wins")
    assert "D(x) averaged 0.99" in wins.evidence and "D(G(z)) 0.01" in wins.evidence
    assert wins.remedy.changes == {"lr.g": 0.002}
    assert "discriminator_wins" not in kinds(gan_run(steps=300, d_real=0.99, d_fake=0.01)), "early on it is normal"


def test_an_exploding_loss_is_caught_two_logs_past_the_ceiling():
    found = diagnose(gan_run(steps=40, loss_g=lambda s: 3 if s < 30 else 14, live={"beta1": 0.9}))
    assert [d.kind for d in found] == ["diverging"]
    assert found[0].remedy.changes == {"beta1": 0.5} and "G loss is 14" in found[0].evidence


def test_a_model_without_a_ceiling_is_judged_against_its_own_median():
    steps = list(range(5, 305, 5))
    loss = [100.0] * 57 + [300.0, 450.0, 700.0]
    measured = Measured("vae", 300, 2000, {"step": steps, "loss": loss, "recon": loss, "kl": [20.0] * 60},
                        live={"lr": 1e-3, "beta1": 0.9, "batch_size": 128, "beta": 1.0})
    found = diagnose(measured)
    assert [d.kind for d in found] == ["diverging"] and found[0].remedy.changes == {"lr": 0.0005}


def test_oscillation_is_a_swinging_verdict():
    found = diagnose(gan_run(steps=600, d_fake=lambda s: 0.1 if (s // 5) % 2 else 0.6))
    assert "oscillating" in [d.kind for d in found]


def test_after_a_remedy_the_coach_judges_only_what_came_after_it_and_gives_it_time():
    collapsed = gan_run(steps=400, shares=one_digit, live={"beta1": 0.95})
    assert "collapse" in kinds(collapsed)
    change = [{"step": 375, "text": "β₁ 0.95 → 0.5", "kind": "settings"}]
    assert "collapse" not in kinds(gan_run(steps=650, shares=one_digit, events=change)), "300 steps of grace"
    assert "collapse" in kinds(gan_run(steps=700, shares=one_digit, events=change)), "then, still collapsed, it says so"
    slow_motion = [{"step": 375, "text": "one D update", "kind": "update"}]
    assert "collapse" in kinds(gan_run(steps=400, shares=one_digit, events=slow_motion)), "an update changes no setting"


def test_a_plateau_says_you_can_stop():
    measured = gan_run(steps=2000)
    found = diagnose(measured)
    assert [d.kind for d in found] == ["plateau"] and found[0].severity == "info" and found[0].remedy.stop


def test_posterior_collapse_of_a_vae():
    steps = list(range(5, 505, 5))
    measured = Measured("vae", 500, 2000, {"step": steps, "loss": [150.0] * 100, "recon": [150.0] * 100,
                                           "kl": [0.2] * 100}, live={"lr": 1e-3, "beta1": 0.9, "batch_size": 128,
                                                                      "beta": 4.0})
    found = diagnose(measured)
    assert [d.kind for d in found] == ["posterior_collapse"] and found[0].remedy.changes == {"beta": 1.0}


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_declares_rules_the_coach_has(name):
    from aigc.coach import RULES
    assert set(MODELS[name][1].diagnoses) <= set(RULES)


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_is_a_valid_run(name):
    preset = PRESETS[name]
    TrainConfig.for_model(preset.model, model_args=dict(preset.model_args), **preset.settings).validate()
    assert preset.shows is None or preset.shows in MODELS[preset.model][1].diagnoses
