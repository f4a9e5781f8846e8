"""The coach: what is going wrong in a run, in plain words, with the evidence and a one-click remedy.

diagnose() reads what a run has measured — its logged metrics, the classifier's readings of its samples
(aigc.monitor) and the settings changes made so far — and returns the Diagnoses that apply now, each
from one of the rules its model lists (GenerativeModel.diagnoses). A rule judges only the steps since
the last change of settings, so a remedy gets a fair chance before the coach speaks again.

PRESETS are runs a teacher can start to show one failure and then its cure, each with its seed.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from .models import MODELS

# Thresholds, from 5 healthy runs of the default cgan recipe of the time (3,000 steps of 32 at lr 5e-4, seeds
# 0-4) against the failure presets below (seeds 0-2); the margins are in the comments. The recipe since, 1,500
# steps of 128 at 3e-3, drew no warning in 3 seeds (bench/coach.py).
COLLAPSE_COVERAGE = 6          # fewer digits than this in the 64-sample grid (healthy: ≥ 6 after step 100)...
COLLAPSE_WARMUP = 100          # ...from this many steps on (before, the grid is blobs for any run)
COLLAPSE_ONE_DIGIT = 30 / 64   # or one digit this share of the grid (healthy: ≤ 25/64 after step 200)...
COLLAPSE_ONE_DIGIT_WARMUP = 200
D_WINS_REAL, D_WINS_FAKE = 0.9, 0.1    # D(x) above and D(G(z)) below, averaged over the last LOGS_RECENT logs
D_WINS_WARMUP = 350            # healthy runs pass through this early on: last seen at steps 185-245
LOGS_RECENT = 10
OSCILLATION_SWING = 0.12       # mean |change| of D(G(z)) between logs over 40 logs (healthy: ≤ 0.058)
DIVERGING_FACTOR = 4.0         # a loss this many times its median since the last change, rising 3 logs in a row
                               # (for a model without loss_ceilings)
PLATEAU_WINDOW = 0.3           # the last 30% of the steps since the last change...
PLATEAU_GAIN = 0.01            # ...beat the best confidence before them by less than this
PLATEAU_MIN_STEP = 1000
POSTERIOR_COLLAPSE_KL = 1.0    # nats: the codes say almost nothing about the digit
REMEDY_GRACE = 300             # steps a change gets before collapse or D's win is judged again (the presets'
                               # remedies brought the grid back to 9+ digits within 35-295 steps, bench/coach.py)


@dataclass(frozen=True)
class Remedy:
    label: str                 # the button: "Lower D's learning rate to 0.0001"
    changes: dict              # live settings to change (Trainer.change); empty with stop
    effect: str                # what it will change, in a sentence
    stop: bool = False         # the remedy is to stop the run (its weights are kept)


@dataclass(frozen=True)
class Diagnosis:
    kind: str                  # one of GenerativeModel.diagnoses
    title: str                 # what is happening
    evidence: str              # the numbers behind it
    why: str                   # why it happens in this kind of model
    remedy: Remedy | None
    severity: str = "warning"  # "warning", or "info" for good news (plateau)


@dataclass
class Measured:
    """What diagnose() reads: a run's history (Trainer.history), readings of its samples ({"step": [...],
    "shares", "confidence", "coverage", "precision", "recall"}; monitor.SampleMonitor), its events
    ({"step", "text", "kind"}: "settings" changed or a slow-motion "update") and its live settings now."""
    model: str
    step: int
    target_step: int
    history: dict
    readings: dict = field(default_factory=dict)
    events: list = field(default_factory=list)
    live: dict = field(default_factory=dict)

    def after(self, warmup: int) -> int:
        """The first step a rule with this warmup judges: the warmup from the start, REMEDY_GRACE after a change."""
        return self.since + REMEDY_GRACE if self.since else warmup

    @property
    def since(self) -> int:
        """The step of the last change of settings (0 for none): rules judge what came after it."""
        return max((e["step"] for e in self.events if e.get("kind") == "settings"), default=0)

    def logs(self, metric: str) -> list[float]:
        steps, values = self.history.get("step", []), self.history.get(metric, [])
        return [v for s, v in zip(steps, values) if s > self.since]

    def read(self, key: str) -> list:
        steps, values = self.readings.get("step", []), self.readings.get(key, [])
        return [(s, v) for s, v in zip(steps, values) if s > self.since and v is not None]


def _lowered(name: str, live: dict, factor: float, floor: float = 1e-6) -> float:
    return float(f"{max(floor, live[name] * factor):.2g}")


def likely_remedy(m: Measured) -> Remedy | None:
    """The likeliest cure, from the run's settings. For a GAN momentum first (β₁ above 0.5 broke the cgan at
    any learning rate; back at 0.5 it recovered within 35-295 steps in the collapse and exploding-loss
    lessons), then a generator that learns too slowly for its discriminator; for any model, then, steps too
    large."""
    live = m.live
    gan = {"lr.d", "lr.g"} <= live.keys()
    if gan and live.get("beta1", 0.0) > 0.5:
        return Remedy("Set β₁ back to 0.5", {"beta1": 0.5},
                      f"Adam keeps {live['beta1']:.0%} of its last direction in every step: D and G overshoot each "
                      f"other's last move again and again. At 0.5 each step follows the present gradient more.")
    if gan and live["lr.g"] < live["lr.d"] / 2:
        lr_g = float(f"{min(0.1, 4 * live['lr.d']):.2g}")
        return Remedy(f"Raise G's learning rate to {lr_g:g}", {"lr.g": lr_g},
                      f"G learns {live['lr.d'] / live['lr.g']:.0f}× slower than D; at {lr_g:g} it can follow D's "
                      f"verdicts again, and D(G(z)) climbs back towards ½.")
    lr_names = [k for k in live if k == "lr" or k.startswith("lr.")]
    if not lr_names:
        return None
    return Remedy("Halve the learning rates", {k: float(f"{max(1e-6, live[k] / 2):.2g}") for k in lr_names},
                  "Smaller steps, so the networks stop overshooting.")


def collapse(m: Measured) -> Diagnosis | None:
    coverage, shares = m.read("coverage"), m.read("shares")
    if len(coverage) < 2:               # (the samples may be blobs still: a collapse to one blob is one too)
        return None
    (step, now), (_, before) = coverage[-1], coverage[-2]
    top, top_before = max(shares[-1][1]), max(shares[-2][1])
    few = now < COLLAPSE_COVERAGE and before < COLLAPSE_COVERAGE and step >= m.after(COLLAPSE_WARMUP)
    one = top >= COLLAPSE_ONE_DIGIT and top_before >= COLLAPSE_ONE_DIGIT and step >= m.after(COLLAPSE_ONE_DIGIT_WARMUP)
    if not (few or one):
        return None
    drawn = [d for d, share in enumerate(shares[-1][1]) if share > 0]
    favourite = max(range(len(shares[-1][1])), key=lambda d: shares[-1][1][d])
    best_step, best = max(coverage, key=lambda r: (r[1], -r[0]))
    best_shares = next(v for s, v in shares if s == best_step)
    lost = [d for d, share in enumerate(best_shares) if share > 0 and d not in drawn]
    evidence = (f"At step {step:,} the classifier reads the 64 fixed-noise samples as {now} of the 10 digits "
                f"({', '.join(map(str, drawn))}), {top:.0%} of them a {favourite}")
    evidence += f"; at step {best_step:,} it read {best}: it has lost {', '.join(map(str, lost))}." if lost else "."
    recall = m.read("recall")
    if recall:
        evidence += f" Recall (the share of real digits its samples cover) is {recall[-1][1]:.2f}."
    return Diagnosis(
        "collapse", f"Mode collapse: it draws {now} of the 10 digits", evidence,
        "G is rewarded for any image D takes for real, not for variety: when a few shapes fool D best, G puts "
        "all its noise into them, and D, judging one image at a time, cannot see that the others are missing. "
        "D then learns to reject that shape, G jumps to another, and the favourite keeps changing.",
        likely_remedy(m))


def discriminator_wins(m: Measured) -> Diagnosis | None:
    real, fake, loss_g = m.logs("d_real"), m.logs("d_fake"), m.logs("loss_g")
    if len(real) < LOGS_RECENT or m.step < m.after(D_WINS_WARMUP):
        return None
    r, f = sum(real[-LOGS_RECENT:]) / LOGS_RECENT, sum(fake[-LOGS_RECENT:]) / LOGS_RECENT
    if not (r > D_WINS_REAL and f < D_WINS_FAKE):
        return None
    return Diagnosis(
        "discriminator_wins", "The discriminator is winning",
        f"Over the last {LOGS_RECENT} logs D(x) averaged {r:.2f} and D(G(z)) {f:.2f}: D tells real from fake "
        f"almost every time, and G's loss is {loss_g[-1]:.1f} (a balanced game keeps it near 1 to 3).",
        "When D is sure, its verdict on a fake barely changes as the fake changes, so G's gradient carries "
        "almost no direction and G stops learning. Balance comes from D learning no faster than G can follow.",
        likely_remedy(m))


def oscillating(m: Measured) -> Diagnosis | None:
    fake = m.logs("d_fake")[-40:]
    if len(fake) < 40:
        return None
    swing = sum(abs(b - a) for a, b in zip(fake, fake[1:])) / (len(fake) - 1)
    if swing < OSCILLATION_SWING:
        return None
    return Diagnosis(
        "oscillating", "D and G are swinging back and forth",
        f"D(G(z)) moved by {swing:.2f} on average from one log to the next over the last 40 (healthy runs: "
        f"at most {OSCILLATION_SWING / 2:.2f}).",
        "Each network steps towards beating the other's last move; with large or momentum-carrying steps "
        "both overshoot, and the game circles round its balance instead of settling in it.", likely_remedy(m))


def diverging(m: Measured) -> Diagnosis | None:
    model = MODELS[m.model][1]
    labels = {series.metric: series.label for panel in model.panels for series in panel.series}
    # a model that knows how high its losses go in health is judged by that alone: a GAN's D loss falls and
    # rises again as D and G trade the lead, which a rule against the loss's own median takes for divergence
    for name in model.loss_ceilings or [k for k in model.metric_names if k.startswith("loss")]:
        values = m.logs(name)
        if len(values) < 3:
            continue
        ceiling = model.loss_ceilings.get(name)
        typical = statistics.median(abs(v) for v in values) if len(values) >= 20 else None
        last = values[-3:]
        if ceiling is not None and min(last[-2:]) > ceiling:
            evidence = (f"{labels[name]} is {last[-1]:.3g}, above {ceiling:g} for two logs in a row; healthy runs "
                        f"of the recipe stay below it.")
        elif (typical is not None and abs(last[-1]) > DIVERGING_FACTOR * max(typical, 1e-3)
              and last[0] < last[1] < last[2]):
            evidence = (f"{labels[name]} is {last[-1]:.3g}, {abs(last[-1]) / max(typical, 1e-3):.0f}× its median "
                        f"{typical:.3g} since step {m.since:,}, and has risen three logs in a row.")
        else:
            continue
        return Diagnosis(
            "diverging", f"Divergence ahead: the {labels[name]} is exploding", evidence,
            "Steps that are too large overshoot the valley they descend; each overshoot makes the next gradient "
            "larger. Act now: once a GAN's discriminator saturates (D(x) = 1, D(G(z)) = 0) no setting brings it "
            "back, and only a branch from an earlier moment does.",
            likely_remedy(m))
    return None


def plateau(m: Measured) -> Diagnosis | None:
    if m.step < max(PLATEAU_MIN_STEP, m.since + PLATEAU_MIN_STEP) or m.step >= m.target_step:
        return None
    cut = m.step - PLATEAU_WINDOW * (m.step - m.since)
    coverage, confidence = m.read("coverage"), m.read("confidence")
    early, late = [v for s, v in confidence if s <= cut], [v for s, v in confidence if s > cut]
    if len(early) < 3 or len(late) < 3 or max(late) > max(early) + PLATEAU_GAIN:
        return None
    if coverage[-1][1] < 10 or confidence[-1][1] < 0.9:
        return None
    return Diagnosis(
        "plateau", "It has stopped improving: you can stop here",
        f"Since step {int(cut):,} the classifier's confidence in the grid (now {confidence[-1][1]:.2f}) has not "
        f"beaten its earlier best ({max(early):.2f}) by {PLATEAU_GAIN}, and all 10 digits are drawn.",
        "The model has learned what this recipe can teach it; more steps mostly move it around the same "
        "quality.", Remedy("Stop here", {}, "Ends the run now and keeps these weights.", stop=True), "info")


def posterior_collapse(m: Measured) -> Diagnosis | None:
    kl = m.logs("kl")
    if len(kl) < LOGS_RECENT or m.step < m.since + 200:
        return None
    recent = sum(kl[-LOGS_RECENT:]) / LOGS_RECENT
    if recent >= POSTERIOR_COLLAPSE_KL:
        return None
    remedy = None
    if "beta" in m.live and m.live["beta"] > 0.25:
        remedy = Remedy(f"Lower β to {max(0.25, m.live['beta'] / 4):g}", {"beta": max(0.25, m.live["beta"] / 4)},
                        "A smaller price on the KL term lets the codes carry information about each digit again.")
    return Diagnosis(
        "posterior_collapse", "Posterior collapse: the codes say almost nothing",
        f"The KL term averaged {recent:.2f} nats over the last {LOGS_RECENT} logs: the encoder's codes are "
        f"nearly the prior whatever the digit.",
        "The KL term charges for every nat a code carries; when that price (β) is high the cheapest solution is "
        "a decoder that ignores z and draws an average digit.", remedy)


RULES = {"collapse": collapse, "discriminator_wins": discriminator_wins, "oscillating": oscillating,
         "diverging": diverging, "plateau": plateau, "posterior_collapse": posterior_collapse}


def diagnose(measured: Measured) -> list[Diagnosis]:
    """The diagnoses that apply now, warnings first."""
    found = [RULES[kind](measured) for kind in MODELS[measured.model][1].diagnoses]
    return sorted((d for d in found if d is not None), key=lambda d: d.severity != "warning")


@dataclass(frozen=True)
class Preset:
    """A run a teacher starts to show a failure, then its cure (the coach's remedy), or the healthy recipe."""
    name: str
    label: str
    model: str
    settings: dict             # TrainConfig fields over the model's recipe
    story: str                 # what the class will see
    shows: str | None = None   # the diagnosis it provokes
    model_args: dict = field(default_factory=dict)


# The cgan lessons' base: small batches at a gentler learning rate than the recipe's, where each failure and
# its cure were measured (bench/coach.py); on the recipe's batch of 128 at 3e-3 they show other warnings first.
LESSON_BASE = {"batch_size": 32, "lr": 5e-4}

PRESETS = {p.name: p for p in (
    Preset("healthy", "The healthy recipe", "cgan", {"seed": 0},
           "The default conditional GAN: digits of every kind within a few hundred steps, D(x) and D(G(z)) "
           "settling near ½, and the coach quiet until it says you can stop."),
    Preset("collapse", "Mode collapse, and its cure", "cgan",
           {**LESSON_BASE, "lr": 2e-3, "beta1": 0.95, "seed": 0},
           "Too much momentum (Adam's β₁ 0.95) at learning rate 0.002, on batches of 32: within 200 steps G "
           "ignores the digit it is asked for and fills the grid with one digit, a different one every few hundred "
           "steps. The coach pauses the run and offers β₁ back at 0.5; nine or more of the ten bands of the digit "
           "strip come back within about 300 steps.", shows="collapse"),
    Preset("discriminator_wins", "The discriminator wins, and its cure", "cgan",
           {**LESSON_BASE, "lr_of": {"g": 2.5e-5}, "seed": 0},
           "G learns 20× slower than D (batches of 32): D(x) goes to 1 and D(G(z)) to 0 within 50 steps, G's loss "
           "climbs past 9 and its samples stay blobs. The coach's remedy raises G's learning rate; D(G(z)) climbs "
           "back and the digits come within about 100 steps.", shows="discriminator_wins"),
    Preset("diverge", "Exploding losses: act fast or rewind", "cgan",
           {**LESSON_BASE, "lr": 5e-3, "beta1": 0.9, "seed": 0},
           "Learning rate 0.005 and β₁ 0.9, on batches of 32: G's loss shoots past 12 within about 30–45 steps, "
           "and left alone D saturates and the grid collapses. The coach pauses at the first sign; β₁ back at 0.5 "
           "saves the run (9 or more of the ten digits within about 100 steps). Applied too late it cannot: then "
           "branch from a moment before the explosion.", shows="diverging"),
    Preset("posterior_collapse", "A VAE's posterior collapse, and its cure", "vae", {"seed": 0},
           "A VAE whose KL term weighs 20 times what the ELBO gives it: the codes carry almost nothing about "
           "the digit (under 0.2 nats) and every sample is the same blurred average. The coach pauses at step "
           "200 and offers β 5; the KL climbs past 1 nat within about 100 steps and the samples start to "
           "differ.", shows="posterior_collapse", model_args={"beta": 20.0}),
)}
