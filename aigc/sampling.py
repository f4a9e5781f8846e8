"""Seeded sampling in one place: the noise a seed gives, samples and grids drawn from it, one sample per
group of a self-conditioned GAN, and test digits encoded into a latent space.

A seed gives the same z on any device: the noise is drawn on the CPU and then moved (make_noise).
"""
from __future__ import annotations

import numpy as np
import torch

from .data import load_mnist
from .images import grid
from .models import GenerativeModel


def noise(model: GenerativeModel, n: int, seed: int) -> torch.Tensor:
    """(n, latent_dim) standard normal noise from `seed`, on the model's device."""
    return model.make_noise(n, generator=torch.Generator().manual_seed(int(seed)))


def as_labels(model: GenerativeModel, n: int, labels: int | torch.Tensor | None) -> torch.Tensor | None:
    """What sample() takes for n images: a tensor (n,) as given, or one int repeated. Without a choice, a
    conditional model draws 0, 1, 2, ... (default_labels) and a self-conditioned GAN lets z pick the
    group (None); so does a model that takes no labels."""
    if labels is None or not model.label_count:
        return model.default_labels(n) if model.conditional else None
    if isinstance(labels, int):
        return torch.full((n,), labels, device=model.device)
    return labels.to(model.device)


@torch.no_grad()
def samples(model: GenerativeModel, seed: int, n: int, labels: int | torch.Tensor | None = None,
            **options) -> torch.Tensor:
    """n images (n, 1, 28, 28) in [-1, 1] drawn from `seed`'s noise; `options` go to model.sample."""
    return model.sample(noise(model, n, seed), as_labels(model, n, labels), **options)


def sample_grid(model: GenerativeModel, seed: int, n: int = 64, nrow: int = 8, scale: int = 3,
                labels: int | torch.Tensor | None = None, **options) -> np.ndarray:
    """samples() as one uint8 mosaic, `nrow` images a row, each pixel `scale`×`scale`."""
    return grid(samples(model, seed, n, labels, **options), nrow=nrow, scale=scale)


def group_strip(model: GenerativeModel, seed: int = 0) -> np.ndarray:
    """One sample from each of a self-conditioned GAN's k groups, 0 to k-1, in rows of up to 25."""
    k = model.label_count
    return sample_grid(model, seed, n=k, nrow=min(k, 25), scale=2, labels=torch.arange(k))


def test_digits(index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST test digits by index: images (n, 1, 28, 28) in [-1, 1] and labels (n,)."""
    return load_mnist(train=False).batch(index)


@torch.no_grad()
def encode_test_digits(model: GenerativeModel, n: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Where the encoder puts the first n test digits, the means of q(z|x) (n, latent_dim), and which
    digit each is (n,)."""
    x, y = test_digits(torch.arange(n))
    mu, _ = model.encode(x.to(model.device))
    return mu.cpu().numpy(), y.numpy()
