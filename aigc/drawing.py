"""A person's drawing made into an MNIST digit, and what the lab reads from it: the classifier's
probabilities, the nearest training digits, and each model's own redrawing of it (Redraw).

MNIST's own preprocessing (LeCun et al. 1998, the dataset's page): each digit's bounding box was scaled
to fit a 20×20 box, keeping its aspect ratio, with anti-aliasing, and placed in a 28×28 field with its
centre of mass at the centre. On the training set that centre is (14.0, 14.0) in pixel indices, with a
spread of 0.3 px, and 90% of the digits are exactly 20 pixels tall.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from .data import load_mnist
from .inversion import invert, squared_error
from .latent import interpolate, lerp
from .metrics import classify, load_classifier
from .models import GenerativeModel, Redraw
from .models.declarations import Trajectory
from .sampling import noise, samples

INK = 0.05              # a pixel with more ink than this (of 1) belongs to the digit's bounding box
BOX = 20                # the longer side of the box a digit is scaled to
SIZE = 28
CENTRE = 14.0           # where MNIST's centres of mass sit, in pixel indices (y and x)


def canvas_ink(rgba: np.ndarray) -> np.ndarray:
    """A canvas's pixels (H, W, 4) uint8, light strokes on a dark or transparent background -> ink (H, W)
    in [0, 1]: the strokes' brightness, weighted by their opacity."""
    rgba = np.asarray(rgba, dtype=np.float32) / 255
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(f"a canvas image is (height, width, 4) RGBA, got shape {rgba.shape}")
    return (rgba[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)) * rgba[..., 3]


def mnist_like(ink: np.ndarray) -> torch.Tensor | None:
    """Ink (H, W) in [0, 1], drawn at any size and anywhere -> one digit (1, 1, 28, 28) in [-1, 1] prepared
    as MNIST's were: bounding box scaled to fit 20×20 (aspect kept, anti-aliased), centre of mass moved to
    the centre of the 28×28 field. None when nothing is drawn."""
    ink = np.clip(np.asarray(ink, dtype=np.float32), 0, 1)
    rows, cols = np.nonzero(ink > INK)
    if rows.size == 0:
        return None
    crop = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1]                  # (h, w)
    scale = BOX / max(crop.shape)
    size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))   # PIL: (w, h)
    small = Image.fromarray(crop).resize(size, Image.Resampling.BILINEAR, reducing_gap=None)   # (≤ 20, ≤ 20)
    pixels = np.asarray(small, dtype=np.float32)
    mass = pixels.sum()
    cy = (pixels.sum(1) * np.arange(pixels.shape[0])).sum() / mass
    cx = (pixels.sum(0) * np.arange(pixels.shape[1])).sum() / mass
    # output pixel (x, y) reads input (x - (CENTRE - cx), y - (CENTRE - cy)): a shift by a fraction of a pixel
    shift = (1, 0, cx - CENTRE, 0, 1, cy - CENTRE)
    field = small.transform((SIZE, SIZE), Image.Transform.AFFINE, shift, resample=Image.Resampling.BILINEAR)
    digit = torch.from_numpy(np.clip(np.asarray(field, dtype=np.float32), 0, 1))      # (28, 28)
    return (digit * 2 - 1)[None, None]


def classifier_reading(x: torch.Tensor) -> np.ndarray:
    """The metrics classifier's probabilities for the ten digits (10,) of one image (1, 1, 28, 28)."""
    return classify(x, load_classifier())[1][0].numpy()


@dataclass(frozen=True)
class Neighbours:
    """The training digits closest to an image, nearest first."""
    images: torch.Tensor     # (k, 1, 28, 28) in [-1, 1]
    labels: np.ndarray       # (k,) what digit each is
    indices: np.ndarray      # (k,) its index in MNIST's training set
    distances: np.ndarray    # (k,) L2 distance in pixels in [-1, 1]


