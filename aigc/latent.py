"""Walking the latent space: interpolation and directions that mean something to a person."""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

import torch

from .checkpoint import CheckpointError
from .metrics import MNISTClassifier, classify, load_classifier
from .models import GenerativeModel, check_range
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
    with eval_mode(model):
        z = noise(model, n, seed)                                                      # (n, d)
        stats = image_statistics(model.sample(z, as_labels(model, n, label)).float())
    zc = torch.cat([z, torch.ones(n, 1, device=z.device)], 1).float()                 # (n, d + 1) with bias
    directions = []
    for name, s in stats.items():
        coef = torch.linalg.lstsq(zc.cpu(), s.cpu()[:, None]).solution[:-1, 0]         # (d,)
        norm = coef.norm()
        if torch.isfinite(norm) and norm > 0:
            directions.append(Direction(name, DIRECTION_HELP[name], (coef / norm).to(z.device)))
    return directions


# ---- directions found without labels ----------------------------------------------------------------

EFFECT_STEP = 2.0           # effects are measured from -EFFECT_STEP to +EFFECT_STEP along a direction
EFFECT_SAMPLES = 256        # samples moved along each principal direction to measure what it changes
NOTABLE_SD = 0.3            # a statistic's change worth naming, in standard deviations
NOTABLE_DIGIT_SHARE = 0.1   # a share of samples changing digit worth naming
HELP_LENGTH = 70
STATISTIC_WORDS = {"thickness": ("more ink", "less ink"), "slant": ("leans right", "leans left"),
                   "width": ("wider", "narrower")}


def signed(value: float) -> str:
    """+1.3 or −0.6, with a true minus sign."""
    return f"{value:+.1f}".replace("-", "−")


@dataclass
class Effect:
    """What moving samples from -EFFECT_STEP to +EFFECT_STEP along a direction changes, on average."""
    change_sd: dict[str, float]         # each image statistic's mean change, in sd of it over the samples
    digit_share: float                  # share of samples the classifier reads as another digit; nan: no classifier
    turn: tuple[int, int] | None        # the commonest change of reading (from, to); None if none changed
    turn_share: float                   # share of samples that change just so

    def reversed(self) -> Effect:
        return Effect({name: -value for name, value in self.change_sd.items()}, self.digit_share,
                      self.turn[::-1] if self.turn else None, self.turn_share)

    def phrase(self, room: int) -> str:
        """The largest changes in at most `room` characters, e.g. 'more ink (+1.3 sd), turns 4s into 9s
        (38% of samples), narrower (−0.6 sd)'; a change of digit with no one commonest way is 'changes
        the digit (90% of samples)'."""
        ranked = sorted(self.change_sd.items(), key=lambda item: -abs(item[1]))
        stats = [f"{STATISTIC_WORDS[name][value < 0]} ({signed(value)} sd)" for name, value in ranked
                 if abs(value) >= NOTABLE_SD]
        digit = []
        if self.turn and self.turn_share >= NOTABLE_DIGIT_SHARE and self.turn_share >= self.digit_share / 2:
            digit = [f"turns {self.turn[0]}s into {self.turn[1]}s ({self.turn_share:.0%} of samples)"]
        elif self.digit_share >= NOTABLE_DIGIT_SHARE:
            digit = [f"changes the digit ({self.digit_share:.0%} of samples)"]
        parts = stats[:1] + digit + stats[1:]
        if not parts:
            return f"little change (≤ {abs(ranked[0][1]):.1f} sd in ink, slant, width)"
        text = parts[0]
        for part in parts[1:]:
            if len(text) + 2 + len(part) <= room:
                text += ", " + part
        return text


@torch.no_grad()
def measure_effect(model: GenerativeModel, vector: torch.Tensor, z: torch.Tensor, labels: torch.Tensor | None,
                   spread: dict[str, torch.Tensor], classifier: MNISTClassifier | None) -> Effect:
    """Moves samples z (m, d) from -EFFECT_STEP to +EFFECT_STEP along `vector` (d,) and measures the mean
    change of each image statistic in units of `spread` (its sd), and how the digit the classifier reads
    changes (left out without a classifier). Call in eval mode."""
    step = EFFECT_STEP * vector
    minus, plus = model.sample(z - step, labels).float(), model.sample(z + step, labels).float()   # (m, 1, 28, 28)
    before, after = image_statistics(minus), image_statistics(plus)
    change_sd = {name: ((after[name] - before[name]).mean() / spread[name].clamp_min(1e-6)).item() for name in before}
    if classifier is None:
        return Effect(change_sd, float("nan"), None, float("nan"))
    read_minus = classify(minus, classifier)[1].argmax(1)                                   # (m,)
    read_plus = classify(plus, classifier)[1].argmax(1)
    changed = read_minus != read_plus
    if not changed.any():
        return Effect(change_sd, 0.0, None, 0.0)
    turns = (read_minus[changed] * 10 + read_plus[changed]).bincount()                      # by from * 10 + to
    commonest = int(turns.argmax())
    return Effect(change_sd, changed.float().mean().item(), divmod(commonest, 10), turns[commonest].item() / len(z))


