"""bf16 autocast against fp32 on this CPU: each model's own training step at its recipe's batch size,
alternating fp32, bf16, fp32 in one process (the fp32 figure is the mean of the two around bf16).

aigc.device.autocast turns bf16 on where the device computes it natively (CUDA; CPUs with AVX-512 BF16
or AMX). This says what that buys on the machine at hand; on a CPU without them it says bf16 is emulated.

    .venv/bin/python bench/bf16.py --seconds 4
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # run as a script from anywhere
from aigc import MODELS, TrainConfig, build_model, configure_threads, describe_device, load_mnist  # noqa: E402
from aigc.device import native_bf16  # noqa: E402


def images_per_s(name: str, data, bf16: bool, seconds: float) -> float:
    torch.manual_seed(0)
    recipe = TrainConfig.for_model(name)
    model = build_model(name, recipe.model_args)
    model.start_training(data)
    optimizers = model.configure_optimizers(recipe.lr, (recipe.beta1, 0.999))
    amp = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
    generator = torch.Generator().manual_seed(0)

    def step():
        x, y = data.batch(torch.randint(len(data), (recipe.batch_size,), generator=generator))
        model.train_step(x, y, optimizers, amp)

    for _ in range(3):                                    # warm-up: oneDNN picks its kernels
        step()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        steps += 1
    return steps * recipe.batch_size / (time.perf_counter() - start)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=4.0)
    args = p.parse_args()
    configure_threads()
    device = torch.device("cpu")
    data = load_mnist(train=True)
    print(f"{describe_device(device)}; native bf16: {native_bf16(device)}; {time.strftime('%Y-%m-%d %H:%M')}")
    print("| model | batch | fp32 images/s | bf16 images/s | bf16 / fp32 |\n|---|---|---|---|---|")
    for name in MODELS:
        if MODELS[name][1].base_model:                    # latent diffusion needs a trained VAE under it
            continue
        before = images_per_s(name, data, False, args.seconds)
        bf16 = images_per_s(name, data, True, args.seconds)
        after = images_per_s(name, data, False, args.seconds)
        fp32 = (before + after) / 2
        print(f"| {name} | {TrainConfig.for_model(name).batch_size} | {fp32:,.0f} | {bf16:,.0f} | {bf16 / fp32:.2f}× |",
              flush=True)


if __name__ == "__main__":
    main()
