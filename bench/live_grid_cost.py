"""What the Train page's live grid costs the training, per model, with its recipe.

Every `sample_every` steps the trainer draws the grid (64 samples from fixed noise; a diffusion model
with its few `sample_steps`). Side by side in one process, alternating rounds: the time of one grid
(Trainer.sample_fixed) and the time of `sample_every` training steps (the model's train_step on
random batches). The share is grid / (steps + grid).

    .venv/bin/python bench/live_grid_cost.py --model diffusion --model dcgan
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # run as a script from anywhere
from aigc import MODELS, TrainConfig, Trainer, configure_threads, describe_device, load_mnist, pick_device  # noqa: E402
from aigc import read_checkpoint  # noqa: E402
from aigc.device import autocast  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", choices=list(MODELS), help="repeatable; default: every model")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--base", default="checkpoints/vae.pt", help="the VAE a latent diffusion model is built on")
    args = p.parse_args()
    threads = configure_threads()
    device = pick_device()
    data = load_mnist(train=True, device=device)
    print("| model | grid every | one grid ms (median) | that many steps ms (median) | grid's share |\n|---|---|---|---|---|")
    for name in args.model or list(MODELS):
        recipe = TrainConfig.for_model(name, device=str(device))
        every = recipe.sample_every
        base = read_checkpoint(args.base) if MODELS[name][1].base_model else None
        trainer = Trainer(recipe, data=data, base=base)
        trainer.model.start_training(data)
        amp = autocast(device)
        grid_ms, steps_ms = [], []
        for _ in range(args.rounds):
            started = time.perf_counter()
            for _ in range(every):
                x, y = data.batch(torch.randint(len(data), (recipe.batch_size,), device=device))
                metrics = trainer.model.train_step(x, y, trainer.optimizers, amp)
            float(metrics["loss"] if "loss" in metrics else next(iter(metrics.values())))   # waits for the device
            steps_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            trainer.sample_fixed()
            grid_ms.append((time.perf_counter() - started) * 1000)
        g, s = statistics.median(grid_ms), statistics.median(steps_ms)
        print(f"| {name} | {every} steps | {g:,.0f} | {s:,.0f} | {g / (g + s):.1%} |")
    print(f"\n{describe_device(device)}, {threads} torch threads, {time.strftime('%Y-%m-%d %H:%M')}")


if __name__ == "__main__":
    main()