def optional_classifier(model: GenerativeModel) -> MNISTClassifier | None:
    """The metrics classifier on the model's device, or None where its file cannot be loaded."""
    try:
        return load_classifier(device=model.device)
    except CheckpointError:
        return None


def measured_directions(model: GenerativeModel, vectors: torch.Tensor, z: torch.Tensor, labels: torch.Tensor | None,
                        images: torch.Tensor, names: list[str], titles: list[str], orient: bool) -> list[Direction]:
    """A Direction for each unit row of `vectors` (k, d) with its measured effect on the first
    EFFECT_SAMPLES samples z (n, d) as help, after `titles`; with `orient`, a row is flipped so that its
    largest statistic change is an increase. images (n, 1, 28, 28) are the samples, for each statistic's sd.
    Call in eval mode."""
    spread = {name: values.std() for name, values in image_statistics(images).items()}
    m = min(EFFECT_SAMPLES, len(z))
    z, labels = z[:m], labels[:m] if labels is not None else None
    classifier = optional_classifier(model)
    directions = []
    for vector, name, title in zip(vectors, names, titles):
        effect = measure_effect(model, vector, z, labels, spread, classifier)
        if orient and max(effect.change_sd.values(), key=abs) < 0:
            vector, effect = -vector, effect.reversed()
        directions.append(Direction(name, title + effect.phrase(HELP_LENGTH - len(title)), vector))
    return directions


@contextmanager
def eval_mode(model: GenerativeModel):
    """The model in eval mode for the block (GANs: the averaged generator), its mode restored after."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@torch.no_grad()
def principal_directions(model: GenerativeModel, n: int = 1024, k: int = 5, seed: int = 0,
                         label: int | None = None) -> list[Direction]:
    """The k directions of z along which what the model draws varies most, found without labels
    (GANSpace, Härkönen et al. 2020), largest first, named pc1, pc2, ...

    GANSpace takes principal components of the generator's early features; this model-agnostic version
    takes them of the pixels of n samples, so it works alike for every model. Where the samples carry
    labels (a conditional model's digits), each label's mean image is subtracted first, so that the
    components are the variation z controls rather than the differences between digits. As GANSpace does
    for z-space directions, the components are carried back to z by least squares, z ≈ U c + b over the
    samples' PCA coordinates c (n, k): column j of U is direction j (as the coordinates are uncorrelated
    and z ~ N(0, I), it is also the direction of the regression of c_j on z). Each is a unit vector,
    flipped so that its largest change of image_statistics is an increase; its help says what it
    measurably changes (measure_effect on the first EFFECT_SAMPLES samples). Through the VAEs' mixture
    priors z reaches the image less linearly, and the directions found are less telling than a GAN's."""
    check_range("n", n, 16, 65_536)
    check_range("k", k, 1, 20)
    k = min(k, model.latent_dim)
    with eval_mode(model):
        z = noise(model, n, seed)                                                          # (n, d)
        labels = as_labels(model, n, label)
        images = model.sample(z, labels).float()                                           # (n, 1, 28, 28)
        pixels = images.flatten(1).cpu()                                                   # (n, 784)
        if labels is not None:
            groups = labels.cpu()
            sums = torch.zeros(int(groups.max()) + 1, pixels.shape[1]).index_add_(0, groups, pixels)
            pixels = pixels - sums[groups] / groups.bincount()[groups, None]
        else:
            pixels = pixels - pixels.mean(0)
        components = torch.linalg.svd(pixels, full_matrices=False).Vh[:k]                 # (k, 784)
        design = torch.cat([pixels @ components.T, torch.ones(n, 1)], 1)                   # (n, k + 1)
        loadings = torch.linalg.lstsq(design, z.float().cpu()).solution[:k]               # (k, d): Uᵀ
        vectors = (loadings / loadings.norm(dim=1, keepdim=True).clamp_min(1e-12)).to(z.device, z.dtype)
        return measured_directions(model, vectors, z, labels, images, [f"pc{j + 1}" for j in range(k)],
                                   [f"PC {j + 1} → " for j in range(k)], orient=True)


@torch.no_grad()
def axis_directions(model: GenerativeModel, n: int = 128, seed: int = 0, label: int | None = None) -> list[Direction]:
    """One direction per coordinate of z, named z1, z2, ..., for a small latent space (latent_dim ≤ 16;
    [] for a larger one); its help says what moving along it measurably changes (measure_effect on n
    samples)."""
    d = model.latent_dim
    if d > 16:
        return []
    check_range("n", n, 16, 65_536)
    with eval_mode(model):
        z = noise(model, n, seed)                                                          # (n, d)
        labels = as_labels(model, n, label)
        images = model.sample(z, labels).float()
        vectors = torch.eye(d, device=z.device, dtype=z.dtype)
        return measured_directions(model, vectors, z, labels, images, [f"z{i + 1}" for i in range(d)],
                                   [f"z{i + 1}: " for i in range(d)], orient=False)
