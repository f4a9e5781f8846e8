"""Latent diffusion (Rombach et al. 2022, Stable Diffusion's design) in miniature: a class-conditional flow
over the codes of a trained VAE, whose decoder then draws the digit.

The VAE squeezes each digit into a few numbers (16 for the shipped vae, 2 for vae2d). A small residual
MLP learns rectified flow (Liu et al. 2022) from N(0, I) to the codes the encoder gives real digits of the
chosen label: a learned prior over the VAE's latent space, where the VAE itself samples from Gaussians
fitted after training. Codes are standardised per dimension (statistics fitted when training starts), so
the flow sees data of unit scale whatever the VAE's β.

It is built on a VAE checkpoint (`base` when training starts, aigc.models.build_model): the VAE's settings
go into this model's config (vae_args) and its weights into this model's state_dict under "vae.", frozen,
so a latent diffusion checkpoint rebuilds itself without the VAE's file.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import NUM_CLASSES, GenerativeModel, ModelConfig, adam, check_choice, check_range
from .declarations import Redraw, Section, Setting, Trajectory
from .diffusion import (LOSS_PANELS, MAX_STEPS, SAMPLERS, FlowMatching, denoising_loss, guided, sampling_settings,
                        timestep_embedding)
from .vae import VAE, VAEConfig


@dataclass
class LatentDiffusionConfig(ModelConfig):
    vae_args: dict = field(default_factory=dict)   # the settings of the VAE it is built on
    width: int = 256                 # hidden width of the residual MLP
    depth: int = 3                   # residual blocks
    label_dropout: float = 0.1       # classifier-free guidance: share of labels replaced by "no label"
    sample_steps: int = 10           # steps when none are asked for (the live grid)
    guidance: float = 1.0            # guidance when none is asked for
    sampler: str = "euler"           # sampler when none is asked for (diffusion.SAMPLERS)

    def validate(self):
        VAEConfig.from_dict(self.vae_args)                 # raises on a bad VAE setting
        check_range("width", self.width, 16, 2048)
        check_range("depth", self.depth, 1, 12)
        check_range("label_dropout", self.label_dropout, 0.0, 1.0, kind=float)
        check_range("sample_steps", self.sample_steps, 1, 100)
        check_range("guidance", self.guidance, 0.0, 10.0, kind=float)
        check_choice("sampler", self.sampler, SAMPLERS)


class ResidualMLPBlock(nn.Module):
    """LayerNorm with a FiLM from the t/label embedding, Linear-SiLU-Linear, plus the skip; starts as the
    identity."""

    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False)
        self.film = nn.Linear(width, 2 * width)
        self.fc1 = nn.Linear(width, 2 * width)
        self.fc2 = nn.Linear(2 * width, width)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, h, emb):
        scale, shift = self.film(emb).chunk(2, dim=1)                                 # (b, width) each
        return h + self.fc2(F.silu(self.fc1(self.norm(h) * (1 + scale) + shift)))


class FlowMLP(nn.Module):
    """Codes x (b, d), t (b,), labels (b,) in 0..10 (10 = none) -> velocity (b, d)."""

    def __init__(self, dim: int, width: int = 256, depth: int = 3, num_labels: int = NUM_CLASSES + 1):
        super().__init__()
        self.time_dim = 64
        self.time_mlp = nn.Sequential(nn.Linear(self.time_dim, width), nn.SiLU(), nn.Linear(width, width))
        self.label_emb = nn.Embedding(num_labels, width)
        self.inp = nn.Linear(dim, width)
        self.blocks = nn.ModuleList([ResidualMLPBlock(width) for _ in range(depth)])
        self.out = nn.Sequential(nn.LayerNorm(width), nn.SiLU(), nn.Linear(width, dim))
        nn.init.zeros_(self.out[-1].weight)
        nn.init.zeros_(self.out[-1].bias)

    def forward(self, x, t, labels):
        emb = self.time_mlp(timestep_embedding(t, self.time_dim)) + self.label_emb(labels)    # (b, width)
        h = self.inp(x)                                                                # (b, width)
        for block in self.blocks:
            h = block(h, emb)
        return self.out(h)                                                             # (b, d)


class LatentDiffusion(GenerativeModel):
    name = "latent_diffusion"
    summary = "Latent diffusion: a small network learns to draw a VAE's codes out of noise, and the VAE's decoder draws the digit."
    conditional = True
    base_model = "vae"
    panels = LOSS_PANELS
    train_defaults = dict(steps=2000, batch_size=256, lr=2e-3, beta1=0.9)

    def __init__(self, config: LatentDiffusionConfig | None = None):
        super().__init__(config or LatentDiffusionConfig())
        self.vae = VAE(VAEConfig.from_dict(self.config.vae_args)).requires_grad_(False).eval()
        d = self.vae.latent_dim
        self.net = FlowMLP(d, self.config.width, self.config.depth)
        self.process = FlowMatching()
        self.register_buffer("code_mean", torch.zeros(d))             # standardisation of the codes
        self.register_buffer("code_scale", torch.ones(d))
        self.register_buffer("codes_fitted", torch.zeros((), dtype=torch.bool))
        self._codes_ready = False           # a Python flag: reading the buffer every step would sync a GPU

    @classmethod
    def args_from_base(cls, base: dict) -> dict:
        return {"vae_args": dict(base["model_args"])}

    def load_base(self, base: dict) -> None:
        self.vae.load_state_dict(base["state_dict"])

    @property
    def latent_dim(self) -> int:
        return self.vae.latent_dim

    @property
    def explore_sections(self) -> tuple[Section, ...]:
        return (Section.TRAJECTORY, Section.MORPH) + ((Section.LATENT_MAP,) if self.latent_dim == 2 else ()) + (
            Section.DRAWING,)

    @property
    def redraw(self) -> Redraw:
        return Redraw.EDIT

    @property
    def sampling_settings(self) -> tuple[Setting, ...]:
        return sampling_settings(self.config)

    def describe(self) -> list[str]:
        return super().describe() + [f"a flow over the codes of a VAE with latent size {self.latent_dim}"]

    def train(self, mode: bool = True):
        super().train(mode)
        self.vae.eval()                     # frozen
        return self

    # ---- the VAE's latent space ----
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The VAE's q(z|x): mean and log-variance (b, d) of images (b, 1, 28, 28)."""
        return self.vae.encode(x)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """VAE codes (b, d) -> images (b, 1, 28, 28) in [-1, 1]."""
        return self.vae.decode(codes)

    @torch.no_grad()
    def start_training(self, data) -> None:
        """Fits the codes' per-dimension mean and scale to the encoder's means of the training set, once."""
        if not self.codes_fitted:
            means = torch.cat([self.vae.encode(data.batch(index)[0])[0]
                               for index in torch.arange(len(data), device=data.labels.device).split(10_000)])
            self.code_mean.copy_(means.mean(0))
            self.code_scale.copy_(means.std(0).clamp_min(1e-3))
            self.codes_fitted.fill_(True)
        self._codes_ready = True

    # ---- sampling ----
    @torch.no_grad()
    def latent_paths(self, z, labels=None, steps=None, guidance=None, sampler=None) -> Trajectory:
        """z (b, d) ~ N(0, I) to VAE codes (b, d): the way there through the latent space, x_t and the
        estimate of the code at every step."""
        labels = self.default_labels(z.shape[0]) if labels is None else labels
        w = self.config.guidance if guidance is None else guidance
        steps = self.config.sample_steps if steps is None else steps
        path = self.process.sample(guided(self.net, w), z, labels, steps, sampler or self.config.sampler,
                                   torch.Generator().manual_seed(0))
        return Trajectory(path.t, path.images * self.code_scale + self.code_mean,
                          path.estimates * self.code_scale + self.code_mean)

    @torch.no_grad()
    def edit(self, x, labels=None, strength=0.5, noise=None, steps=None, guidance=None) -> Trajectory:
        """SDEdit (Meng et al. 2021) on the VAE's codes: images x (b, 1, 28, 28) encoded, their codes taken
        to t = strength with `noise` (b, d), denoised in that share of `steps` (at least one) and decoded."""
        check_range("strength", strength, 0.05, 1.0, kind=float)
        steps = self.config.sample_steps if steps is None else steps
        check_range("steps", steps, 1, MAX_STEPS)
        labels = self.default_labels(x.shape[0]) if labels is None else labels
        codes = (self.encode(x)[0] - self.code_mean) / self.code_scale                      # (b, d)
        noise = torch.randn(codes.shape, generator=torch.Generator().manual_seed(0)) if noise is None else noise
        w = self.config.guidance if guidance is None else guidance
        path = self.process.sample(guided(self.net, w), self.process.noised(codes, torch.full((x.shape[0],), strength),
                                   noise.to(x.device)), labels, max(1, round(steps * strength)), start=strength)
        draw = lambda c: self.decode((c * self.code_scale + self.code_mean).flatten(0, 1)).unflatten(0, c.shape[:2])
        return Trajectory(path.t, draw(path.images), draw(path.estimates))

    def trajectory(self, z, labels=None, steps=None, guidance=None, sampler=None) -> Trajectory:
        """The same way, each code drawn by the VAE's decoder."""
        path = self.latent_paths(z, labels, steps, guidance, sampler)
        draw = lambda codes: self.decode(codes.flatten(0, 1)).unflatten(0, codes.shape[:2])    # (k, b, 1, 28, 28)
        return Trajectory(path.t, draw(path.images), draw(path.estimates))

    @torch.no_grad()
    def sample(self, z, labels=None, steps=None, guidance=None, sampler=None):
        return self.decode(self.latent_paths(z, labels, steps, guidance, sampler).images[-1])

    # ---- training ----
    def configure_optimizers(self, lr, betas):
        return {"net": adam(self.net.parameters(), lr, betas)}

    def train_step(self, x, y, optimizers, autocast):
        if not self._codes_ready:
            raise RuntimeError("the codes' statistics are not fitted yet: call start_training(data) first")
        with torch.no_grad():
            codes = (self.vae.encode(x)[0] - self.code_mean) / self.code_scale              # (b, d)
        with autocast:
            losses = denoising_loss(self.net, self.process, codes, y, self.config.label_dropout)
        optimizers["net"].zero_grad(set_to_none=True)
        losses["loss"].backward()
        optimizers["net"].step()
        return {k: v.detach() for k, v in losses.items()}
