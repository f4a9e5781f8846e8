"""Variational autoencoder (Kingma & Welling 2013) with a fully connected encoder and decoder.

Reconstruction term: Bernoulli log-likelihood, i.e. BCE-with-logits summed over the 784 pixels.
MNIST pixels are nearly binary, this is the likelihood the original paper used for MNIST, and unlike
MSE with a fixed variance it needs no hand-set weight against the KL term.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import GenerativeModel, ModelConfig, check_range


@dataclass
class VAEConfig(ModelConfig):
    latent_dim: int = 16      # 2 gives a latent map you can look at directly
    hidden: int = 512
    beta: float = 1.0         # weight of the KL term (1 = the ELBO; >1 = beta-VAE)

    def validate(self):
        check_range("latent_dim", self.latent_dim, 1, 256)
        check_range("hidden", self.hidden, 16, 4096)
        check_range("beta", self.beta, 0.0, 100.0, kind=float)


class VAE(GenerativeModel):
    name = "vae"
    summary = "Variational autoencoder: squeezes each digit to a few numbers and learns to draw it back from them."
    metric_names = ("loss", "recon", "kl")
    train_defaults = dict(steps=2000, batch_size=128, lr=1e-3, beta1=0.9)

    def __init__(self, config: VAEConfig | None = None):
        super().__init__(config or VAEConfig())
        c = self.config
        self.encoder = nn.Sequential(
            nn.Flatten(), nn.Linear(784, c.hidden), nn.ReLU(True),
            nn.Linear(c.hidden, c.hidden // 2), nn.ReLU(True),
            nn.Linear(c.hidden // 2, 2 * c.latent_dim),                      # (b, 2 * latent): mu, log var
        )
        self.decoder = nn.Sequential(
            nn.Linear(c.latent_dim, c.hidden // 2), nn.ReLU(True),
            nn.Linear(c.hidden // 2, c.hidden), nn.ReLU(True),
            nn.Linear(c.hidden, 784), nn.Unflatten(1, (1, 28, 28)),          # (b, 1, 28, 28) logits
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (b, 1, 28, 28) in [-1, 1] -> mean and log-variance of q(z|x), each (b, latent_dim)."""
        mu, logvar = self.encoder((x + 1) / 2).chunk(2, dim=1)
        return mu, logvar.clamp(-30, 20)

    def decode_logits(self, z):
        return self.decoder(z)

    def sample(self, z, labels=None):
        return torch.sigmoid(self.decode_logits(z)) * 2 - 1                  # Bernoulli means, in [-1, 1]

    def configure_optimizers(self, lr, betas):
        return {"vae": torch.optim.Adam(self.parameters(), lr=lr, betas=betas)}

    def train_step(self, x, y, optimizers, autocast):
        target = (x + 1) / 2                                                 # (b, 1, 28, 28) in [0, 1]
        with autocast:
            mu, logvar = self.encode(x)
            z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()             # reparameterisation trick
            logits = self.decode_logits(z).float()
        b = x.shape[0]
        recon = F.binary_cross_entropy_with_logits(logits, target, reduction="sum") / b
        kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).float().sum() / b   # KL(q(z|x) || N(0, I))
        loss = recon + self.config.beta * kl
        optimizers["vae"].zero_grad(set_to_none=True)
        loss.backward()
        optimizers["vae"].step()
        return {"loss": loss.detach(), "recon": recon.detach(), "kl": kl.detach()}
