"""Time to digits: seconds of training (scoring time excluded) until a model's samples read as digits.

'Digits' = 1,000 samples from fixed noise get mean classifier confidence ≥ 0.90 with all ten classes
present (aigc.metrics.quick_score). Each model trains from scratch with its recipe on this machine; the
Fréchet distance (10,000 samples, vs the test set, with its ratio to the real-data floor) is taken at
each mark.

    .venv/bin/python bench/time_to_digits.py --marks 30,60,120
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # run as a script from anywhere
from aigc import MODELS, TrainConfig, Trainer, configure_threads, describe_device, load_mnist, pick_device  # noqa: E402
from aigc.metrics import evaluate_model, generate, quick_score  # noqa: E402


def bench(name: str, marks: list[float], every: float, data, model_args: dict) -> dict:
    trainer = Trainer(TrainConfig.for_model(name, steps=100_000, model_args=model_args), data=data)
    first_ok, scores, t = None, {}, 0.0
    while t < marks[-1]:
        t = min(t + every, marks[-1])
        trainer.config.max_seconds = t
        trainer.run()                                   # continues where it stopped
        if first_ok is None:
            verdict = quick_score(generate(trainer.model, 1000, seed=1))
            if verdict["digits_ok"]:
                first_ok = trainer.train_seconds
        for mark in marks:
            if mark not in scores and trainer.train_seconds >= mark - 1e-6:
                s = evaluate_model(trainer.model, n=10_000)
                scores[mark] = s
                print(f"  {name} at {mark:.0f} s (step {trainer.step}): FD {s['fid']:.1f} ({s['fid_ratio']:.1f}× floor), "
                      f"confidence {s['confidence']:.3f}, {s['coverage']}/10 digits", flush=True)
        trainer.model.train()
    return {"first_ok": first_ok, "scores": scores, "steps": trainer.step}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", choices=list(MODELS), help="repeatable; default: every model")
    p.add_argument("--marks", default="30,60,120", help="training seconds at which to take the Fréchet distance")
    p.add_argument("--every", type=float, default=2.0, help="training seconds between digit checks")
    args = p.parse_args()
    marks = sorted(float(m) for m in args.marks.split(","))
    configure_threads()
    device = pick_device()
    data = load_mnist(train=True, device=device)
    results = {}
    for name in args.model or list(MODELS):
        results[name] = bench(name, marks, args.every, data, {})
    print(f"\n{describe_device(device)}, {time.strftime('%Y-%m-%d')}; digits = confidence ≥ 0.90 and all 10 classes "
          f"in 1,000 samples; FD = Fréchet distance in classifier features (× real-data floor)")
    head = "| model | seconds to digits | " + " | ".join(f"FD at {m:.0f} s" for m in marks) + " |"
    print(head + "\n" + "|---" * (2 + len(marks)) + "|")
    for name, r in results.items():
        ttd = f"{r['first_ok']:.0f}" if r["first_ok"] is not None else f"not within {marks[-1]:.0f}"
        cells = [f"{r['scores'][m]['fid']:.1f} ({r['scores'][m]['fid_ratio']:.1f}×), conf {r['scores'][m]['confidence']:.2f}"
                 for m in marks]
        print(f"| {name} | {ttd} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
