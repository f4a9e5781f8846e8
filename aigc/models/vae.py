"""Variational autoencoder (Kingma & Welling 2013) with a fully connected encoder and decoder.

Reconstruction term: Bernoulli log-likelihood, i.e. BCE-with-logits summed over the 784 pixels.
MNIST pixels are nearly binary, this is the likelihood the original paper used for MNIST, and unlike
MSE with a fixed variance it needs no hand-set weight against the KL term.

Sampling: decoding z ~ N(0, I) lands in the "holes" between the regions the encoder actually uses
(the prior and the aggregate posterior disagree), which gives smeared, in-between digits. So when a run
ends, finish_training() fits two things on the training set (ex-post density estimation, Ghosh et al.
2020, "From Variational to Deterministic Autoencoders", here with the labels MNIST has):
- a Gaussian mixture per digit over the encoder's means (10 components each, as in that paper); sample()
  then carries N(0, I) noise into the chosen digit's mixture, which makes the fitted VAE conditional;
- the decoder's sharpness: a Bernoulli mean is grey wherever the decoder is unsure which of several
  strokes a digit has, so decoded digits have blurred edges. decode() multiplies the logits by the
  factor that gives decoded training digits the share of grey pixels real ones have.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import NUM_CLASSES, GenerativeModel, ModelConfig, adam, check_range, pick_slice
from .declarations import Panel, Redraw, Section, Series, Setting


@dataclass
class VAEConfig(ModelConfig):
    latent_dim: int = 16      # 2 gives a latent map you can look at directly
    hidden: int = 512
    beta: float = 1.0         # weight of the KL term (1 = the ELBO; >1 = beta-VAE)
    prior_components: int = 10  # Gaussians per digit in the prior fitted after training

    def validate(self):
        check_range("latent_dim", self.latent_dim, 1, 256)
        check_range("hidden", self.hidden, 16, 4096)
        check_range("beta", self.beta, 0.0, 100.0, kind=float)
        check_range("prior_components", self.prior_components, 1, 64)


class VAE(GenerativeModel):
    name = "vae"
    summary = "Variational autoencoder: squeezes each digit to a few numbers and learns to draw it back from them."
    panels = (
        Panel("Loss and reconstruction (nats per digit)", (Series("loss", "loss (−ELBO)", "#4C6EF5"),
                                                           Series("recon", "reconstruction", "#7048E8"))),
        Panel("KL divergence (nats)", (Series("kl", "KL divergence", "#F03E3E"),)),
    )
    settings = (Setting("latent_dim", "Latent size", default=16, choices=(2, 4, 8, 16, 32, 64), ordered=True,
                        help="2 gives a latent space you can see as a map on the Explore page."),)
    train_defaults = dict(steps=2000, batch_size=128, lr=1e-3, beta1=0.9)
    diagnoses = ("posterior_collapse", "diverging", "plateau")
    finishing_note = "Fitting each digit's mixture of Gaussians and the decoder's sharpness to the training set…"

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
        # the prior and decoder sharpness fitted after training; until then samples use N(0, I), sharpness 1
        for name, value in self._unfitted_prior().items():
            self.register_buffer(name, value)

    def _unfitted_prior(self) -> dict[str, torch.Tensor]:
        k, d = self.config.prior_components, self.config.latent_dim
        return {"prior_weight": F.one_hot(torch.zeros(NUM_CLASSES, dtype=torch.long), k).float(),   # (10, k)
                "prior_mean": torch.zeros(NUM_CLASSES, k, d),                                      # (10, k, d)
                "prior_scale_tril": torch.eye(d).repeat(NUM_CLASSES, k, 1, 1),                     # (10, k, d, d)
                "prior_fitted": torch.zeros((), dtype=torch.bool),
                "decoder_sharpness": torch.ones(())}

    @property
    def conditional(self) -> bool:
        return bool(self.prior_fitted)

    @property
    def explore_sections(self) -> tuple[Section, ...]:
        return super().explore_sections + ((Section.LATENT_MAP,) if self.latent_dim == 2 else ())

    @property
    def redraw(self) -> Redraw:
        return Redraw.ENCODE

    @property
    def live_settings(self) -> tuple[Setting, ...]:
        return super().live_settings + (Setting(
            "beta", "Weight of the KL term (β)", None, low=0.0, high=10.0, step=0.1, format="%.2f",
            help="1 is the VAE's own objective, the ELBO. Higher squeezes the codes towards the prior (β-VAE); "
                 "lower lets the codes carry more about each digit."),)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        unfitted = self._unfitted_prior()
        if (prefix + "prior_mean" in state_dict and state_dict[prefix + "prior_mean"].dim() == 2
                and prefix + "prior_weight" not in state_dict):
            # one Gaussian per digit (older checkpoints): the mixture's first component, weight 1
            state_dict[prefix + "prior_weight"] = unfitted["prior_weight"]
            for name in ("prior_mean", "prior_scale_tril"):
                value = unfitted[name].clone()
                value[:, 0] = state_dict[prefix + name]
                state_dict[prefix + name] = value
        # checkpoints written before the fitted prior existed load as unfitted (samples from N(0, I))
        for name, default in unfitted.items():
            state_dict.setdefault(prefix + name, default)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (b, 1, 28, 28) in [-1, 1] -> mean and log-variance of q(z|x), each (b, latent_dim)."""
        mu, logvar = self.encoder((x + 1) / 2).chunk(2, dim=1)
        return mu, logvar.clamp(-30, 20)

    def decode_logits(self, z):
        return self.decoder(z)

    def decode(self, z):
        """A point of the latent space itself (b, d) -> its image (b, 1, 28, 28) in [-1, 1]: the Bernoulli
        means, sharpened by the factor fitted after training (1 before)."""
        return torch.sigmoid(self.decode_logits(z) * self.decoder_sharpness) * 2 - 1

    def sample(self, z, labels=None):
        """z ~ N(0, I) (b, d) -> images; once the prior is fitted, of the given digits (default 0, 1, 2, ...)."""
        if self.conditional and labels is None:
            labels = self.default_labels(z.shape[0])
        return self.decode(self.prior_latent(z, labels) if self.conditional else z)

    def prior_latent(self, z, labels):
        """Carries z ~ N(0, I) (b, d) to a draw from each label's fitted mixture (b, d). Φ(z₀) picks the
        component by inverse CDF and, rescaled within that component's slice of (0, 1), serves again as
        the first coordinate of the noise: so z ~ N(0, I) gives exact mixture samples, and nearby z give the
        same component (ordered along the digit's main axis) and so similar images."""
        comp, first = pick_slice(z[:, :1], self.prior_weight[labels])                    # (b,), (b, 1)
        noise = torch.cat([first, z[:, 1:]], 1)                                          # (b, d) ~ N(0, I) again
        return self.prior_mean[labels, comp] + (self.prior_scale_tril[labels, comp] @ noise.unsqueeze(-1)).squeeze(-1)

    @torch.no_grad()
    def fit_prior(self, data, per_digit: int = 4000, batch: int = 2000, seed: int = 0) -> None:
        """Fits each digit's mixture to the encoder's means of up to `per_digit` random examples of that
        digit in `data` (an MNISTTensors)."""
        was_training = self.training
        self.eval()
        generator = torch.Generator().manual_seed(seed)
        labels = data.labels.cpu()
        order = torch.randperm(len(labels), generator=generator)
        chosen = torch.cat([order[labels[order] == k][:per_digit] for k in range(NUM_CLASSES)])       # (n,)
        means = torch.cat([self.encode(data.batch(index.to(data.labels.device))[0])[0].float().cpu()
                           for index in chosen.split(batch)])                                   # (n, d)
        labels = labels[chosen]
        unfitted = self._unfitted_prior()
        for k in range(NUM_CLASSES):
            codes = means[labels == k]                                                       # (n_k, d)
            if len(codes) < 2:                      # a digit missing from `data`: fall back on all of them
                codes = means
            components = self.config.prior_components if len(codes) >= 10 * self.config.prior_components else 1
            try:
                weight, mean, scale_tril = fit_gaussian_mixture(codes, components, generator=generator)
            except torch.linalg.LinAlgError:        # a component collapsed onto too few codes: one Gaussian
                components = 1
                weight, mean, scale_tril = fit_gaussian_mixture(codes, 1)
            axis = torch.linalg.eigh(torch.cov(codes.T).reshape(self.latent_dim, -1))[1][:, -1]
            by_axis = (mean @ axis).argsort()       # neighbouring slices of Φ(z₀) draw neighbouring styles
            self.prior_weight[k] = unfitted["prior_weight"][k]
            self.prior_mean[k] = unfitted["prior_mean"][k]
            self.prior_scale_tril[k] = unfitted["prior_scale_tril"][k]
            self.prior_weight[k, :components] = weight[by_axis]
            self.prior_mean[k, :components] = mean[by_axis]
            self.prior_scale_tril[k, :components] = scale_tril[by_axis]
        self.prior_fitted.fill_(True)
        self.train(was_training)

    @torch.no_grad()
    def fit_sharpness(self, data, n: int = 10_000, grey=(0.1, 0.9)) -> float:
        """Sets decoder_sharpness ≥ 1 so that the decoded means of n training digits have the share of
        grey pixels (strictly between `grey`) that the digits themselves have; returns it."""
        was_training = self.training
        self.eval()
        x, _ = data.batch(torch.arange(min(n, len(data)), device=data.labels.device))
        logits = torch.cat([self.decode_logits(self.encode(part)[0]).float() for part in x.split(2000)])
        ink = (x.float() + 1) / 2

        def grey_share(p):
            return ((p > grey[0]) & (p < grey[1])).float().mean().item()

        target = grey_share(ink)
        low, high = 1.0, 16.0                   # share of grey falls as the factor grows: bisect
        if grey_share(torch.sigmoid(logits)) <= target:
            high = 1.0
        for _ in range(30):
            if high - low < 1e-3:
                break
            mid = (low + high) / 2
            low, high = (mid, high) if grey_share(torch.sigmoid(logits * mid)) > target else (low, mid)
        self.decoder_sharpness.fill_(high)
        self.train(was_training)
        return high

    def finish_training(self, data) -> bool:
        self.fit_prior(data)
        self.fit_sharpness(data)
        return True

    def configure_optimizers(self, lr, betas):
        return {"vae": adam(self.parameters(), lr, betas)}

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


