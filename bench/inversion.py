"""GAN inversion and label-free directions, per shipped checkpoint that draws in one pass.

For each: the first N MNIST test digits inverted one by one (aigc.inversion.invert with its defaults
unless given), wall-clock seconds per inversion (median and p95) and the CPU seconds of all threads, the median error per pixel (pixels in
[-1, 1]) of the inversion, of a random z (with the digit's own label for a model that takes a digit; a
self-conditioned GAN's random z picks its group as sampling does) and of invert's best random start, and
the ratio of the first to the other two. For a model that picks a digit, how often invert's digit is the
true one. Then the seconds principal_directions (n=1024, k=5) and axis_directions take.

    .venv/bin/python bench/inversion.py --digits 20 --threads 2
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # run as a script from anywhere
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")   # as app.py sets it, before torch loads OpenMP
import torch  # noqa: E402

from aigc import configure_threads, list_checkpoints, load_checkpoint  # noqa: E402
from aigc.inversion import can_invert, invert, squared_error  # noqa: E402
from aigc.latent import axis_directions, principal_directions  # noqa: E402
from aigc.sampling import test_digits  # noqa: E402


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def timed(function, *args, **kwargs):
    """function's result, its wall-clock seconds and the CPU seconds of this process meanwhile (all threads)."""
    start, cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start, time.process_time() - cpu


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--digits", type=int, default=20, help="MNIST test digits inverted per checkpoint")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    p.add_argument("--steps", type=int, default=None, help="invert's steps (default: its own)")
    p.add_argument("--starts", type=int, default=None, help="invert's starts (default: its own)")
    args = p.parse_args()
    configure_threads(args.threads)
    options = {key: value for key, value in (("steps", args.steps), ("starts", args.starts)) if value is not None}
    images, digits = test_digits(torch.arange(args.digits))

    print("| checkpoint | s per inversion p50 / p95 | CPU s p50 / p95 | error p50 | random z p50 | best random start p50 "
          "| error / random z | error / best start | right digit | principal_directions s | axis_directions s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, path in list_checkpoints().items():
        model, _ = load_checkpoint(path)
        if not can_invert(model):
            continue
        invert(model, images[:1], steps=5)                      # warm-up: first calls allocate
        seconds, cpu_seconds, found = [], [], []
        for image in images.split(1):
            inversion, elapsed, cpu = timed(invert, model, image, **options)
            seconds.append(elapsed)
            cpu_seconds.append(cpu)
            found.append(inversion)
        with torch.no_grad():
            z = model.make_noise(args.digits, generator=torch.Generator().manual_seed(1))
            drawn = model.sample(z, digits if model.conditional else None)
            random_errors = [squared_error(image, target).item() for image, target in zip(drawn.split(1), images.split(1))]
        error = statistics.median(f.error for f in found)
        random_error = statistics.median(random_errors)
        start_error = statistics.median(f.start_error for f in found)
        right = (f"{sum(int(f.labels) == int(d) for f, d in zip(found, digits))}/{args.digits}"
                 if model.conditional else "–")
        _, principal_seconds, _ = timed(principal_directions, model, n=1024, k=5)
        axes, axis_seconds, _ = timed(axis_directions, model)
        print(f"| {name} | {statistics.median(seconds):.2f} / {pct(seconds, 0.95):.2f} | "
              f"{statistics.median(cpu_seconds):.2f} / {pct(cpu_seconds, 0.95):.2f} | {error:.4f} | "
              f"{random_error:.4f} | {start_error:.4f} | {error / random_error:.3f} | {error / start_error:.3f} | "
              f"{right} | {principal_seconds:.2f} | {f'{axis_seconds:.2f}' if axes else '–'} |")
    print(f"\n{os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}, {time.strftime('%Y-%m-%d')}")


if __name__ == "__main__":
    main()
