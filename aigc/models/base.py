"""What every aigc model is: a config dataclass, a network, and its own training step.

The trainer knows nothing about any one model (minGPT's split): it asks the model for its
optimizers, hands it batches, and reads back a dict of scalar metrics.
"""
from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, fields, replace
from typing import ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from .declarations import Panel, Redraw, Section, Series, Setting, Trajectory

NUM_CLASSES = 10


def check_range(name: str, value, low, high, kind=int) -> None:
    """Raises ValueError naming the setting, its value and its allowed range."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not float(value).is_integer()):
        raise ValueError(f"{name} must be a{'n integer' if kind is int else ' number'}, got {value!r}")
    if not (low <= value <= high) or (isinstance(value, float) and not math.isfinite(value)):
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")


def adam(params, lr: float, betas: tuple[float, float]) -> torch.optim.Adam:
    """Adam on its fused kernel where torch has one (CPU, CUDA): the same update in one pass over all of an
    optimizer's tensors instead of a dozen operations on each, which counts for these small networks."""
    params = list(params)
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=params[0].device.type in ("cpu", "cuda"))


def check_choice(name: str, value, choices: tuple) -> None:
    """Raises ValueError naming the setting, its value and the choices it has."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")


def pick_slice(z0: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse-CDF choice of a category from standard normal noise. u = Φ(z₀), z₀ (b, 1), falls into slice j
    of (0, 1) cut by the weights (b, k) (rows sum to 1); returns j (b,) and u rescaled within its slice and
    carried back through Φ⁻¹ (b, 1): again ~ N(0, 1) and independent of j. So one standard normal z gives
    both a category and a full noise vector, and nearby z₀ pick the same or a neighbouring slice."""
    upper = weight.cumsum(1)                                                               # (b, k)
    u = (0.5 * (1 + torch.erf(z0.float() / 2 ** 0.5))).clamp(1e-6, 1 - 1e-6)              # (b, 1) uniform
    index = torch.searchsorted(upper, u).clamp(max=weight.shape[1] - 1)                   # (b, 1)
    width = weight.gather(1, index)
    u = ((u - upper.gather(1, index) + width) / width.clamp_min(1e-12)).clamp(1e-6, 1 - 1e-6)
    return index.squeeze(1), (2 ** 0.5 * torch.erfinv(2 * u - 1)).to(z0.dtype)