def fit_gaussian_mixture(x: torch.Tensor, k: int, iters: int = 100, generator: torch.Generator | None = None,
                         jitter: float = 1e-4, tol: float = 1e-3):
    """EM for a k-component full-covariance Gaussian mixture (Dempster, Laird & Rubin 1977) on x (n, d),
    started from k random points; stops after `iters` rounds or once the mean log-likelihood gains less
    than `tol` nats. Returns weights (k,), means (k, d) and Cholesky factors (k, d, d)."""
    dtype = x.dtype
    x = x.double()                              # second moments minus squared means: keep the precision
    n, d = x.shape
    eye = jitter * torch.eye(d, dtype=x.dtype)  # keeps each covariance invertible (unused latent dims)
    mean = x[torch.randperm(n, generator=generator)[:k]]                               # (k, d)
    cov = (torch.cov(x.T).reshape(d, d) + eye).expand(k, d, d)                         # (k, d, d)
    weight = torch.full((k,), 1.0 / k, dtype=x.dtype)
    previous = -math.inf
    for _ in range(iters if k > 1 else 1):
        # E step: responsibilities (n, k) from log N(x; mean_j, cov_j) = -½ |A_j (x - mean_j)|² + log|A_j| + c
        # with A_j = inverse Cholesky factor of cov_j, all k maps in one matrix product
        inv_tril = torch.linalg.inv(torch.linalg.cholesky(cov))                         # (k, d, d)
        maps = inv_tril.mT                                                               # y = x @ A_jᵀ
        y = (x @ maps.permute(1, 0, 2).reshape(d, k * d)).view(n, k, d) - (mean[:, None] @ maps).squeeze(1)
        log_det = inv_tril.diagonal(dim1=1, dim2=2).log().sum(1)                        # (k,) log|A_j|
        log_joint = weight.log() + log_det - 0.5 * y.pow(2).sum(2)                        # (n, k), up to a constant
        log_likelihood = log_joint.logsumexp(1).mean().item()
        if log_likelihood - previous < tol:
            break
        previous = log_likelihood
        r = log_joint.softmax(1)
        # M step: weighted means and covariances
        total = r.sum(0).clamp_min(1e-9)                                                 # (k,)
        weight = total / n
        mean = (r.T @ x) / total[:, None]
        second = torch.einsum("nk,ni,nj->kij", r, x, x) / total[:, None, None]           # E_j[x xᵀ]
        cov = second - mean[:, :, None] * mean[:, None, :] + eye
    return weight.to(dtype), mean.to(dtype), torch.linalg.cholesky(cov).to(dtype)
