"""Does the coach see what goes wrong, soon enough, and stay quiet when nothing does?

For each failure preset (aigc.coach.PRESETS) and seed: the run without a remedy, recording the step at which
the grid's coverage first falls below 6 of 10 digits and the step of each diagnosis; then the same run with
the coach pausing it at the warning the lesson is about (as the Train page's lessons do) and its remedy
applied there, recording how many steps the grid takes to show 9 or more digits again (and a VAE's KL
term to carry 1 nat again). For the healthy recipe: full runs with several seeds, and every warning the
coach gave (there should be none).

    python bench/coach.py                         # all presets, seeds 0 1 2
    python bench/coach.py --presets collapse --seeds 0 --steps 600
"""
from __future__ import annotations

import argparse
import time

from aigc import MODELS, PRESETS, TrainConfig, describe_device, pick_device
from aigc.coach import COLLAPSE_COVERAGE, COLLAPSE_WARMUP, POSTERIOR_COLLAPSE_KL
from aigc.runs import RunRegistry

RECOVERED = 9


def preset_config(name: str, seed: int, steps: int | None) -> TrainConfig:
    preset = PRESETS[name]
    settings = {**preset.settings, "seed": seed, **({"steps": steps} if steps else {})}
    return TrainConfig.for_model(preset.model, model_args=dict(preset.model_args), **settings)


def watch(registry: RunRegistry, run, remedy: bool) -> dict:
    """Polls the run to its end: first step of each diagnosis, the steps where coverage fell below 6 and
    (with `remedy`) where the coach paused it, the remedy applied and coverage came back to RECOVERED."""
    first, remedied_at, paused_step = {}, None, None
    while True:
        view = registry.view(run)
        for d in view.diagnoses:
            first.setdefault(d.kind, view.step)
        if view.status.value == "paused":          # by the coach: the first time, apply its remedy
            warning = next((d for d in view.diagnoses if d.remedy is not None and not d.remedy.stop), None)
            if remedy and remedied_at is None and warning is not None:
                paused_step = view.step
                registry.change(run, **warning.remedy.changes)
                remedied_at = (view.step, warning.kind, warning.remedy.label)
                time.sleep(0.2)
            registry.resume(run)
        if not view.active:
            break
        time.sleep(0.05)
    readings = view.readings
    fell = next((s for s, c in zip(readings["step"], readings["coverage"])
                 if s >= COLLAPSE_WARMUP and c < COLLAPSE_COVERAGE), None)
    recovered = kl_back = None
    if remedied_at is not None:
        recovered = next((s - remedied_at[0] for s, c in zip(readings["step"], readings["coverage"])
                          if s > remedied_at[0] and c >= RECOVERED), None)
        kl_back = next((s - remedied_at[0] for s, kl in zip(view.history["step"], view.history.get("kl", []))
                        if s > remedied_at[0] and kl >= POSTERIOR_COLLAPSE_KL), None)
    return {"first": first, "fell": fell, "remedy": remedied_at, "paused": paused_step, "recovered_after": recovered,
            "kl_back_after": kl_back,
            "final_coverage": readings["coverage"][-1], "status": view.status.value, "step": view.step}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=[n for n in PRESETS if n != "healthy"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=1000, help="steps of each failure run")
    parser.add_argument("--healthy-steps", type=int, default=None, help="steps of each healthy run (its recipe's)")
    parser.add_argument("--skip-healthy", action="store_true")
    args = parser.parse_args()
    print(f"device: {describe_device(pick_device())}")
    registry = RunRegistry(max_jobs=1, idle_timeout=1e9)
    for name in args.presets:
        for seed in args.seeds:
            started = time.perf_counter()
            plain = watch(registry, registry.submit(preset_config(name, seed, args.steps)), remedy=False)
            cured = watch(registry, registry.submit(preset_config(name, seed, args.steps), pause_on_warning=True,
                                                    pause_on=(PRESETS[name].shows,)), remedy=True)
            shown = plain["first"].get(PRESETS[name].shows)
            lag = shown - plain["fell"] if shown is not None and plain["fell"] is not None else None
            print(f"{name:19s} seed {seed}: coverage < {COLLAPSE_COVERAGE} at step {plain['fell']}, "
                  f"'{PRESETS[name].shows}' diagnosed at step {shown} (lag {lag}); all diagnoses {plain['first']}; "
                  f"final coverage {plain['final_coverage']}")
            kl = (f", KL >= {POSTERIOR_COLLAPSE_KL:g} nat again after {cured['kl_back_after']} steps"
                  if "kl" in MODELS[PRESETS[name].model][1].metric_names else "")
            print(f"{'':19s}   with the coach: paused at step {cured['paused']}, remedy {cured['remedy']}, "
                  f"coverage >= {RECOVERED} again after {cured['recovered_after']} steps{kl}; final coverage "
                  f"{cured['final_coverage']} ({time.perf_counter() - started:.0f} s)")
    if not args.skip_healthy:
        for seed in args.seeds:
            result = watch(registry, registry.submit(preset_config("healthy", seed, args.healthy_steps)), remedy=False)
            warnings = {k: s for k, s in result["first"].items() if k != "plateau"}
            print(f"healthy seed {seed}: {result['step']} steps, {result['status']}, warnings {warnings or 'none'}, "
                  f"plateau said at step {result['first'].get('plateau')}, final coverage {result['final_coverage']}")


if __name__ == "__main__":
    main()