def features_product(h: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Features h, (b, f) or (b, C, H, W), times weight (k, f) whose columns run in h.flatten(1)'s order: (b, k).
    A channels-last h (the convolutional D's on a CPU) is read in the order it lies in memory and
    the small weight is reordered to match, instead of copying the batch's features into PyTorch's order."""
    if h.dim() == 4 and h.is_contiguous(memory_format=torch.channels_last) and not h.is_contiguous():
        b, channels, height, width = h.shape
        h = h.permute(0, 2, 3, 1)                                                # (b, H, W, C): a view
        weight = weight.view(-1, channels, height, width).permute(0, 2, 3, 1)    # (k, H, W, C)
    return F.linear(h.reshape(h.shape[0], -1), weight.reshape(weight.shape[0], -1))


def projection_logits(h: torch.Tensor, head: nn.Linear, embedding: nn.Embedding, labels: torch.Tensor) -> torch.Tensor:
    """A projection discriminator's logit (Miyato & Koyama 2018) from the features h (b, f) or (b, C, H, W),
    the linear head (f -> 1), the label embedding (k labels -> f) and the labels (b,): (w + embed(y))·h + b (b,).
    Every label's logit comes from one product h (w + E)ᵀ (b, k), and each row keeps its own label's: the same
    sums as gathering embed(y) and multiplying, without that way's (b, f) temporaries, whose memory traffic
    outweighs a product k columns wide when f is large (the convolutional D's 3,136 features)."""
    per_label = features_product(h, head.weight + embedding.weight)         # (b, k)
    return per_label.gather(1, labels[:, None]).squeeze(1) + head.bias


def kmeans(x: torch.Tensor, k: int, iters: int = 30, generator: torch.Generator | None = None) -> torch.Tensor:
    """Lloyd's k-means on x (n, d) with k-means++ seeding (Arthur & Vassilvitskii 2007); returns the
    centres (k, d). Stops when no point changes group; an emptied group is re-seeded at the point
    farthest from its centre."""
    n = x.shape[0]
    norms = x.pow(2).sum(1, keepdim=True)                                                 # (n, 1)

    def squared_distance(centres):      # |x|² - 2 x·c + |c|²: one matrix product, (n, k)
        return (norms - 2 * x @ centres.T + centres.pow(2).sum(1)).clamp_min(0)

    centres = x[torch.randint(n, (1,), generator=generator)]
    nearest = squared_distance(centres)[:, 0]                                             # (n,)
    for _ in range(1, k):               # k-means++: each next centre drawn ~ squared distance to the nearest
        new = x[torch.multinomial(nearest / nearest.sum(), 1, generator=generator)]
        centres = torch.cat([centres, new])
        nearest = torch.minimum(nearest, squared_distance(new)[:, 0])
    assign = None
    for _ in range(iters):
        distance = squared_distance(centres)
        new_assign = distance.argmin(1)
        if assign is not None and torch.equal(new_assign, assign):
            break
        assign = new_assign
        counts = torch.bincount(assign, minlength=k)
        centres = torch.zeros_like(centres).index_add_(0, assign, x) / counts.clamp_min(1)[:, None]
        empty = counts == 0
        if empty.any():
            centres[empty] = x[distance.min(1).values.topk(int(empty.sum())).indices]
    return centres


@torch.no_grad()
def update_average(average: nn.Module, model: nn.Module, updates: torch.Tensor, decay: float) -> None:
    """One step of an exponential moving average of model's weights, kept in `average` (Yazici et al.
    2019); `updates` (a long buffer) counts the steps. The decay warms up as (1 + n) / (10 + n), so early
    samples are not stuck near the random init. Buffers (BatchNorm statistics) are copied as they are."""
    n = updates.item()
    rate = 1 - min(decay, (1 + n) / (10 + n))
    torch._foreach_lerp_(list(average.parameters()), list(model.parameters()), rate)
    for average_buffer, buffer in zip(average.buffers(), model.buffers()):
        average_buffer.copy_(buffer)
    updates += 1


@dataclass
class ModelConfig:
    """Base of every model config: a validated, JSON-friendly dataclass."""

    def validate(self) -> None:  # overridden where there are ranges to check
        pass

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, args: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(args) - known)
        if unknown:
            raise ValueError(f"{cls.__name__} has no setting(s) {', '.join(unknown)}")
        config = cls(**args)
        config.validate()
        return config


LIVE_LR = Setting("lr", "Learning rate", None, "Adam's step size.", step=1e-4, format="%.5f")
LIVE_BETA1 = Setting("beta1", "Adam's β₁", None, "How much of each step's direction carries over from the steps "
                     "before (momentum). GANs train more stably with little of it (0.5, or 0).", step=0.05, format="%.2f")
LIVE_BATCH_SIZE = Setting("batch_size", "Batch size", None, "Digits per step.", step=16)


class GenerativeModel(nn.Module):
    """Interface the trainer, the metrics and the app rely on.

    Besides its network and training step, a model declares what a front end needs to offer it without
    knowing it (aigc.models.declarations): `settings` for the Train page, `panels` for its charts (its
    metric_names follow from them), and, per instance, its Explore sections and label picker."""

    name: ClassVar[str]
    summary: ClassVar[str]             # one line for the UI
    panels: ClassVar[tuple[Panel, ...]]
    metric_names: ClassVar[tuple[str, ...]]   # what train_step reports, in chart order: from the panels
    settings: ClassVar[tuple[Setting, ...]] = ()   # config fields a person may set on the Train page
    sampling_settings: ClassVar[tuple[Setting, ...]] = ()   # keyword arguments of sample() set on Explore
    conditional: ClassVar[bool] = False
    train_defaults: ClassVar[dict] = {}  # the tuned recipe: TrainConfig.for_model() starts from it
    finishing_note: ClassVar[str] = ""   # what finish_training() does, for the UI while it runs; "" = nothing
    base_model: ClassVar[str | None] = None   # the family a model is trained on top of (a trained checkpoint of it)
    update_phases: ClassVar[dict[str, str]] = {}   # parts train_step can update alone (phase=): {name: what it is}
    diagnoses: ClassVar[tuple[str, ...]] = ("collapse", "diverging", "plateau")   # what the coach watches for (aigc.coach)
    loss_ceilings: ClassVar[dict[str, float]] = {}   # a logged loss above this is exploding (the coach's "diverging");
                                                     # without any, a loss is judged against its own median

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "panels" in cls.__dict__:
            cls.metric_names = tuple(series.metric for panel in cls.panels for series in panel.series)

    def __init__(self, config: ModelConfig):
        super().__init__()
        config.validate()
        self.config = config

    @property
    def explore_sections(self) -> tuple[Section, ...]:
        """The Explore page's sections for this model, in order."""
        return (Section.SLIDERS, Section.MORPH, Section.DRAWING)

    @property
    def live_settings(self) -> tuple[Setting, ...]:
        """What may change while it trains, at a step boundary: the Trainer's own lr (or lr.<optimizer>),
        beta1 and batch_size, whose ranges it fills in, or fields of this model's config that train_step
        reads at every step."""
        return (LIVE_LR, LIVE_BETA1, LIVE_BATCH_SIZE)

    @property
    def redraw(self) -> Redraw:
        """How this model redraws a digit a person drew (Section.DRAWING): by default, the z whose sample
        comes closest, which needs sample() to be cheap and differentiable in z."""
        return Redraw.INVERT

    @property
    def label_setting(self) -> Setting | None:
        """The picker for sample()'s labels on the Explore page; None for a model that takes none."""
        if not self.conditional:
            return None
        return Setting("label", "Digit to draw", default=3, choices=tuple(range(NUM_CLASSES)))

    def describe(self) -> list[str]:
        """Short phrases about this model's state that a person exploring it should know."""
        return ["pick the digit below"] if self.conditional else []

    def latent_paths(self, z: torch.Tensor, labels: torch.Tensor | None = None, **options) -> Trajectory | None:
        """For Section.LATENT_MAP: the way sampling takes from z through the latent space, for a model
        that samples by such a path; None for one that decodes z as it is."""
        return None

    @classmethod
    def args_from_base(cls, base: dict) -> dict:
        """For a model with a base_model: the settings that follow from the base checkpoint (its shape)."""
        return {}

    def load_base(self, base: dict) -> None:
        """For a model with a base_model: takes what it builds on (weights) from the base checkpoint."""

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def make_noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """(n, latent_dim) standard normal, drawn on the CPU so a seed gives the same z on any device."""
        return torch.randn(n, self.latent_dim, generator=generator).to(self.device)

    @property
    def label_count(self) -> int:
        """How many values sample()'s labels can take: the 10 digits of a conditional model, the groups
        of a self-conditioned GAN; 0 for a model that takes none."""
        return NUM_CLASSES if self.conditional else 0

    def default_labels(self, n: int) -> torch.Tensor | None:
        """0,1,...,9,0,1,... for conditional models (0..k-1 for k groups); None otherwise."""
        return torch.arange(n, device=self.device) % self.label_count if self.label_count else None

    def sample(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """(b, latent_dim) -> (b, 1, 28, 28) images in [-1, 1]."""
        raise NotImplementedError

    def configure_optimizers(self, lr: float, betas: tuple[float, float]) -> dict[str, torch.optim.Optimizer]:
        raise NotImplementedError

    def train_step(self, x: torch.Tensor, y: torch.Tensor, optimizers: dict, autocast) -> dict[str, torch.Tensor]:
        """One optimisation step on x (b, 1, 28, 28) in [-1, 1] with labels y (b,); returns detached scalars.
        A model with update_phases also takes phase=<one of them>: that part's update alone."""
        raise NotImplementedError

    def start_training(self, data) -> None:
        """Called once before a run's first step with the training data (an MNISTTensors); a model that
        needs something from the data before training (a self-conditioned GAN's groups) fits it here."""

    def finish_training(self, data) -> bool:
        """Called once when a run ends with usable weights (finished or stopped), with the training data
        (an MNISTTensors); a model that fits something after training (the VAE's prior) does it here.
        Returns True if that changed what sample() draws."""
        return False


class GAN(GenerativeModel):
    """A generator G and a discriminator D trained with the non-saturating GAN loss.

    Goodfellow et al. 2014: min_G max_D E[log D(x)] + E[log(1 - D(G(z)))]; G instead maximises
    log D(G(z)) (the 'non-saturating' form of the same paper), which keeps its gradient alive early on.
    D returns logits, so both losses are BCE-with-logits (numerically stable log-sigmoid).

    Self-conditioning (Liu et al. 2020, "Diverse Image Generation via Self-Conditioned GANs"): with
    `clusters` = k > 0 in its config, an unconditional GAN first sorts the training images into k groups by
    k-means on their pixels, no labels involved, then trains like the conditional GAN with the group in
    place of the digit: G draws from a group, D judges an image against its group. One continuous z
    alone would have to join every digit to the next through in-between shapes; the group lets G keep
    them apart, and groups drawn at the rate they occur in the data keep the digits' shares right.
    sample(z) still takes z ~ N(0, I) alone: Φ(z₀) picks the group (pick_slice).
    """

    panels = (
        Panel("Losses", (Series("loss_d", "D loss", "#4C6EF5"), Series("loss_g", "G loss", "#F03E3E"))),
        # D(x) = D(G(z)) = 1/2 is where the game settles in theory
        Panel("Discriminator's verdicts", (Series("d_real", "D(x) on real digits", "#2B8A3E"),
                                           Series("d_fake", "D(G(z)) on fakes", "#F59F00")),
              y_range=(0.0, 1.0), reference=0.5),
    )
    clusters_setting = Setting(
        "clusters", "Groups found without labels", default=0, choices=(0, 10, 20, 30, 50), ordered=True,
        help="Self-conditioned GAN (Liu et al. 2020): before training, sort the training digits into this many "
             "groups by k-means on their pixels (no labels), then tell G which group to draw and D which group "
             "an image belongs to. 0 = the plain GAN. With 30 groups and its recipe (batches of 128, learning "
             "rate 0.003) a dcgan drew every kind of digit after 7 s of training on 2 CPU cores; the plain one, "
             "with the recipes before it, had not after 2 minutes.")
    update_phases = {"d": "one D update", "g": "one G update"}
    diagnoses = ("collapse", "discriminator_wins", "oscillating", "diverging", "plateau")
    # healthy runs of the recipe (128 at lr 3e-3; 24 cgan and 8 dcgan seeds) stayed below 9.9 for two logs in a
    # row and below 11.7 in any one, early on; the exploding-losses lesson passed 12 twice by step 30-45
    loss_ceilings = {"loss_g": 12.0}
    generator: nn.Module
    discriminator: nn.Module

    @property
    def live_settings(self) -> tuple[Setting, ...]:
        lr = lambda who, name: replace(LIVE_LR, name=f"lr.{who}", label=f"{name}'s learning rate",
                                       help=f"Adam's step size for the {name.lower()} alone.")
        ema = Setting("ema_decay", "G's weight averaging", None, low=0.0, high=0.9999, step=0.001, format="%.4f",
                      help="The samples come from an average of G's recent weights, which smooths out the "
                           "back-and-forth of the game: 0.999 averages about the last 1,000 steps; 0 shows G itself.")
        return (lr("d", "Discriminator"), lr("g", "Generator"), LIVE_BETA1, LIVE_BATCH_SIZE) + (
            (ema,) if self.config.ema_decay > 0 else ())

    @property
    def clusters(self) -> int:
        return getattr(self.config, "clusters", 0)

    @property
    def label_count(self) -> int:
        return NUM_CLASSES if self.conditional else self.clusters

    @property
    def explore_sections(self) -> tuple[Section, ...]:
        return ((Section.GROUPS,) if self.clusters else ()) + super().explore_sections

    @property
    def label_setting(self) -> Setting | None:
        if self.conditional or not self.clusters:
            return super().label_setting
        return Setting("label", "Group to draw from", default=None, choices=(None, *range(self.clusters)),
                       choice_labels={None: "any"},
                       help="Before training, this GAN sorted the training digits into groups by k-means on their "
                            "pixels, without their labels, and learned to draw each group. 'any' lets z pick the "
                            "group, as often as it occurs in the data.")

    def describe(self) -> list[str]:
        return super().describe() + ([f"self-conditioned on {self.clusters} groups it found in the training digits"]
                                     if self.clusters else [])

    def init_clusters(self) -> None:
        """Buffers for the k-means groups of a self-conditioned GAN; subclasses call this in __init__."""
        if self.clusters:
            self.register_buffer("cluster_centres", torch.zeros(self.clusters, 784))      # (k, 784) in [-1, 1]
            self.register_buffer("cluster_weight", torch.full((self.clusters,), 1.0 / self.clusters))   # (k,)
            self.register_buffer("clusters_fitted", torch.zeros((), dtype=torch.bool))
        self._clusters_ready = False        # set once fitted or checked in start_training

    @torch.no_grad()
    def fit_clusters(self, data, n: int = 20_000, seed: int = 0) -> None:
        """k-means on the pixels of n random training images; weights = each group's share of all of them.
        Groups are ordered along the centres' main axis, so neighbouring slices of Φ(z₀) look alike."""
        generator = torch.Generator().manual_seed(seed)
        pick = torch.randperm(len(data), generator=generator)[:n].to(data.labels.device)
        centres = kmeans(data.batch(pick)[0].flatten(1).float().cpu(), self.clusters, generator=generator)
        axis = torch.linalg.svd(centres - centres.mean(0), full_matrices=False)[2][0]     # (784,)
        self.cluster_centres.copy_(centres[(centres @ axis).argsort()])
        self.clusters_fitted.fill_(True)
        self._clusters_ready = True
        assign = torch.cat([self.assign_clusters(data.batch(index)[0])
                            for index in torch.arange(len(data), device=data.labels.device).split(10_000)])
        self.cluster_weight.copy_(torch.bincount(assign, minlength=self.clusters).float() / len(assign))

    def assign_clusters(self, x: torch.Tensor) -> torch.Tensor:
        """Images (b, 1, 28, 28) -> the index of the nearest k-means centre (b,)."""
        if not self._clusters_ready:        # a Python flag: reading the buffer would sync a GPU every step
            if not (self.clusters and bool(self.clusters_fitted)):        # fitted, in a file just loaded
                raise RuntimeError("this GAN's groups are not fitted yet: call start_training(data) first")
            self._clusters_ready = True
        centres = self.cluster_centres.to(x.device)
        h = x.flatten(1).float()
        return (h @ centres.T * 2 - centres.pow(2).sum(1)).argmax(1)         # argmin |h - c|² per row

    def start_training(self, data) -> None:
        if self.clusters and not self.clusters_fitted:
            self.fit_clusters(data)
        self._clusters_ready = bool(self.clusters)

    def init_ema(self) -> None:
        """An exponential moving average of G's weights (Yazici et al. 2019, 'The Unusual Effectiveness of
        Averaging in GAN Training'): it smooths out the oscillation of adversarial training, so samples
        are cleaner and the live grid flickers less. Subclasses call this once G is built; with
        ema_decay = 0 there is no copy, so a checkpoint carries G once."""
        if self.config.ema_decay > 0:
            self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False)
            self.register_buffer("ema_updates", torch.zeros((), dtype=torch.long))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if self.config.ema_decay == 0:      # files written when an unused copy was still kept: drop it
            for key in [k for k in state_dict if k.startswith((prefix + "generator_ema.", prefix + "ema_updates"))]:
                del state_dict[key]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def update_ema(self) -> None:
        update_average(self.generator_ema, self.generator, self.ema_updates, self.config.ema_decay)

    def generate(self, generator: nn.Module, z, labels=None):
        """labels: the digits of a conditional GAN, or the groups of a self-conditioned one (if None, z₀
        picks the group, each as often as in the data)."""
        if self.clusters and labels is None:
            labels, first = pick_slice(z[:, :1], self.cluster_weight.expand(z.shape[0], -1))
            z = torch.cat([first, z[:, 1:]], 1)
        return generator(z, labels) if self.label_count else generator(z)

    def sample(self, z, labels=None):
        """Eval mode draws from the averaged generator; train mode from the one being trained."""
        if self.conditional and labels is None:
            labels = self.default_labels(z.shape[0])
        use_ema = not self.training and self.config.ema_decay > 0
        return self.generate(self.generator_ema if use_ema else self.generator, z, labels)

    def discriminate(self, x, labels=None):
        return self.discriminator(x, labels) if self.label_count else self.discriminator(x)

    def configure_optimizers(self, lr, betas):
        return {
            "g": adam(self.generator.parameters(), lr, betas),
            "d": adam(self.discriminator.parameters(), lr, betas),
        }

    def train_step(self, x, y, optimizers, autocast, phase: str | None = None):
        """Both updates, D's then G's; with phase "d" or "g" (slow motion) that one alone."""
        b = x.shape[0]
        labels = y if self.conditional else self.assign_clusters(x) if self.clusters else None   # (b,) or None
        z = torch.randn(b, self.latent_dim, device=x.device)
        if phase == "g":
            return self._update_g(self.generate(self.generator, z, labels), labels, optimizers, autocast)

        ############################
        # (1) Update D: maximize log(D(x)) + log(1 - D(G(z)))
        ###########################
        with autocast:
            fake = self.generate(self.generator, z, labels)        # (b, 1, 28, 28)
            logits_real = self.discriminate(x, labels).float()     # (b,), or fewer for a packing D
            logits_fake = self.discriminate(fake.detach(), labels).float()
            loss_d = (F.binary_cross_entropy_with_logits(logits_real, torch.ones_like(logits_real))
                      + F.binary_cross_entropy_with_logits(logits_fake, torch.zeros_like(logits_fake)))
        optimizers["d"].zero_grad(set_to_none=True)
        loss_d.backward()
        optimizers["d"].step()
        verdicts = {
            "loss_d": loss_d.detach(),
            "d_real": torch.sigmoid(logits_real.detach()).mean(),   # D(x)
            "d_fake": torch.sigmoid(logits_fake.detach()).mean(),   # D(G(z)) before G's update
        }
        if phase == "d":
            return verdicts
        return {**verdicts, **self._update_g(fake, labels, optimizers, autocast)}

    def _update_g(self, fake, labels, optimizers, autocast) -> dict[str, torch.Tensor]:
        ############################
        # (2) Update G: maximize log(D(G(z)))
        ###########################
        with autocast:
            logits_gen = self.discriminate(fake, labels).float()
            loss_g = F.binary_cross_entropy_with_logits(logits_gen, torch.ones_like(logits_gen))
        optimizers["g"].zero_grad(set_to_none=True)
        # G's gradients alone: D's weights would get gradients here that its next update discards, a third of
        # the work of D's backward pass
        loss_g.backward(inputs=list(self.generator.parameters()))
        optimizers["g"].step()
        if self.config.ema_decay > 0:
            self.update_ema()
        return {"loss_g": loss_g.detach()}
