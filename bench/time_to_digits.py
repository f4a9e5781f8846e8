"""Time to digits: seconds of training (scoring time excluded) until a model's samples read as digits.

'Digits' = 1,000 samples from fixed noise get mean classifier confidence ≥ 0.90 with all ten classes
present (aigc.metrics.quick_score), checked every 2 s of training. With --strict: 10,000 samples, mean
confidence ≥ 0.90 and the histogram of the digits the classifier reads within KL 0.05 of uniform. Each model trains from scratch with its
recipe on this machine's device (aigc.device.pick_device); at each mark the Fréchet distance (10,000
samples vs the test set, with its ratio to the real-data floor), confidence and coverage are taken.
Scoring pauses the clock: only Trainer.train_seconds counts.

    .venv/bin/python bench/time_to_digits.py --marks 30,60,120            # all models
    .venv/bin/python bench/time_to_digits.py --model cgan --marks 5 --n 1000   # smoke test
    .venv/bin/python bench/time_to_digits.py --model dcgan --model-arg clusters=30   # self-conditioned
    .venv/bin/python bench/time_to_digits.py --model latent_diffusion --base checkpoints/vae2d.pt
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # run as a script from anywhere
from aigc import (LIMITS, MODELS, TrainConfig, Trainer, configure_allocator, configure_threads,  # noqa: E402
                  describe_device, load_mnist, pick_device, read_checkpoint)
from aigc.cli import _model_arg as model_arg  # noqa: E402
from aigc.metrics import classify, evaluate_model, generate, load_classifier, quick_score  # noqa: E402

STRICT_CONFIDENCE, STRICT_KL = 0.90, 0.05


def strict_digits(model) -> tuple[bool, float, float]:
    """The stricter criterion on 10,000 samples: (met, mean confidence, KL(histogram || uniform))."""
    _, probs = classify(generate(model, 10_000, seed=1), load_classifier())
    hist = torch.bincount(probs.argmax(1), minlength=10).double() / len(probs)                      # (10,)
    kl = float((hist[hist > 0] * (hist[hist > 0] * 10).log()).sum())
    confidence = probs.max(1).values.mean().item()
    return confidence >= STRICT_CONFIDENCE and kl <= STRICT_KL, confidence, kl


def digits_now(model, strict: bool) -> tuple[bool, str]:
    if strict:
        ok, confidence, kl = strict_digits(model)
        return ok, f"confidence {confidence:.3f}, KL {kl:.3f}"
    score = quick_score(generate(model, 1000, seed=1))
    return score["digits_ok"], f"confidence {score['confidence']:.3f}"

def bench(name: str, marks: list[float], every: float, data, n_eval: int, overrides: dict | None = None,
          base: dict | None = None, strict: bool = False) -> dict:
    """Trains in slices: raise max_seconds, run() again (it continues where it stopped), score in between,
    so scoring never counts as training time. Checks every `every` training seconds and at each mark.
    Samples are drawn as the live grid draws them (a diffusion model: its few default steps)."""
    trainer = Trainer(TrainConfig.for_model(name, **{"steps": 100_000, **(overrides or {})}), data=data,
                      base=base if MODELS[name][1].base_model else None)
    checks = sorted({round(every * k, 6) for k in range(1, int(marks[-1] / every) + 1)} | set(marks))
    first_ok, scores = None, {}
    for t in checks:
        trainer.config.max_seconds = t
        if trainer.run() != "finished":                 # diverged or failed: report what it got to
            print(f"  {name}: {trainer.status} at step {trainer.step}: {trainer.message}", flush=True)
            break
        if first_ok is None:
            ok, reading = digits_now(trainer.model, strict)
            print(f"  {name} at {trainer.train_seconds:.1f} s (step {trainer.step}): {reading}", flush=True)
            if ok:
                first_ok = (trainer.train_seconds, trainer.step)
                print(f"  {name}: digits after {first_ok[0]:.1f} s of training (step {first_ok[1]})", flush=True)
        if t in marks:
            s = scores[t] = {**evaluate_model(trainer.model, n=n_eval), "step": trainer.step}
            print(f"  {name} at {t:g} s (step {trainer.step}): FD {s['fid']:.1f} ({s['fid_ratio']:.1f}× floor), "
                  f"confidence {s['confidence']:.3f}, {s['coverage']}/10 digits", flush=True)
    return {"first_ok": first_ok, "scores": scores, "steps": trainer.step, "batch_size": trainer.config.batch_size}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", choices=list(MODELS), help="repeatable; default: every model")
    p.add_argument("--marks", default="30,60,120", help="training seconds at which to take the Fréchet distance")
    p.add_argument("--every", type=float, default=2.0, help="training seconds between digit checks")
    p.add_argument("--n", type=int, default=10_000, help="samples for the Fréchet distance at each mark")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override the recipe, e.g. --set batch_size=64 --set lr=1e-3 (repeatable)")
    p.add_argument("--model-arg", action="append", default=[], type=model_arg, metavar="KEY=VALUE",
                   help="model setting, e.g. --model-arg clusters=30 (repeatable)")
    p.add_argument("--strict", action="store_true",
                   help="digits = 10,000 samples, confidence ≥ 0.90, class histogram within KL 0.05 of uniform")
    p.add_argument("--base", default="checkpoints/vae.pt",
                   help="the checkpoint a model with a base (latent_diffusion) is built on")
    args = p.parse_args()
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in LIMITS:
            p.error(f"--set {item}: {key!r} is not a training setting; choose one of {', '.join(LIMITS)}")
        overrides[key] = LIMITS[key][2](value)        # the setting's own type; TrainConfig checks its range
    if args.model_arg:
        overrides["model_args"] = dict(args.model_arg)
    marks = sorted(float(m) for m in args.marks.split(","))
    threads = configure_threads()
    configure_allocator()                             # as the app and the CLI train
    device = pick_device()
    data = load_mnist(train=True, device=device)
    base = read_checkpoint(args.base) if any(MODELS[m][1].base_model for m in args.model or MODELS) else None
    results = {name: bench(name, marks, args.every, data, args.n, overrides, base, args.strict)
               for name in args.model or list(MODELS)}

    floor = next((s["fid_floor"] for r in results.values() for s in r["scores"].values()), float("nan"))
    print(f"\n{describe_device(device)}, {threads} torch threads, torch {torch.__version__}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}. Digits = "
          + ("mean confidence ≥ 0.90 and KL(classes || uniform) ≤ 0.05 in 10,000 samples" if args.strict else
             "mean confidence ≥ 0.90 and all 10 classes in 1,000 samples")
          + f" (checked every {args.every:g} s of training); FD = Fréchet distance of {args.n:,} samples to "
          f"the test set in classifier features, × the real-data floor ({floor:.2f}); cov = digits with ≥ 1% of samples.\n")
    print("| model | batch | seconds to digits (step) | " + " | ".join(f"at {m:g} s: FD (× floor), conf, cov" for m in marks) + " |")
    print("|---" * (3 + len(marks)) + "|")
    for name, r in results.items():
        ttd = f"{r['first_ok'][0]:.0f} ({r['first_ok'][1]})" if r["first_ok"] else f"not within {marks[-1]:g}"
        cells = [f"{s['fid']:.1f} ({s['fid_ratio']:.1f}×), {s['confidence']:.2f}, {s['coverage']}/10"
                 if (s := r["scores"].get(m)) else "–" for m in marks]
        print(f"| {name} | {r['batch_size']} | {ttd} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
