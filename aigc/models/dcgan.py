"""DCGAN (Radford, Metz & Chintala 2015) sized for 28×28: 7×7 → 14×14 → 28×28 with strided convolutions,
and the conditional pair built from it that the conditional and self-conditioned GANs share."""
from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn as nn

from .base import GAN, ModelConfig, check_range, features_product, projection_logits
from .image_convs import ChannelsLast, ImageConv2d, ImageConvTranspose2d


@dataclass
class DCGANConfig(ModelConfig):
    latent_dim: int = 64
    width: int = 32          # channels of the 14×14 layer; the 7×7 layer has 2×width
    ema_decay: float = 0.999  # generator weight averaging; 0 = off
    pack: int = 1             # PacGAN: D judges this many samples at once (1 = the plain DCGAN)
    clusters: int = 0         # self-conditioned: k-means groups of the training images G and D are told; 0 = off

    def validate(self):
        check_range("ema_decay", self.ema_decay, 0.0, 0.9999, kind=float)
        check_range("latent_dim", self.latent_dim, 1, 1024)
        check_range("width", self.width, 4, 256)
        check_range("pack", self.pack, 1, 8)
        check_range("clusters", self.clusters, 0, 100)
        if self.clusters and self.pack > 1:
            raise ValueError("clusters and pack > 1 can't be combined: a packed D judges several images at "
                             "once, a self-conditioned one each against its own group")


class DCGenerator(nn.Module):
    def __init__(self, in_dim: int, width: int):
        super().__init__()
        self.project = nn.Sequential(
            nn.Linear(in_dim, 2 * width * 7 * 7, bias=False),
            nn.Unflatten(1, (2 * width, 7, 7)), nn.BatchNorm2d(2 * width), nn.ReLU(True),   # (b, 2w, 7, 7)
        )
        self.to_channels_last = ChannelsLast()                                               # no parameters
        self.upsample = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False),
            nn.BatchNorm2d(width), nn.ReLU(True),                                            # (b, w, 14, 14)
            ImageConvTranspose2d(width), nn.Tanh(),                                          # (b, 1, 28, 28)
        )

    def forward(self, h):
        return self.upsample(self.to_channels_last(self.project(h)))


class DCDiscriminator(nn.Module):
    """Returns logits (b,); its features (b, 2w, 7, 7) also feed the projection discriminator."""

    def __init__(self, width: int, in_channels: int = 1):
        super().__init__()
        self.features = nn.Sequential(
            ImageConv2d(width) if in_channels == 1 else nn.Conv2d(in_channels, width, 4, 2, 1),
            nn.LeakyReLU(0.2, True),                                                         # (b, w, 14, 14)
            nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False),
            nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2, True),                              # (b, 2w, 7, 7)
        )
        self.head = nn.Linear(2 * width * 7 * 7, 1)                                          # over the flattened features

    def forward(self, x):
        return (features_product(self.features(x), self.head.weight) + self.head.bias).squeeze(1)


class ConditionalGenerator(nn.Module):
    """G reads [z, embed(label)]."""

    def __init__(self, latent_dim: int, width: int, num_labels: int, embed_dim: int = 16):
        super().__init__()
        self.embed = nn.Embedding(num_labels, embed_dim)
        self.net = DCGenerator(latent_dim + embed_dim, width)

    def forward(self, z, labels):
        return self.net(torch.cat([z, self.embed(labels)], dim=1))   # (b, 1, 28, 28)


class ProjectionDiscriminator(nn.Module):
    """A projection discriminator (Miyato & Koyama 2018): logit = w·φ(x) + embed(y)·φ(x), the label
    entering as an inner product with the features."""

    def __init__(self, width: int, num_labels: int):
        super().__init__()
        self.body = DCDiscriminator(width)
        self.embed = nn.Embedding(num_labels, 2 * width * 7 * 7)

    def forward(self, x, labels):
        h = self.body.features(x)                                          # (b, 2w, 7, 7)
        return projection_logits(h, self.body.head, self.embed, labels)    # (b,)


class DCGAN(GAN):
    name = "dcgan"
    summary = "Convolutional GAN (DCGAN): transposed convolutions draw the digit, strided convolutions judge it."
    # the Train page's recipe: still no labels, but 30 groups found by k-means and the conditional GAN's
    # batch and learning rate, which draw every kind of digit soonest on a CPU (bench/time_to_digits.py --strict)
    train_defaults = dict(steps=1500, batch_size=128, lr=3e-3, beta1=0.5)
    settings = (replace(GAN.clusters_setting, default=30),)

    def __init__(self, config: DCGANConfig | None = None):
        super().__init__(config or DCGANConfig())
        c = self.config
        if c.clusters:
            self.generator = ConditionalGenerator(c.latent_dim, c.width, c.clusters)
            self.discriminator = ProjectionDiscriminator(c.width, c.clusters)
        else:
            self.generator = DCGenerator(c.latent_dim, c.width)
            self.discriminator = DCDiscriminator(c.width, in_channels=c.pack)
        self.apply(dcgan_init)
        self.init_ema()
        self.init_clusters()

    def discriminate(self, x, labels=None):
        """PacGAN (Lin et al. 2018): with pack = m, D sees m samples stacked as channels and gives one
        logit for all of them, so a G that repeats itself is easier to catch: it counters mode collapse,
        which for MNIST shows as some digits drawn far more often than others. (b, 1, 28, 28) -> (b // m,)"""
        m = self.config.pack
        if m == 1:
            return super().discriminate(x, labels)
        b = x.shape[0] - x.shape[0] % m
        return self.discriminator(x[:b].reshape(b // m, m, *x.shape[2:]))


def dcgan_init(m: nn.Module) -> None:
    """Radford et al.: weights ~ N(0, 0.02); BatchNorm scales ~ N(1, 0.02)."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Embedding):
        nn.init.normal_(m.weight, 0.0, 0.02)
