"""The DCGAN pair's CPU path (aigc/models/image_convs.py) against PyTorch's own layers, in a GAN's training step.

Two copies of the same model with the same weights: one as aigc builds it (D's first and G's last layer as
matrix products of patches, channels-last between them), one with those layers swapped for plain
nn.Conv2d / nn.ConvTranspose2d and without G's conversion to channels-last. Each takes its own training steps
on the same batches; alternating rounds of a few seconds, so drift in the machine's load hits both alike. Run
at the recipe's batch with bf16 autocast where the CPU computes bf16 natively, then in float32 (as on a CPU
without it), then a null run: both copies with PyTorch's layers, in float32, whose ratio shows the bench's noise.

    .venv/bin/python bench/image_convs.py --model cgan --seconds 3 --rounds 6
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # run as a script from anywhere
from aigc import (MODELS, TrainConfig, build_model, configure_allocator, configure_threads, describe_device,  # noqa: E402
                  load_mnist)
from aigc.device import autocast, native_bf16  # noqa: E402
from aigc.models.image_convs import ChannelsLast, ImageConv2d, ImageConvTranspose2d  # noqa: E402


def with_pytorch_layers(model: nn.Module) -> nn.Module:
    """The model with its image-end layers replaced by PyTorch's own, holding the same weights, and its
    layout left at PyTorch's default."""
    for module in list(model.modules()):
        for name, child in module.named_children():
            if isinstance(child, ImageConv2d):
                plain = nn.Conv2d(1, child.out_channels, 4, 2, 1, bias=child.bias is not None)
            elif isinstance(child, ImageConvTranspose2d):
                plain = nn.ConvTranspose2d(child.in_channels, 1, 4, 2, 1, bias=child.bias is not None)
            elif isinstance(child, ChannelsLast):
                plain = nn.Identity()
            else:
                continue
            plain.load_state_dict(child.state_dict())
            setattr(module, name, plain)
    return model


def compare(name: str, batch: int, amp: bool, seconds: float, rounds: int, data,
            null: bool = False) -> tuple[float, float, list[float]]:
    recipe = TrainConfig.for_model(name)
    models = {}
    for kind in ("aigc", "pytorch"):
        torch.manual_seed(0)
        model = build_model(name, recipe.model_args).train()
        model.start_training(data)
        if kind == "pytorch" or null:
            with_pytorch_layers(model)
        models[kind] = (model, model.configure_optimizers(recipe.lr, (recipe.beta1, 0.999)))
    context = autocast(torch.device("cpu")) if amp else torch.autocast("cpu", enabled=False)
    batches = torch.Generator().manual_seed(1)

    def images_per_s(kind, limit):
        model, optimizers = models[kind]
        images, start = 0, time.perf_counter()
        while time.perf_counter() - start < limit:
            model.train_step(*data.batch(torch.randint(0, len(data), (batch,), generator=batches)), optimizers, context)
            images += batch
        return images / (time.perf_counter() - start)

    for kind in models:                                  # warm-up: oneDNN's kernels, the allocator
        images_per_s(kind, 1.0)
    results = {kind: [] for kind in models}
    for r in range(rounds):
        for kind in (("aigc", "pytorch") if r % 2 == 0 else ("pytorch", "aigc")):
            results[kind].append(images_per_s(kind, seconds))
    per_round = [ours / theirs for ours, theirs in zip(results["aigc"], results["pytorch"])]
    return statistics.median(results["aigc"]), statistics.median(results["pytorch"]), per_round


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="cgan", choices=[m for m in MODELS if m in ("cgan", "dcgan")])
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per copy per round")
    p.add_argument("--rounds", type=int, default=6)
    args = p.parse_args()
    threads = configure_threads()
    configure_allocator()
    data = load_mnist(train=True)
    recipe = TrainConfig.for_model(args.model)
    print(f"{args.model} on {describe_device(torch.device('cpu'))}, {threads} torch threads, "
          f"{time.strftime('%Y-%m-%d %H:%M')}, {args.rounds} alternating rounds of {args.seconds:g} s")
    print("| setting | PyTorch's layers, images/s | image_convs, images/s | ratio | rounds' ratios |\n"
          "|---|---|---|---|---|")
    batch = recipe.batch_size
    for label, amp, null in ((f"batch {batch}, autocast{' (bf16)' if native_bf16(torch.device('cpu')) else ' (off)'}",
                              True, False),
                             (f"batch {batch}, float32", False, False),
                             (f"batch {batch}, float32, null run (PyTorch's layers in both)", False, True)):
        ours, theirs, per_round = compare(args.model, batch, amp, args.seconds, args.rounds, data, null)
        print(f"| {label} | {theirs:,.0f} | {ours:,.0f} | {ours / theirs:.3f}× | "
              f"{min(per_round):.3f}–{max(per_round):.3f} |", flush=True)


if __name__ == "__main__":
    main()
