"""The textbook fully connected GAN (Goodfellow et al. 2014), in the shape most courses teach."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import GAN, ModelConfig, check_range, projection_logits


@dataclass
class MLPGANConfig(ModelConfig):
    latent_dim: int = 100
    dropout: float = 0.3
    ema_decay: float = 0.999  # generator weight averaging; 0 = off
    clusters: int = 0         # self-conditioned: k-means groups of the training images G and D are told; 0 = off

    def validate(self):
        check_range("ema_decay", self.ema_decay, 0.0, 0.9999, kind=float)
        check_range("latent_dim", self.latent_dim, 1, 1024)
        check_range("dropout", self.dropout, 0.0, 0.9, kind=float)
        check_range("clusters", self.clusters, 0, 100)


class MLPConditionalGenerator(nn.Module):
    """G reads [z, one-hot(label)] (b, d + k)."""

    def __init__(self, net: nn.Module, num_labels: int):
        super().__init__()
        self.net, self.num_labels = net, num_labels

    def forward(self, z, labels):
        return self.net(torch.cat([z, F.one_hot(labels, self.num_labels).to(z.dtype)], 1))


class MLPProjectionDiscriminator(nn.Module):
    """D's last hidden layer φ(x) (b, 256) also meets embed(label): logit = w·φ(x) + embed(y)·φ(x)
    (Miyato & Koyama 2018, as dcgan's ProjectionDiscriminator)."""

    def __init__(self, net: nn.Sequential, num_labels: int):
        super().__init__()
        self.net = net
        self.embed = nn.Embedding(num_labels, net[-2].in_features)
        nn.init.zeros_(self.embed.weight)       # starts as the unconditional D

    def forward(self, x, labels):
        h = self.net[:-2](x)                                     # (b, 256)
        return projection_logits(h, self.net[-2], self.embed, labels)   # (b,)


class MLPGAN(GAN):
    name = "mlp_gan"
    summary = "Fully connected GAN: the textbook 100→256→512→1024→784 generator against a 784→1024→512→256→1 critic."
    train_defaults = dict(steps=3000, batch_size=64, lr=2e-4, beta1=0.5)
    settings = (GAN.clusters_setting,)

    def __init__(self, config: MLPGANConfig | None = None):
        super().__init__(config or MLPGANConfig())
        c = self.config
        self.generator = nn.Sequential(
            nn.Linear(c.latent_dim + c.clusters, 256), nn.LeakyReLU(0.2),
            nn.Linear(256, 512), nn.LeakyReLU(0.2),
            nn.Linear(512, 1024), nn.LeakyReLU(0.2),
            nn.Linear(1024, 784), nn.Tanh(),
            nn.Unflatten(1, (1, 28, 28)),                        # (b, 1, 28, 28)
        )
        self.discriminator = nn.Sequential(
            nn.Flatten(),                                        # (b, 784)
            nn.Linear(784, 1024), nn.LeakyReLU(0.2), nn.Dropout(c.dropout),
            nn.Linear(1024, 512), nn.LeakyReLU(0.2), nn.Dropout(c.dropout),
            nn.Linear(512, 256), nn.LeakyReLU(0.2), nn.Dropout(c.dropout),
            nn.Linear(256, 1), nn.Flatten(0),                    # (b,) logits
        )
        if c.clusters:
            self.generator = MLPConditionalGenerator(self.generator, c.clusters)
            self.discriminator = MLPProjectionDiscriminator(self.discriminator, c.clusters)
        self.init_ema()
        self.init_clusters()
