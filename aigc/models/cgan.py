"""Class-conditional DCGAN: G reads [z, embed(y)]; D is a projection discriminator (Miyato & Koyama 2018)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from .base import GAN, NUM_CLASSES, ModelConfig, check_range
from .dcgan import DCDiscriminator, DCGenerator, dcgan_init


@dataclass
class CGANConfig(ModelConfig):
    latent_dim: int = 64
    width: int = 32
    embed_dim: int = 16
    ema_decay: float = 0.999  # generator weight averaging; 0 = off

    def validate(self):
        check_range("ema_decay", self.ema_decay, 0.0, 0.9999, kind=float)
        check_range("latent_dim", self.latent_dim, 1, 1024)
        check_range("width", self.width, 4, 256)
        check_range("embed_dim", self.embed_dim, 1, 256)


class ConditionalGenerator(nn.Module):
    def __init__(self, c: CGANConfig):
        super().__init__()
        self.embed = nn.Embedding(NUM_CLASSES, c.embed_dim)
        self.net = DCGenerator(c.latent_dim + c.embed_dim, c.width)

    def forward(self, z, labels):
        return self.net(torch.cat([z, self.embed(labels)], dim=1))   # (b, 1, 28, 28)


class ProjectionDiscriminator(nn.Module):
    """logit = w·φ(x) + embed(y)·φ(x): the class enters as an inner product with the features."""

    def __init__(self, c: CGANConfig):
        super().__init__()
        self.body = DCDiscriminator(c.width)
        self.embed = nn.Embedding(NUM_CLASSES, 2 * c.width * 7 * 7)

    def forward(self, x, labels):
        h = self.body.features(x)                                          # (b, 2w*49)
        return self.body.head(h).squeeze(1) + (self.embed(labels) * h).sum(1)


class CGAN(GAN):
    name = "cgan"
    summary = "Conditional GAN: the same convolutional GAN told which digit to draw, so you pick the digit."
    conditional = True
    # tuned on 2 CPU cores, where small batches win: digits of every class after 24-26 s of training at
    # batch 32 against 44-46 s at batch 128 (bench/time_to_digits.py --set batch_size=...); 3,000 steps ≈ 2 min
    train_defaults = dict(steps=3000, batch_size=32, lr=5e-4, beta1=0.5)

    def __init__(self, config: CGANConfig | None = None):
        super().__init__(config or CGANConfig())
        self.generator = ConditionalGenerator(self.config)
        self.discriminator = ProjectionDiscriminator(self.config)
        self.apply(dcgan_init)
        self.init_ema()
