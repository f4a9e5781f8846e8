"""Walking the latent space: interpolation and directions that mean something to a person."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .models import GenerativeModel
from .sampling import as_labels, noise


def lerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(d,), (d,), (k,) -> (k, d) points on the straight line."""
    t = t[:, None]
    return (1 - t) * z0 + t * z1


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985; White 2016 for GAN latents): stays at the norm a Gaussian
    sample typically has, where a straight line would cut through the low-density middle."""
    cos = torch.dot(z0 / z0.norm(), z1 / z1.norm()).clamp(-1, 1)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-4:
        return lerp(z0, z1, t)
    t = t[:, None]
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


@torch.no_grad()
def interpolate(model: GenerativeModel, z0, z1, frames: int = 10, mode: str = "slerp", label: int | None = None,
                **options):
    """(frames, 1, 28, 28) images from z0 to z1; `options` go to model.sample (its sampling_settings)."""
    if mode not in ("lerp", "slerp"):
        raise ValueError(f"interpolation mode must be 'lerp' or 'slerp', got {mode!r}")
    t = torch.linspace(0, 1, frames, device=z0.device)
    path = (slerp if mode == "slerp" else lerp)(z0, z1, t)                 # (frames, d)
    return model.sample(path, as_labels(model, frames, label), **options)


# ---- directions ----------------------------------------------------------------------------------

@dataclass
class Direction:
    name: str
    help: str               # what moving the slider does, in the UI's words
    vector: torch.Tensor    # (latent_dim,) unit length


def image_statistics(images: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image measurements a person sees at a glance; images (b, 1, 28, 28) in [-1, 1] -> each (b,)."""
    ink = (images.squeeze(1) + 1) / 2                                       # (b, 28, 28) in [0, 1]
    mass = ink.sum((1, 2)).clamp_min(1e-6)
    coords = torch.arange(28, dtype=ink.dtype, device=ink.device)
    cx = (ink.sum(1) * coords).sum(1) / mass                                # centre of ink
    cy = (ink.sum(2) * coords).sum(1) / mass
    dx = coords[None, None, :] - cx[:, None, None]
    dy = coords[None, :, None] - cy[:, None, None]
    mu02 = (ink * dy ** 2).sum((1, 2)) / mass
    mu11 = (ink * dx * dy).sum((1, 2)) / mass
    mu20 = (ink * dx ** 2).sum((1, 2)) / mass
    return {
        "thickness": mass,                       # total ink
        "slant": -mu11 / mu02.clamp_min(1e-6),   # shear of the ink: > 0 leans right (y grows downwards)
        "width": mu20.sqrt(),                    # horizontal spread
    }


DIRECTION_HELP = {
    "thickness": "Thicker strokes →: more ink in every stroke",
    "slant": "Leans right →: the digit tilts like italics",
    "width": "Wider →: the digit spreads sideways",
}


@torch.no_grad()
def find_directions(model: GenerativeModel, n: int = 2048, seed: int = 0, label: int | None = None) -> list[Direction]:
    """Least-squares fit of each image statistic on z over n random samples; the slope is the direction
    along which that statistic grows fastest on average (a linear probe of G, cf. GANSpace, Härkönen 2020)."""
    was_training = model.training
    model.eval()
    z = noise(model, n, seed)                                                          # (n, d)
    stats = image_statistics(model.sample(z, as_labels(model, n, label)).float())
    model.train(was_training)
    zc = torch.cat([z, torch.ones(n, 1, device=z.device)], 1).float()                 # (n, d + 1) with bias
    directions = []
    for name, s in stats.items():
        coef = torch.linalg.lstsq(zc.cpu(), s.cpu()[:, None]).solution[:-1, 0]         # (d,)
        norm = coef.norm()
        if torch.isfinite(norm) and norm > 0:
            directions.append(Direction(name, DIRECTION_HELP[name], (coef / norm).to(z.device)))
    return directions
