#!/usr/bin/env bash
# Trains the shipped checkpoints in checkpoints/ (CPU, 2 cores: about 20 minutes in all).
# Each is an ordinary `python -m aigc train` run; fixed seeds make them repeatable on the same machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
$PY -m aigc train --model vae     --steps 6000  --seed 1 --half --out checkpoints/vae.pt
$PY -m aigc train --model vae     --steps 6000  --seed 1 --half --model-arg latent_dim=2 --out checkpoints/vae2d.pt
$PY -m aigc train --model cgan    --steps 5000  --seed 1 --half --out checkpoints/cgan.pt
$PY -m aigc train --model dcgan   --steps 8000  --seed 1 --half --out checkpoints/dcgan.pt
$PY -m aigc train --model mlp_gan --steps 15000 --seed 1 --half --out checkpoints/mlp_gan.pt
