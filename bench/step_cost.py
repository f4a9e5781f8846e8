"""Where a training step's time goes: a model's own train_step (its recipe, bf16 autocast where the CPU has it)
timed at several batch sizes, with every core and with one, in alternating rounds in one process. A straight
line through ms per step against the batch splits it into a part that every step pays whatever its batch
(each operation's dispatch, the kernels' own set-up) and a cost per image. If the batch-independent part
stays the same with one thread, it is not the threads' hand-off.

    .venv/bin/python bench/step_cost.py --model cgan --rounds 4
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # run as a script from anywhere
from aigc import MODELS, TrainConfig, build_model, configure_threads, describe_device, load_mnist  # noqa: E402
from aigc.device import autocast  # noqa: E402


def ms_per_step(step, batch_size: int, seconds: float) -> float:
    for _ in range(5):                                    # warm-up: oneDNN picks its kernels for this shape
        step(batch_size)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step(batch_size)
        steps += 1
    return (time.perf_counter() - start) / steps * 1000


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="cgan", choices=[n for n in MODELS if not MODELS[n][1].base_model])
    p.add_argument("--batches", default="2,32,64,128", help="comma-separated batch sizes")
    p.add_argument("--seconds", type=float, default=1.5, help="timed seconds per batch size per round")
    p.add_argument("--rounds", type=int, default=4)
    args = p.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    cores = configure_threads()
    device = torch.device("cpu")
    data = load_mnist(train=True)
    torch.manual_seed(0)
    recipe = TrainConfig.for_model(args.model)
    model = build_model(args.model, recipe.model_args)
    model.start_training(data)
    optimizers = model.configure_optimizers(recipe.lr, (recipe.beta1, 0.999))
    amp = autocast(device)
    generator = torch.Generator().manual_seed(0)

    def step(batch_size):
        x, y = data.batch(torch.randint(len(data), (batch_size,), generator=generator))
        model.train_step(x, y, optimizers, amp)

    heading = (f"{args.model} on {describe_device(device)}, torch {torch.__version__}, "
               f"{time.strftime('%Y-%m-%d %H:%M')}; ms per step, median of {args.rounds} rounds")
    thread_counts = sorted({cores, 1}, reverse=True)
    times = {(t, b): [] for t in thread_counts for b in batches}
    for _ in range(args.rounds):
        for threads in thread_counts:
            torch.set_num_threads(threads)
            for b in batches:
                times[threads, b].append(ms_per_step(step, b, args.seconds))
    print(heading)
    print("| threads | " + " | ".join(f"batch {b}" for b in batches) + " | every step (fit) | per image (fit) |")
    print("|---" * (len(batches) + 3) + "|")
    for threads in thread_counts:
        ms = [statistics.median(times[threads, b]) for b in batches]
        per_image, fixed = statistics.linear_regression(batches, ms)     # least squares: fixed + per_image · batch
        print(f"| {threads} | " + " | ".join(f"{m:.2f}" for m in ms) + f" | {fixed:.2f} ms | {per_image:.3f} ms |")


if __name__ == "__main__":
    main()
