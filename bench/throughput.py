"""Throughput: aigc's trainer against a textbook training loop for the same model, side by side.

Textbook loop = what most tutorials write: torchvision MNIST with ToTensor + Normalize, a torch
DataLoader (batch 64, shuffled, the default num_workers=0), fp32, Adam lr 2e-4 betas (0.5, 0.999),
and the two-phase GAN step (or the plain VAE step) written inline, no weight averaging, the model built
with PyTorch's own layers in PyTorch's default layout (the convolutional GANs' image-end layers swapped back
to nn.Conv2d / nn.ConvTranspose2d, as bench/image_convs.py does: the same weights). aigc = Trainer
with the model's recipe (whole dataset as one tensor on the device, its own batch size, bf16 autocast
where the device computes in bf16 natively: CUDA, AVX-512 BF16 or AMX CPUs), paying for what the app needs on top: G's moving average and a sample grid every 25 steps.
Both train a fresh copy of the same architecture, in the same process, after a warm-up, alternating
rounds so drift in the machine's load hits both alike. Device: aigc.device.pick_device (CUDA if any).
The process runs with aigc's allocator settings (configure_allocator, as the app and the CLI train): they
are process-wide, so the textbook loop has them too, and this ratio leaves out what they gain aigc
(bench/allocator.py measures that).

    .venv/bin/python bench/throughput.py --model dcgan --seconds 6 --rounds 3     # the default
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # run as a script from anywhere
sys.path.insert(0, str(Path(__file__).resolve().parent))
from aigc import (MODELS, TrainConfig, Trainer, build_model, configure_allocator, configure_threads, describe_device,
                  load_mnist, pick_device)
from aigc.data import _torchvision_root, data_root
from image_convs import with_pytorch_layers                        # bench/image_convs.py


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def textbook_images_per_s(name: str, device: torch.device, seconds: float, warmup_steps: int = 5) -> float:
    from torchvision import datasets, transforms

    dataset = datasets.MNIST(str(_torchvision_root(data_root())), train=True, download=True,
                             transform=transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))]))
    loader = torch.utils.data.DataLoader(dataset, batch_size=64, shuffle=True)
    model = with_pytorch_layers(build_model(name, {"ema_decay": 0.0} if name != "vae" else {})).to(device).train()
    if name == "vae":
        opt = torch.optim.Adam(model.parameters(), lr=2e-4, betas=(0.5, 0.999))
    else:
        opt_g = torch.optim.Adam(model.generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999))
    images, steps, start = 0, 0, None
    while True:
        for x, y in loader:
            if steps == warmup_steps:
                sync(device)
                start, images = time.perf_counter(), 0
            x, y = x.to(device), y.to(device)
            b = x.size(0)
            labels = y if model.conditional else None
            if name == "vae":
                mu, logvar = model.encode(x)
                z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
                recon = F.binary_cross_entropy_with_logits(model.decode_logits(z), (x + 1) / 2, reduction="sum") / b
                kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum() / b
                opt.zero_grad()
                (recon + kl).backward()
                opt.step()
            else:
                # (1) Update D: maximize log(D(x)) + log(1 - D(G(z)))
                z = torch.randn(b, model.latent_dim, device=device)
                fake = model.generate(model.generator, z, labels)
                loss_d = (F.binary_cross_entropy_with_logits(model.discriminate(x, labels), torch.ones(b, device=device))
                          + F.binary_cross_entropy_with_logits(model.discriminate(fake.detach(), labels),
                                                               torch.zeros(b, device=device)))
                opt_d.zero_grad()
                loss_d.backward()
                opt_d.step()
                # (2) Update G: maximize log(D(G(z)))
                loss_g = F.binary_cross_entropy_with_logits(model.discriminate(fake, labels), torch.ones(b, device=device))
                opt_g.zero_grad()
                loss_g.backward()
                opt_g.step()
                loss_g.item()                  # tutorials log every step, which syncs the device
            images += b
            steps += 1
            if start is not None and time.perf_counter() - start >= seconds:
                sync(device)                   # kernels still queued belong to the timed steps
                return images / (time.perf_counter() - start)


def aigc_images_per_s(name: str, device: torch.device, seconds: float, data, batch_size: int | None = None) -> float:
    config = TrainConfig.for_model(name, device=str(device), steps=100_000, max_seconds=seconds,
                                   **({"batch_size": batch_size} if batch_size else {}))
    warm = Trainer(TrainConfig.for_model(name, device=str(device), steps=5), data=data)
    warm.run()                                                  # warm-up: allocator, cuDNN autotune
    trainer = Trainer(config, data=data)
    trainer.run()                   # train_seconds is read after a .item() on the losses: synchronised
    if trainer.status != "finished":
        raise RuntimeError(f"aigc trainer ended {trainer.status}: {trainer.message}")
    return (trainer.step * config.batch_size) / trainer.train_seconds


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="dcgan", choices=list(MODELS))
    p.add_argument("--seconds", type=float, default=6.0, help="timed seconds per loop per round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--device", default="auto")
    p.add_argument("--batch-size", type=int, help="aigc's batch instead of the recipe's (the textbook's is 64)")
    args = p.parse_args()
    threads = configure_threads()
    configure_allocator()
    device = pick_device(args.device)
    data = load_mnist(train=True, device=device)
    ours, theirs = [], []
    for r in range(args.rounds):
        theirs.append(textbook_images_per_s(args.model, device, args.seconds))
        ours.append(aigc_images_per_s(args.model, device, args.seconds, data, args.batch_size))
        print(f"round {r + 1}: textbook {theirs[-1]:,.0f} img/s   aigc {ours[-1]:,.0f} img/s")
    a, t = statistics.median(ours), statistics.median(theirs)
    recipe = TrainConfig.for_model(args.model, device=str(device))
    print(f"\n{args.model} on {describe_device(device)}, {threads} torch threads, torch {torch.__version__}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    print(f"| loop | batch | images/s (median of {args.rounds}) |\n|---|---|---|")
    print(f"| textbook (DataLoader, fp32) | 64 | {t:,.0f} |")
    print(f"| aigc Trainer | {args.batch_size or recipe.batch_size} | {a:,.0f} |")
    paired = [ours_r / theirs_r for ours_r, theirs_r in zip(ours, theirs)]        # each round's pair: drift cancels
    print(f"ratio aigc / textbook: {a / t:.2f}×; each round's: median {statistics.median(paired):.2f}×, "
          f"{min(paired):.2f}–{max(paired):.2f}")


if __name__ == "__main__":
    main()
