"""Class-conditional diffusion on MNIST: a small U-Net denoiser, trained by flow matching or by DDPM.

Three separate pieces, as in lucidrains/denoising-diffusion-pytorch:
- UNet, the network: it sees a noisy image x_t, the noise level t in [0, 1] and a label (10 = "no
  label") and returns a tensor of the image's shape: a velocity or a noise estimate.
- FlowMatching and GaussianDiffusion, the processes: each knows its schedule (how much signal α(t) and
  noise σ(t) x_t holds), how to noise a clean digit, what the network is trained to predict, and how to
  read the clean image x̂₀ and the noise ε̂ out of a prediction. Process.sample walks from t = 1 to 0
  with the same steps for both (SAMPLERS: DDIM/Euler, Heun, ancestral) and keeps its trajectory.
- Diffusion, the aigc model: the network, its weight average for sampling, classifier-free guidance,
  and the train_step the trainer calls.

Objectives (config.objective):
  "flow"  rectified flow / flow matching (Liu et al. 2022; Lipman et al. 2022): x_t = (1 - t) x₀ + t ε,
          the network predicts v = ε - x₀. The deterministic step is then exactly Euler's on dx/dt = v.
  "ddpm"  noise prediction (Ho et al. 2020) with the cosine schedule (Nichol & Dhariwal 2021):
          x_t = √ᾱ(t) x₀ + √(1 - ᾱ(t)) ε, the network predicts ε. Deterministic: DDIM (Song et al. 2020);
          stochastic: ancestral DDPM. t is continuous, so any number of steps from 1 to 100 is a schedule.
Either can also be sampled with Heun's second-order steps (Karras et al. 2022).

Classifier-free guidance (Ho & Salimans 2022): in training the label is replaced by the null label with
probability label_dropout; sampling mixes the two predictions, p̂ = p_u + w (p_c - p_u), both from one
batched forward of 2b images. w = 1 is the plain conditional model, w = 0 the unconditional one, and
w > 1 trades variety for typicality.

The network works on space-to-depth pixels (pixel_unshuffle, 28×28×1 -> 14×14×4 for patch 2), so every
convolution runs on a quarter of the positions: on a 2-core CPU the network's shape decides whether a
diffusion model draws digits after a minute of training or an hour.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import NUM_CLASSES, GenerativeModel, ModelConfig, adam, check_choice, check_range, update_average
from .declarations import Panel, Redraw, Section, Series, Setting, Trajectory

NULL_LABEL = NUM_CLASSES            # the extra label that classifier-free guidance trains as "no label"
OBJECTIVES = ("flow", "ddpm")
LOSS_BINS = 4                       # train_step also reports the loss in this many equal bins of t

BIN_EDGES = ("0", "¼", "½", "¾", "1")   # the LOSS_BINS bins' edges, as legend labels short enough for a phone

LOSS_PANELS = (
    Panel("Loss (squared error of the network's prediction)", (Series("loss", "loss", "#4C6EF5"),)),
    Panel("Loss by noise level t: which levels are still hard", tuple(
        Series(f"loss_t{i}", f"t {BIN_EDGES[i]}–{BIN_EDGES[i + 1]}", color)
        for i, color in enumerate(("#2B8A3E", "#F59F00", "#F03E3E", "#7048E8")))),
)


MAX_STEPS = 100         # sampling steps any caller may ask for (Explore offers up to 50)
MAX_GUIDANCE = 10.0     # guidance weight likewise (Explore: up to 5)
# how Process.sample steps from one noise level to the next: "euler" the deterministic DDIM step (Euler's on
# the flow), "heun" the same step corrected by the slope at its end (Karras et al. 2022: 2 network runs a step,
# one on the last), "ancestral" the stochastic DDPM step
SAMPLERS = ("euler", "heun", "ancestral")


def sampling_settings(config) -> tuple[Setting, ...]:
    """What Explore offers for sample(): steps, guidance and sampler, each starting at the model's own (those
    its grids and scores use)."""
    return (
        Setting("steps", "Sampling steps", config.sample_steps, "How many steps from noise to digit; each runs "
                "the network once (Heun: twice, but once on the last), on twice the images with guidance.",
                low=1, high=50, step=1),
        Setting("guidance", "Guidance w", float(config.guidance), "0 ignores the digit, 1 is the plain model, more "
                "gives cleaner, more typical digits that look more alike.", low=0.0, high=5.0, step=0.25),
        Setting("sampler", "Sampler", config.sampler, choices=SAMPLERS,
                choice_labels={"euler": "Euler (DDIM)", "heun": "Heun", "ancestral": "stochastic"},
                help="Euler: one deterministic path, a straight step along the model's direction (DDIM). Heun: "
                     "the same path, each step corrected by the direction at its end, so fewer steps reach the "
                     "same place. Stochastic: fresh noise added at every step (ancestral sampling)."),
    )


@dataclass
class DiffusionConfig(ModelConfig):
    objective: str = "flow"          # "flow" (flow matching, predicts v) or "ddpm" (noise prediction, cosine)
    width: int = 32                  # channels at the working resolution (14×14 for patch 2)
    mult: int = 2                    # channels one level down (7×7) = mult × width
    blocks: int = 1                  # residual blocks per level, on the way down and again on the way up
    patch: int = 2                   # space-to-depth factor: 2 -> the U-Net works at 14×14×4
    label_dropout: float = 0.1       # share of labels replaced by the null label (classifier-free guidance)
    ema_decay: float = 0.999         # weight averaging for sampling; 0 = sample the trained weights
    sample_steps: int = 8            # steps when none are asked for: the live grid, which must stay cheap
    guidance: float = 3.0            # guidance when none is asked for
    sampler: str = "euler"           # sampler when none is asked for (SAMPLERS)

    @property
    def latent_dim(self) -> int:
        return 28 * 28               # z is the starting noise image, flattened

    def validate(self):
        check_choice("objective", self.objective, OBJECTIVES)
        check_range("width", self.width, 8, 256)
        check_range("mult", self.mult, 1, 8)
        check_range("blocks", self.blocks, 1, 4)
        if self.patch not in (1, 2, 4):
            raise ValueError(f"patch must be 1, 2 or 4, got {self.patch!r}")
        check_range("label_dropout", self.label_dropout, 0.0, 1.0, kind=float)
        check_range("ema_decay", self.ema_decay, 0.0, 0.9999, kind=float)
        check_range("sample_steps", self.sample_steps, 1, MAX_STEPS)
        check_range("guidance", self.guidance, 0.0, MAX_GUIDANCE, kind=float)
        check_choice("sampler", self.sampler, SAMPLERS)


# ---- the network -----------------------------------------------------------------------------------------

def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal features of t (b,) in [0, 1] -> (b, dim), as in the Transformer and DDPM; t is scaled by
    1000 so that the fastest frequencies still tell nearby noise levels apart."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = 1000 * t.float()[:, None] * freqs[None]                                  # (b, dim/2)
    return torch.cat([angles.cos(), angles.sin()], dim=1)


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(8, channels // 4), channels)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv, a FiLM from the t/label embedding (scale and shift, as in the adaptive group
    norm of Dhariwal & Nichol 2021), SiLU-conv, plus the skip. Starts as the identity."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int):
        super().__init__()
        self.norm1 = group_norm(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.film = nn.Linear(emb_dim, 2 * c_out)
        self.norm2 = group_norm(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))                                         # (b, c_out, h, w)
        scale, shift = self.film(emb)[:, :, None, None].chunk(2, dim=1)                # (b, c_out, 1, 1) each
        h = self.norm2(h) * (1 + scale) + shift
        return self.skip(x) + self.conv2(F.silu(h))


class UNet(nn.Module):
    """A two-level U-Net (Ronneberger et al. 2015) on space-to-depth pixels, told t and a label.

    For patch 2, width w, mult m: (b, 1, 28, 28) -> pixel_unshuffle (b, 4, 14, 14) -> conv (b, w, 14, 14)
    -> `blocks` ResBlocks -> stride-2 conv (b, m·w, 7, 7) -> `blocks` ResBlocks -> a middle ResBlock ->
    `blocks` ResBlocks, each reading the matching skip -> upsample + conv (b, w, 14, 14) -> `blocks`
    ResBlocks with skips -> (b, 4, 14, 14) -> pixel_shuffle (b, 1, 28, 28). The embedding of t and the
    label (b, 4w) drives a FiLM in every ResBlock. Most of the work sits at 7×7, where positions are cheap.
    """

    def __init__(self, width: int = 32, mult: int = 2, blocks: int = 1, patch: int = 2,
                 num_labels: int = NUM_CLASSES + 1):
        super().__init__()
        self.patch = patch
        c_in, c1, c2, emb_dim = patch * patch, width, mult * width, 4 * width
        self.time_dim = width
        self.time_mlp = nn.Sequential(nn.Linear(width, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.label_emb = nn.Embedding(num_labels, emb_dim)
        self.stem = nn.Conv2d(c_in, c1, 3, padding=1)
        self.down1 = nn.ModuleList([ResBlock(c1, c1, emb_dim) for _ in range(blocks)])
        self.downsample = nn.Conv2d(c1, c2, 3, stride=2, padding=1)
        self.down2 = nn.ModuleList([ResBlock(c2, c2, emb_dim) for _ in range(blocks)])
        self.mid = ResBlock(c2, c2, emb_dim)
        self.up2 = nn.ModuleList([ResBlock(2 * c2, c2, emb_dim) for _ in range(blocks)])
        self.upsample = nn.Conv2d(c2, c1, 3, padding=1)
        self.up1 = nn.ModuleList([ResBlock(2 * c1, c1, emb_dim) for _ in range(blocks)])
        self.head = nn.Sequential(group_norm(c1), nn.SiLU(), nn.Conv2d(c1, c_in, 3, padding=1))
        nn.init.zeros_(self.head[-1].weight)           # start by predicting 0
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """x (b, 1, 28, 28), t (b,) in [0, 1], labels (b,) in 0..10 (10 = none) -> (b, 1, 28, 28)."""
        emb = self.time_mlp(timestep_embedding(t, self.time_dim)) + self.label_emb(labels)     # (b, 4w)
        h = self.stem(F.pixel_unshuffle(x, self.patch))                                # (b, w, 14, 14)
        skips = []
        for block in self.down1:
            h = block(h, emb)
            skips.append(h)                                                            # (b, w, 14, 14)
        h = self.downsample(h)                                                         # (b, mw, 7, 7)
        for block in self.down2:
            h = block(h, emb)
            skips.append(h)                                                            # (b, mw, 7, 7)
        h = self.mid(h, emb)
        for block in self.up2:
            h = block(torch.cat([h, skips.pop()], 1), emb)                             # (b, mw, 7, 7)
        h = self.upsample(F.interpolate(h, size=skips[-1].shape[-2:], mode="nearest"))  # (b, w, 14, 14)
        for block in self.up1:
            h = block(torch.cat([h, skips.pop()], 1), emb)                             # (b, w, 14, 14)
        return F.pixel_shuffle(self.head(h), self.patch)                               # (b, 1, 28, 28)


# ---- the processes -------------------------------------------------------------------------------------

def stratified_t(b: int, device=None) -> torch.Tensor:
    """b noise levels in (0, 1), one in each of b equal strata: less variance than b independent draws,
    and every bin of t has samples in every batch."""
    return (torch.arange(b, device=device) + torch.rand(b, device=device)) / b        # (b,)


def per_sample(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """t (b,) or () shaped to broadcast over `like` (b, ...)."""
    return t.reshape(-1, *[1] * (like.dim() - 1))


class Process:
    """The schedule x_t = α(t) x₀ + σ(t) ε and the sampler both processes share. Works on any shape
    (b, ...): images here, VAE codes in latent_diffusion.py."""

    def schedule(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(α(t), σ(t)): how much of the clean image and of the noise x_t holds."""
        raise NotImplementedError

    def target(self, x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """What the network learns to predict from (x_t, t)."""
        raise NotImplementedError

    def read(self, x_t: torch.Tensor, prediction: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The clean image x̂₀ and the noise ε̂ that the network's prediction at (x_t, t) implies."""
        raise NotImplementedError

    def noised(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The forward process: clean x₀ (b, ...) taken to noise levels t (b,)."""
        alpha, sigma = (per_sample(s, x0) for s in self.schedule(t))
        return alpha * x0 + sigma * noise

    def velocity(self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """dx_t/dt = α'(t) x̂₀ + σ'(t) ε̂, the deterministic sampler's slope at level t (a scalar < 1)."""
        raise NotImplementedError

    @torch.no_grad()
    def sample(self, predict, z: torch.Tensor, labels, steps: int, sampler: str = "euler",
               generator: torch.Generator | None = None, start: float = 1.0) -> Trajectory:
        """From noise z (b, ...) at t = 1 to t = 0 in `steps` equal steps of t (from x_t at t = `start` < 1,
        for SDEdit). Each step reads x̂₀ and ε̂ from predict(x, t, labels) and moves to the next level s:
        - "euler": x_s = α_s x̂₀ + σ_s ε̂ (DDIM, Song et al. 2020, which on the flow's straight paths is
          exactly Euler's step on dx/dt = v);
        - "heun": that step, then the slope at its end, and x_s = x_t + (s - t) (slope_t + slope_s) / 2
          (Karras et al. 2022, Algorithm 1): second order, so the path bends as the model says between
          levels; the last step, to s = 0, stays Euler's;
        - "ancestral": part of ε̂ replaced by fresh noise with the variance of q(x_s | x_t, x₀), as ancestral
          DDPM sampling does (Ho et al. 2020), for any schedule.
        Returns the trajectory: x_t at every level, and x̂₀ as read at each step."""
        check_range("steps", steps, 1, MAX_STEPS)
        check_choice("sampler", sampler, SAMPLERS)
        ts = torch.linspace(start, 0, steps + 1, device=z.device)
        x, images, estimates = z, [z], []
        for t, s in zip(ts[:-1], ts[1:]):
            x0, eps = self.read(x, predict(x, t.expand(x.shape[0]), labels), t)
            (a_t, s_t), (a_s, s_s) = self.schedule(t), self.schedule(s)
            if sampler == "ancestral":      # the posterior's spread: σ²_{t|s} σ_s² / σ_t², σ²_{t|s} = σ_t² - (α_t / α_s)² σ_s²
                fresh = (s_s / s_t) * (s_t ** 2 - (a_t / a_s) ** 2 * s_s ** 2).clamp_min(0).sqrt()
                noise = torch.randn(x.shape, generator=generator).to(x.device)
                x_s = a_s * x0 + (s_s ** 2 - fresh ** 2).clamp_min(0).sqrt() * eps + fresh * noise
            else:
                x_s = a_s * x0 + s_s * eps
                if sampler == "heun" and s > 0:
                    x0_s, eps_s = self.read(x_s, predict(x_s, s.expand(x.shape[0]), labels), s)
                    x_s = x + (s - t) * (self.velocity(x0, eps, t) + self.velocity(x0_s, eps_s, s)) / 2
            x = x_s
            images.append(x)
            estimates.append(x0)
        return Trajectory(ts, torch.stack(images), torch.stack(estimates))


class FlowMatching(Process):
    """Rectified flow (Liu et al. 2022) / flow matching on the straight path (Lipman et al. 2022):
    x_t = (1 - t) x₀ + t ε, and the network predicts the velocity v = ε - x₀."""

    def schedule(self, t):
        return 1 - t, t

    def target(self, x0, noise):
        return noise - x0

    def read(self, x_t, v, t):
        t = per_sample(t, x_t)
        return x_t - t * v, x_t + (1 - t) * v

    def velocity(self, x0, eps, t):
        return eps - x0


class GaussianDiffusion(Process):
    """DDPM (Ho et al. 2020) in continuous time with the cosine schedule (Nichol & Dhariwal 2021):
    ᾱ(t) = cos²(π/2 · (t + s)/(1 + s)) / cos²(π/2 · s/(1 + s)), s = 0.008, kept ≥ 1e-4 so that x̂₀ is finite
    at t = 1; the network predicts ε. x̂₀ is clipped to [-1, 1] and ε̂ read again from it (as lucidrains'
    clip_denoised), which keeps few-step samples in range."""

    def __init__(self, s: float = 0.008, min_alpha_bar: float = 1e-4):
        self.s, self.min_alpha_bar = s, min_alpha_bar

    def schedule(self, t):
        f = lambda u: torch.cos((u + self.s) / (1 + self.s) * math.pi / 2) ** 2
        alpha_bar = (f(t) / f(torch.zeros_like(t))).clamp(self.min_alpha_bar, 1.0)
        return alpha_bar.sqrt(), (1 - alpha_bar).sqrt()

    def target(self, x0, noise):
        return noise

    def read(self, x_t, eps, t):
        alpha, sigma = (per_sample(s, x_t) for s in self.schedule(t))
        x0 = ((x_t - sigma * eps) / alpha).clamp(-1, 1)
        return x0, (x_t - alpha * x0) / sigma

    def velocity(self, x0, eps, t):
        # α(t) = cos(c(t)) / cos(c(0)) with c(t) = π/2 · (t + s)/(1 + s), so α' = -sin(c(t)) c' / cos(c(0));
        # σ = √(1 - α²), so σ' = -α α' / σ (t < 1, where the floor on ᾱ does not bind, and t > 0)
        alpha, sigma = self.schedule(t)
        c = lambda u: (u + self.s) / (1 + self.s) * math.pi / 2
        d_alpha = -math.sin(c(float(t))) * (math.pi / 2) / (1 + self.s) / math.cos(c(0.0))
        return d_alpha * x0 - alpha * d_alpha / sigma * eps


def make_process(objective: str) -> Process:
    return FlowMatching() if objective == "flow" else GaussianDiffusion()


def guided(net: nn.Module, guidance: float):
    """The network with classifier-free guidance folded in: p̂ = p_u + w (p_c - p_u), the conditional and
    the unconditional prediction from one forward of 2b inputs."""
    check_range("guidance", guidance, 0.0, MAX_GUIDANCE, kind=float)

    def predict(x, t, labels):
        if guidance == 1:
            return net(x, t, labels)
        if guidance == 0:
            return net(x, t, torch.full_like(labels, NULL_LABEL))
        cond, uncond = net(torch.cat([x, x]), torch.cat([t, t]),
                           torch.cat([labels, torch.full_like(labels, NULL_LABEL)])).chunk(2)
        return uncond + guidance * (cond - uncond)
    return predict


def denoising_loss(net: nn.Module, process: Process, x0: torch.Tensor, labels: torch.Tensor,
                   label_dropout: float) -> dict[str, torch.Tensor]:
    """The training loss at stratified noise levels (with labels dropped for guidance), and the same loss
    in LOSS_BINS equal bins of t, so a student sees which noise levels are still hard."""
    b = x0.shape[0]
    t = stratified_t(b, x0.device)                                                    # (b,)
    noise = torch.randn_like(x0)
    labels = torch.where(torch.rand(b, device=x0.device) < label_dropout, NULL_LABEL, labels)
    error = (net(process.noised(x0, t, noise), t, labels).float() - process.target(x0, noise)).pow(2)
    per_image = error.flatten(1).mean(1)                                              # (b,)
    bins = (t * LOSS_BINS).long().clamp(max=LOSS_BINS - 1)
    binned = torch.zeros(LOSS_BINS, device=x0.device).index_add_(0, bins, per_image.detach())
    binned /= torch.bincount(bins, minlength=LOSS_BINS).clamp_min(1)
    return {"loss": per_image.mean(), **{f"loss_t{i}": binned[i] for i in range(LOSS_BINS)}}


# ---- the model -----------------------------------------------------------------------------------------

class Diffusion(GenerativeModel):
    name = "diffusion"
    summary = "Diffusion: a U-Net learns to take the noise out of digits; sampling starts from pure noise and removes it step by step."
    conditional = True
    panels = LOSS_PANELS
    settings = (Setting("objective", "What the network learns", default="flow", choices=OBJECTIVES,
                        choice_labels={"flow": "flow matching (velocity)", "ddpm": "DDPM (the noise)"},
                        help="Flow matching: the straight-line velocity from a digit to its noise (Lipman et al. "
                             "2022). DDPM: the noise that was added, on a cosine schedule (Ho et al. 2020)."),)
    # small batches win on 2 CPU cores, as for the GANs; the live grid is drawn every 100 steps with 8
    # sampling steps, so that it costs the training little (bench/time_to_digits.py measures both)
    train_defaults = dict(steps=2000, batch_size=32, lr=2e-3, beta1=0.9, sample_every=100)

    def __init__(self, config: DiffusionConfig | None = None):
        super().__init__(config or DiffusionConfig())
        c = self.config
        # channels_last: oneDNN's convolutions at these small sizes run faster on a CPU in that layout (a 20-step
        # trajectory 141 -> 118 ms, a training step 67 -> 63 ms at batch 64)
        self.net = UNet(c.width, c.mult, c.blocks, c.patch).to(memory_format=torch.channels_last)
        self.process = make_process(c.objective)
        if c.ema_decay > 0:
            self.net_ema = copy.deepcopy(self.net).requires_grad_(False)
            self.register_buffer("ema_updates", torch.zeros((), dtype=torch.long))

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def explore_sections(self) -> tuple[Section, ...]:
        return (Section.TRAJECTORY, Section.MORPH, Section.FORWARD_PROCESS, Section.DRAWING)

    @property
    def redraw(self) -> Redraw:
        return Redraw.EDIT

    @property
    def sampling_settings(self) -> tuple[Setting, ...]:
        return sampling_settings(self.config)

    def describe(self) -> list[str]:
        return super().describe() + [f"trained by {'flow matching' if self.config.objective == 'flow' else 'DDPM'}"]

    # ---- sampling ----
    def trajectory(self, z: torch.Tensor, labels: torch.Tensor | None = None, steps: int | None = None,
                   guidance: float | None = None, sampler: str | None = None) -> Trajectory:
        """z (b, 784) standard normal, the starting noise image, to images (b, 1, 28, 28) in [-1, 1], and the
        way there. Eval mode samples the weight average. Stochastic noise comes from a fixed seed, so the
        same z gives the same image."""
        labels = self.default_labels(z.shape[0]) if labels is None else labels
        net = self.net_ema if not self.training and self.config.ema_decay > 0 else self.net
        w = self.config.guidance if guidance is None else guidance
        steps = self.config.sample_steps if steps is None else steps
        path = self.process.sample(guided(net, w), z.view(-1, 1, 28, 28), labels, steps,
                                   sampler or self.config.sampler, torch.Generator().manual_seed(0))
        path.images[-1].clamp_(-1, 1)                                                # (k + 1, b, 1, 28, 28)
        return path

    def edit(self, x: torch.Tensor, labels: torch.Tensor | None = None, strength: float = 0.5,
             noise: torch.Tensor | None = None, steps: int | None = None, guidance: float | None = None) -> Trajectory:
        """SDEdit (Meng et al. 2021): digits x (b, 1, 28, 28) in [-1, 1], taken by the forward process to
        t = strength with `noise` (b, 784), the kind of z that sample() starts from, then denoised by the
        deterministic sampler in that share of `steps` (at least one). A low strength keeps the drawing and
        tidies its strokes; 1 keeps nothing of it."""
        check_range("strength", strength, 0.05, 1.0, kind=float)
        steps = self.config.sample_steps if steps is None else steps
        check_range("steps", steps, 1, MAX_STEPS)
        labels = self.default_labels(x.shape[0]) if labels is None else labels
        noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(0)) if noise is None else noise
        x_t = self.noised(x, torch.full((x.shape[0],), strength), noise.reshape(x.shape).to(x.device))
        net = self.net_ema if not self.training and self.config.ema_decay > 0 else self.net
        w = self.config.guidance if guidance is None else guidance
        path = self.process.sample(guided(net, w), x_t, labels, max(1, round(steps * strength)), start=strength)
        path.images[-1].clamp_(-1, 1)
        return path

    def sample(self, z, labels=None, steps=None, guidance=None, sampler=None):
        return self.trajectory(z, labels, steps, guidance, sampler).images[-1]

    def noised(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """A real digit x₀ (b, 1, 28, 28) taken to noise levels t (b,): the forward process."""
        return self.process.noised(x0, t, noise)

    def schedule(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.process.schedule(t)

    # ---- training ----
    def configure_optimizers(self, lr, betas):
        return {"net": adam(self.net.parameters(), lr, betas)}

    def train_step(self, x, y, optimizers, autocast):
        with autocast:
            losses = denoising_loss(self.net, self.process, x, y, self.config.label_dropout)
        optimizers["net"].zero_grad(set_to_none=True)
        losses["loss"].backward()
        optimizers["net"].step()
        if self.config.ema_decay > 0:
            update_average(self.net_ema, self.net, self.ema_updates, self.config.ema_decay)
        return {k: v.detach() for k, v in losses.items()}