@functools.lru_cache(maxsize=1)
def _training_pixels() -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST's training images flattened (60000, 784) in [-1, 1], in bfloat16 (94 MB, where float32 would
    take 188 MB, at little more time), and their squared norms (60000,): made once."""
    flat = load_mnist(train=True).images.flatten(1).float().div_(127.5).sub_(1.0)
    return flat.bfloat16(), flat.pow(2).sum(1)


@torch.no_grad()
def nearest_training_digits(x: torch.Tensor, k: int = 3, shortlist: int = 64) -> Neighbours:
    """The k training digits nearest to one image (1, 1, 28, 28) in [-1, 1], by L2 distance in pixels:
    is what a model drew a copy of something it saw? A bfloat16 pass picks a shortlist, which is then
    measured exactly in float32."""
    flat, norms = _training_pixels()
    query = x.detach().float().cpu().reshape(-1)                                      # (784,)
    rough = norms - 2 * (flat @ query.bfloat16()).float()                             # (60000,) up to |x|²
    candidates = rough.topk(shortlist, largest=False).indices                         # (shortlist,)
    images, labels = load_mnist(train=True).batch(candidates)                          # (shortlist, 1, 28, 28)
    exact = (images.flatten(1) - query).pow(2).sum(1)                                 # (shortlist,)
    order = exact.argsort()[:k]
    return Neighbours(images[order], labels[order].numpy(), candidates[order].numpy(), exact[order].sqrt().numpy())


# ---- what a model makes of a drawing (its Redraw) ------------------------------------------------------
@dataclass(frozen=True)
class Redrawing:
    """A model's own version of a digit it was shown."""
    image: torch.Tensor                 # (1, 1, 28, 28) in [-1, 1]
    error: float                        # mean squared error against the digit, per pixel in [-1, 1]
    code: torch.Tensor | None = None    # (1, d): a VAE's code for it (ENCODE), the z found for it (INVERT)
    labels: torch.Tensor | None = None  # (1,) the digit or group it is drawn with, where the model takes one
    path: Trajectory | None = None      # EDIT: the way back from the noised digit, x_t and x̂₀ at every step
    start_error: float | None = None    # INVERT: the error of the best random z, before the search


def edit_options(options: dict) -> dict:
    """The sampling settings edit() takes (steps, guidance) of all a model offers; the drawing is always
    denoised along the deterministic path."""
    return {k: v for k, v in options.items() if k in ("steps", "guidance")}


@torch.no_grad()
def redraw(model: GenerativeModel, digit: torch.Tensor, label: int | None = None, strength: float = 0.5,
           progress=None, **options) -> Redrawing:
    """What `model` makes of `digit` (1, 1, 28, 28) in [-1, 1], as its `redraw` says: encoded and decoded
    (ENCODE), the closest sample found by optimisation (INVERT; `progress(fraction)` is told how far it is),
    or noised to `strength` and denoised (EDIT). `label` is the digit to draw where the model takes one
    (by default the one it finds or 0); `options` are the model's sampling settings."""
    digit = digit.to(model.device)
    labels = None if label is None or not model.label_count else torch.tensor([label], device=model.device)
    if model.redraw is Redraw.ENCODE:
        code = model.encode(digit)[0]                                                    # (1, d)
        image = model.decode(code)
        return Redrawing(image, squared_error(image, digit).item(), code=code)
    if model.redraw is Redraw.EDIT:
        if labels is None and model.conditional:
            labels = torch.zeros(1, dtype=torch.long, device=model.device)
        path = model.edit(digit, labels, strength, **edit_options(options))
        image = path.images[-1]
        return Redrawing(image, squared_error(image, digit).item(), labels=labels, path=path)
    with torch.enable_grad():
        found = invert(model, digit, label=label, progress=progress)
    return Redrawing(found.image, found.error, code=found.z, labels=found.labels, start_error=found.start_error)


@torch.no_grad()
def morph_from(model: GenerativeModel, digit: torch.Tensor, redrawing: Redrawing, seed: int, frames: int = 10,
               label: int | None = None, **options) -> torch.Tensor:
    """(frames, 1, 28, 28) from the model's redrawing of `digit` to its sample from `seed` (of `label`, where
    it takes one): along the line between their codes (ENCODE: the code of that sample, as the encoder
    reads it), along the sphere from the z found to the seed's z (INVERT), or, for a model that samples by
    denoising (EDIT), the digit noised with the seed's noise to ever larger strengths and denoised: at
    strength 1 nothing of the drawing is left and the frame is the seed's own sample."""
    if model.redraw is Redraw.ENCODE:
        target = model.encode(samples(model, seed, 1, label, **options))[0]             # (1, d)
        return model.decode(lerp(redrawing.code[0], target[0], torch.linspace(0, 1, frames)))
    if model.redraw is Redraw.INVERT:
        return interpolate(model, redrawing.code[0], noise(model, 1, seed)[0], frames=frames,
                           label=None if redrawing.labels is None else int(redrawing.labels[0]), **options)
    strip = [model.edit(digit.to(model.device), redrawing.labels, float(s), noise(model, 1, seed),
                        **edit_options(options)).images[-1] for s in torch.linspace(0, 1, frames)[1:].clamp_min(0.05)]
    return torch.cat([digit.to(model.device), *strip])


def map_plane(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where to look at a latent space of any size on a 2-D map: its mean (d,) and a basis (d, 2), the
    latent axes themselves for d = 2, else the two principal axes of `codes` (n, d)."""
    codes = np.asarray(codes, dtype=np.float64)
    if codes.shape[1] == 2:
        return np.zeros(2), np.eye(2)
    mean = codes.mean(0)
    return mean, np.linalg.svd(codes - mean, full_matrices=False)[2][:2].T
