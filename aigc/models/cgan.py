"""Class-conditional DCGAN: G reads [z, embed(y)]; D is a projection discriminator (Miyato & Koyama 2018)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import GAN, NUM_CLASSES, ModelConfig, check_range
from .dcgan import ConditionalGenerator, ProjectionDiscriminator, dcgan_init


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


class CGAN(GAN):
    name = "cgan"
    summary = "Conditional GAN: the same convolutional GAN told which digit to draw, so you pick the digit."
    conditional = True
    # tuned on 2 CPU cores: batches of 128 at a learning rate raised with them draw digits as soon as any batch
    # did (4-5 s with bf16) and move 1.3x the images a second of batches of 32 (bench/time_to_digits.py
    # --set batch_size=... --set lr=..., bench/step_cost.py; the README's Measured section)
    train_defaults = dict(steps=1500, batch_size=128, lr=3e-3, beta1=0.5)

    def __init__(self, config: CGANConfig | None = None):
        super().__init__(config or CGANConfig())
        c = self.config
        self.generator = ConditionalGenerator(c.latent_dim, c.width, NUM_CLASSES, c.embed_dim)
        self.discriminator = ProjectionDiscriminator(c.width, NUM_CLASSES)
        self.apply(dcgan_init)
        self.init_ema()
