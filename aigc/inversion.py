"""GAN inversion: the latent vector whose image best redraws a given digit, found by optimisation.

Zhu et al. 2016 ("Generative Visual Manipulation on the Natural Image Manifold") and Creswell & Bharath 2016
("Inverting the Generator of a Generative Adversarial Network") project an image onto what a generator can
draw by gradient descent of the reconstruction error on z, from several random starts. Here:

- a pool of random z (POOL_PER_START per start) is scored without gradients and the `starts` best of them
  are optimised together, as one batch, with Adam on z alone and a cosine-decayed step size;
- after each step every z is put back into the shell where nearly all of N(0, I) lies (|z| within
  √d ± 3/√2, the chi distribution's mean ± 3 sd), so the result is a z a seed could have given and sliders
  or a morph from it behave as from any other (the typical set slerp keeps to, White 2016);
- a model that draws a chosen digit (the conditional GAN, a VAE with its fitted prior) tries, without a
  label given, the classifier's LABELS_TRIED likeliest readings of the target (all ten without the
  classifier); a self-conditioned GAN tries the LABELS_TRIED groups whose k-means centres are nearest it.

The model's weights are only read: gradients are taken with torch.autograd.grad with respect to z alone,
so no parameter's .grad or requires_grad changes, and the work of the weights' gradients is skipped.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .latent import eval_mode, optional_classifier
from .metrics import classify
from .models import GenerativeModel, Section, check_range

POOL_PER_START = 16        # random z scored for each one optimised
LABELS_TRIED = 3           # digits or groups tried when none is given
LEARNING_RATE = 0.2        # Adam's first step size on z ~ N(0, I); decays to 0 along a cosine
MAX_STEPS = 2000
MAX_STARTS = 64


@dataclass
class Inversion:
    z: torch.Tensor                 # (1, latent_dim) the best latent vector found
    labels: torch.Tensor | None     # (1,) the digit (conditional) or group (self-conditioned GAN) it draws with
    image: torch.Tensor             # (1, 1, 28, 28) in [-1, 1]: model.sample(z, labels) in eval mode
    error: float                    # mean squared error per pixel against the target, pixels in [-1, 1]
    start_error: float              # the same for the best random start, before optimisation


def can_invert(model: GenerativeModel) -> bool:
    """Whether invert() suits the model: it must draw in one differentiable pass. A model that samples
    step by step (diffusion) would need a backward pass through every step for each of invert's steps."""
    return Section.TRAJECTORY not in model.explore_sections


def invert(model: GenerativeModel, target: torch.Tensor, label: int | None = None, steps: int = 200,
           starts: int = 8, seed: int = 0, progress: Callable[[float], None] | None = None) -> Inversion:
    """The z (and digit or group) whose image is closest to `target` (1, 1, 28, 28) in [-1, 1] in mean
    squared error. `label` fixes the digit of a conditional model or the group of a self-conditioned GAN;
    None lets invert choose. progress(fraction done) is called every tenth of the steps, last with 1.0.
    The model is in eval mode meanwhile (GANs: the averaged generator) and its mode is restored."""
    if not can_invert(model):
        raise ValueError(f"{model.name} draws step by step; inversion needs a model that draws in one pass")
    if not isinstance(target, torch.Tensor) or tuple(target.shape) != (1, 1, 28, 28):
        shape = tuple(target.shape) if isinstance(target, torch.Tensor) else type(target).__name__
        raise ValueError(f"target must be a tensor of shape (1, 1, 28, 28), got {shape}")
    if not torch.isfinite(target).all() or target.min() < -1.001 or target.max() > 1.001:
        raise ValueError("target's pixels must be finite numbers in [-1, 1]")
    check_range("steps", steps, 1, MAX_STEPS)
    check_range("starts", starts, 1, MAX_STARTS)
    if label is not None:
        if not model.label_count:
            raise ValueError(f"{model.name} draws without a digit or group: label must be None, got {label!r}")
        check_range("label", label, 0, model.label_count - 1)
        label = int(label)

    with eval_mode(model):
        return _invert(model, target.detach().float().to(model.device), label, steps, starts, seed, progress)


def _invert(model, target, label, steps, starts, seed, progress) -> Inversion:
    pool = POOL_PER_START * starts
    z = model.make_noise(pool, generator=torch.Generator().manual_seed(int(seed)))       # (pool, d)
    tried = labels_to_try(model, target, label)                                           # (t,) or None
    labels = tried[torch.arange(pool, device=z.device) % len(tried)] if tried is not None else None
    with torch.no_grad():
        errors = squared_error(model.sample(z, labels), target)                           # (pool,)
    best = errors.topk(starts, largest=False).indices
    start_error = errors[best[0]].item()
    first = z[best]                                                                       # (starts, d)
    labels = labels[best] if labels is not None else None
    z = first.clone().requires_grad_(True)

    d = model.latent_dim
    low, high = max(0.0, math.sqrt(d) - 3 / math.sqrt(2)), math.sqrt(d) + 3 / math.sqrt(2)
    optimizer = torch.optim.Adam([z], lr=LEARNING_RATE)
    report_every = max(1, steps // 10)
    for step in range(steps):
        optimizer.param_groups[0]["lr"] = LEARNING_RATE * 0.5 * (1 + math.cos(math.pi * step / steps))
        # the starts are independent, so the sum's gradient is each start's own
        loss = squared_error(model.sample(z, labels), target).sum()
        z.grad, = torch.autograd.grad(loss, z)
        optimizer.step()
        with torch.no_grad():
            norm = z.norm(dim=1, keepdim=True)                                            # (starts, 1)
            z.mul_(norm.clamp(low, high) / norm.clamp_min(1e-12))
        if progress is not None and ((step + 1) % report_every == 0 or step + 1 == steps):
            progress((step + 1) / steps)

    # the starts themselves compete too, so the result is never worse than the best of them
    z = torch.cat([z.detach(), first])                                                    # (2 starts, d)
    labels = labels.repeat(2) if labels is not None else None
    with torch.no_grad():
        images = model.sample(z, labels)                                                  # (2 starts, 1, 28, 28)
        errors = squared_error(images, target)
    i = int(errors.argmin())
    return Inversion(z=z[i:i + 1], labels=labels[i:i + 1] if labels is not None else None,
                     image=images[i:i + 1], error=errors[i].item(), start_error=start_error)


def squared_error(images: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """images (b, 1, 28, 28), target (1, 1, 28, 28) -> mean squared error per pixel of each image (b,)."""
    return (images.float() - target).pow(2).flatten(1).mean(1)


@torch.no_grad()
def labels_to_try(model: GenerativeModel, target: torch.Tensor, label: int | None) -> torch.Tensor | None:
    """The labels sample() is tried with for `target` (t,), or None for a model that takes none."""
    if not model.label_count:
        return None
    if label is not None:
        return torch.tensor([label], device=model.device)
    every = torch.arange(model.label_count, device=model.device)
    if getattr(model, "clusters", 0) and not model.conditional:
        if not model.clusters_fitted:       # centres still zero: no group is nearer than another
            return every
        centres = model.cluster_centres                                                   # (k, 784)
        distance = (centres - target.flatten(1)).pow(2).sum(1)                            # (k,)
        return distance.topk(min(LABELS_TRIED, len(centres)), largest=False).indices
    classifier = optional_classifier(model)
    if classifier is None:
        return every
    _, probabilities = classify(target, classifier)                                       # (1, 10)
    return probabilities[0].topk(LABELS_TRIED).indices.to(model.device)
