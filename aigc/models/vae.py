"""Variational autoencoder (Kingma & Welling 2013) with a fully connected encoder and decoder.

Reconstruction term: Bernoulli log-likelihood, i.e. BCE-with-logits summed over the 784 pixels.
MNIST pixels are nearly binary, this is the likelihood the original paper used for MNIST, and unlike
MSE with a fixed variance it needs no hand-set weight against the KL term.

Sampling: decoding z ~ N(0, I) lands in the "holes" between the regions the encoder actually uses
(the prior and the aggregate posterior disagree), which gives smeared, in-between digits. After
training, fit_prior() fits one Gaussian per digit to the encoder's means on the training set — an
ex-post density estimate as in Ghosh et al. 2020, "From Variational to Deterministic Autoencoders",
here with the labels MNIST has — and sample() then moves N(0, I) noise into the chosen digit's
Gaussian. That also makes the fitted VAE conditional: you pick the digit, as with the cGAN.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import NUM_CLASSES, GenerativeModel, ModelConfig, check_range


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
        # per-digit Gaussians over the latent space, set by fit_prior(); until then samples use N(0, I)
        for name, value in self._unfitted_prior().items():
            self.register_buffer(name, value)

    def _unfitted_prior(self) -> dict[str, torch.Tensor]:
        d = self.config.latent_dim
        return {"prior_mean": torch.zeros(NUM_CLASSES, d),                           # (10, d)
                "prior_scale_tril": torch.eye(d).repeat(NUM_CLASSES, 1, 1),          # (10, d, d)
                "prior_fitted": torch.zeros((), dtype=torch.bool)}

    @property
    def conditional(self) -> bool:
        return bool(self.prior_fitted)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints written before the fitted prior existed load as unfitted (samples from N(0, I))
        for name, default in self._unfitted_prior().items():
            state_dict.setdefault(prefix + name, default)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (b, 1, 28, 28) in [-1, 1] -> mean and log-variance of q(z|x), each (b, latent_dim)."""
        mu, logvar = self.encoder((x + 1) / 2).chunk(2, dim=1)
        return mu, logvar.clamp(-30, 20)

    def decode_logits(self, z):
        return self.decoder(z)

    def decode(self, z):
        """A point of the latent space itself (b, d) -> its image (b, 1, 28, 28): Bernoulli means in [-1, 1]."""
        return torch.sigmoid(self.decode_logits(z)) * 2 - 1

    def sample(self, z, labels=None):
        """z ~ N(0, I) (b, d) -> images. Once fit_prior() has run, z is moved into each label's Gaussian."""
        if self.conditional:
            if labels is None:
                labels = self.default_labels(z.shape[0])
            z = self.prior_mean[labels] + (self.prior_scale_tril[labels] @ z.unsqueeze(-1)).squeeze(-1)
        return self.decode(z)

    @torch.no_grad()
    def fit_prior(self, data, batch: int = 2000) -> None:
        """Fits N(mean_k, cov_k) to the encoder's means of each digit k of `data` (an MNISTTensors)."""
        was_training = self.training
        self.eval()
        means = torch.cat([self.encode(data.batch(index)[0])[0].float()
                           for index in torch.arange(len(data), device=data.labels.device).split(batch)])  # (n, d)
        eye = torch.eye(self.latent_dim, device=means.device)
        for k in range(NUM_CLASSES):
            codes = means[data.labels == k]                                                  # (n_k, d)
            if len(codes) < 2:                      # a digit missing from `data`: fall back on all of them
                codes = means
            self.prior_mean[k] = codes.mean(0)
            # the jitter keeps the Cholesky factor defined when a latent dimension is unused (collapsed)
            self.prior_scale_tril[k] = torch.linalg.cholesky(torch.cov(codes.T).reshape_as(eye) + 1e-4 * eye)
        self.prior_fitted.fill_(True)
        self.train(was_training)

    def finish_training(self, data) -> bool:
        self.fit_prior(data)
        return True

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
