#!/usr/bin/env bash
# Trains the shipped checkpoints in checkpoints/ (CPU, 2 cores: about four hours in all, most of it the
# diffusion model and the width-64 cgan and dcgan). Each is an ordinary `python -m aigc train` run; fixed seeds make them repeatable
# on the same machine. clusters=50 makes dcgan and mlp_gan self-conditioned (k-means groups, no labels).
# A VAE fits its per-digit prior and decoder sharpness when its run ends, so the files below carry it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
$PY -m aigc train --model vae     --steps 20000 --seed 1 --half --model-arg beta=0.25 --out checkpoints/vae.pt
$PY -m aigc train --model vae     --steps 6000  --seed 1 --half --model-arg latent_dim=2 --out checkpoints/vae2d.pt
$PY -m aigc train --model cgan    --steps 6000  --seed 1 --half --batch-size 128 --lr 5e-4 --model-arg width=64 --model-arg ema_decay=0 --out checkpoints/cgan.pt
$PY -m aigc train --model dcgan   --steps 6000  --seed 1 --half --batch-size 128 --lr 5e-4 --model-arg width=64 --model-arg clusters=50 --model-arg ema_decay=0 --out checkpoints/dcgan.pt
$PY -m aigc train --model mlp_gan --steps 15000 --seed 1 --half --model-arg clusters=50 --out checkpoints/mlp_gan.pt
$PY -m aigc train --init checkpoints/mlp_gan.pt --steps 15000 --seed 2 --half --out checkpoints/mlp_gan.pt   # continued to 30,000
# diffusion: a width-48 U-Net, 15,000 steps of 64 in four runs (each continues the last: 12,000 at lr 2e-3,
# then 3,000 at 5e-4), then 28,000 of 128 (24,000 at lr 1e-3, 4,000 at 2.5e-4); shipped sampling: Heun's
# sampler, 10 steps (19 network runs), guidance 1.1
$PY -m aigc train --model diffusion --steps 4000 --seed 1 --batch-size 64 --lr 2e-3 --sample-every 1000 --model-arg width=48 --out checkpoints/diffusion.pt
$PY -m aigc train --init checkpoints/diffusion.pt --steps 4000 --seed 2 --batch-size 64 --lr 2e-3 --sample-every 1000 --out checkpoints/diffusion.pt
$PY -m aigc train --init checkpoints/diffusion.pt --steps 4000 --seed 3 --batch-size 64 --lr 2e-3 --sample-every 1000 --out checkpoints/diffusion.pt
$PY -m aigc train --init checkpoints/diffusion.pt --steps 3000 --seed 4 --batch-size 64 --lr 5e-4 --sample-every 1000 --half --model-arg guidance=1.25 --model-arg sample_steps=20 --out checkpoints/diffusion.pt
$PY -m aigc train --init checkpoints/diffusion.pt --steps 24000 --seed 5 --batch-size 128 --lr 1e-3 --sample-every 2000 --out checkpoints/diffusion.pt
$PY -m aigc train --init checkpoints/diffusion.pt --steps 4000 --seed 6 --batch-size 128 --lr 2.5e-4 --sample-every 2000 --half --model-arg sampler=heun --model-arg sample_steps=10 --model-arg guidance=1.1 --out checkpoints/diffusion.pt
