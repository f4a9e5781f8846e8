"""Measuring samples with a small MNIST classifier: Fréchet distance, confidence, class coverage.

The classifier (≥ 99% test accuracy) plays the role Inception plays in FID (Heusel et al. 2017): its
128-d penultimate activations are the feature space in which generated and real digits are compared.
Every distance comes with a real-data floor — 10,000 real training digits against the test set — so a
number has a scale: 1× the floor is as close to the test set as real data gets.
"""
from __future__ import annotations

import functools
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .checkpoint import SHIPPED_DIR, CheckpointError, save_checkpoint
from .data import load_mnist
from .device import seed_everything
from .models import NUM_CLASSES, GenerativeModel

CLASSIFIER_PATH = SHIPPED_DIR / "mnist_classifier.pt"
CLASSIFIER_FORMAT = "aigc-classifier"
DIGITS_OK_CONFIDENCE = 0.90
COVERAGE_SHARE = 0.01   # a class counts as covered when at least 1% of samples are predicted as it


class MNISTClassifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 5, padding=2), nn.ReLU(True), nn.MaxPool2d(2),      # (b, 32, 14, 14)
            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(True), nn.MaxPool2d(2),     # (b, 64, 7, 7)
            nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(True),             # (b, 128) features
        )
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(128, NUM_CLASSES))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x (b, 1, 28, 28) in [-1, 1] -> (b, 128)."""
        return self.body(x)

    def forward(self, x):
        return self.head(self.body(x))


def _augment(x: torch.Tensor) -> torch.Tensor:
    """Random shifts of up to 2 pixels: cheap, and enough to pass 99% with this net."""
    shift = torch.randint(-2, 3, (2,)).tolist()
    return torch.roll(F.pad(x, (2, 2, 2, 2), value=-1.0), shifts=shift, dims=(2, 3))[:, :, 2:30, 2:30]


def train_classifier(epochs: int = 3, batch_size: int = 128, lr: float = 2e-3, device="cpu", seed: int = 0,
                     data_dir=None, log=print) -> tuple[MNISTClassifier, float]:
    seed_everything(seed)
    train, test = load_mnist(True, device, data_dir), load_mnist(False, device, data_dir)
    model = MNISTClassifier().to(device)
    steps = epochs * (len(train) // batch_size)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train), device=device)
        for i in range(len(train) // batch_size):
            x, y = train.batch(order[i * batch_size:(i + 1) * batch_size])
            loss = F.cross_entropy(model(_augment(x)), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        accuracy = classifier_accuracy(model, test)
        log(f"epoch {epoch + 1}/{epochs}: test accuracy {accuracy:.4f} ({time.perf_counter() - start:.0f} s)")
    return model.eval(), accuracy


@torch.no_grad()
def classifier_accuracy(model: MNISTClassifier, test=None, n: int | None = None) -> float:
    test = test if test is not None else load_mnist(False, next(model.parameters()).device)
    model.eval()
    n = n or len(test)
    correct = 0
    for start in range(0, n, 1000):
        x, y = test.batch(torch.arange(start, min(n, start + 1000), device=test.labels.device))
        correct += (model(x).argmax(1) == y).sum().item()
    return correct / n


def save_classifier(model: MNISTClassifier, path=CLASSIFIER_PATH, test_accuracy: float = float("nan")) -> Path:
    return save_checkpoint({"format": CLASSIFIER_FORMAT, "test_accuracy": float(test_accuracy),
                                 "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}, path)


@functools.lru_cache(maxsize=4)
def load_classifier(path: str | os.PathLike = CLASSIFIER_PATH, device: str = "cpu") -> MNISTClassifier:
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"no metrics classifier at {path}; train it with `python -m aigc.metrics`") from None
    except Exception as exc:
        raise CheckpointError(f"{path} is not a readable classifier file ({type(exc).__name__})") from None
    if not isinstance(blob, dict) or blob.get("format") != CLASSIFIER_FORMAT:
        raise CheckpointError(f"{path} is not an aigc classifier file")
    model = MNISTClassifier()
    model.load_state_dict(blob["state_dict"])
    model.test_accuracy = blob.get("test_accuracy")
    return model.to(device).eval()


# ---- Fréchet distance ------------------------------------------------------------------------------

def feature_stats(features: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    f = features.double().cpu().numpy()
    return f.mean(0), np.cov(f, rowvar=False)


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||² + Tr(S1 + S2 - 2 (S1^½ S2 S1^½)^½): the Fréchet (2-Wasserstein) distance between
    two Gaussians. The symmetric form needs only eigendecompositions of PSD matrices (no scipy)."""
    root1 = _sqrtm_psd(sigma1)
    cross = _sqrtm_psd(root1 @ sigma2 @ root1)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(cross))


@torch.no_grad()
def classify(images: torch.Tensor, classifier: MNISTClassifier, batch: int = 1000):
    """images (n, 1, 28, 28) in [-1, 1] -> features (n, 128), probabilities (n, 10), on the CPU."""
    device = next(classifier.parameters()).device
    feats, probs = [], []
    for start in range(0, len(images), batch):
        h = classifier.features(images[start:start + batch].to(device).float())
        feats.append(h.cpu())
        probs.append(F.softmax(classifier.head(h), 1).cpu())
    return torch.cat(feats), torch.cat(probs)


@functools.lru_cache(maxsize=4)
def reference_stats(device: str = "cpu", n: int = 10_000, seed: int = 0) -> dict:
    """Test-set feature statistics and the real-data floor (n training digits vs the test set)."""
    classifier = load_classifier(device=device)
    test, train = load_mnist(False), load_mnist(True)
    test_feats, _ = classify(test.batch(torch.arange(len(test)))[0], classifier)
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:n]
    train_feats, _ = classify(train.batch(pick)[0], classifier)
    mu, sigma = feature_stats(test_feats)
    floor = frechet_distance(*feature_stats(train_feats), mu, sigma)
    return {"mu": mu, "sigma": sigma, "floor": floor}


def score_probabilities(probs: torch.Tensor) -> dict:
    hist = torch.bincount(probs.argmax(1), minlength=NUM_CLASSES)
    coverage = int((hist >= max(1, COVERAGE_SHARE * len(probs))).sum())
    confidence = probs.max(1).values.mean().item()
    return {"confidence": confidence, "class_hist": hist.tolist(), "coverage": coverage,
            "digits_ok": confidence >= DIGITS_OK_CONFIDENCE and bool((hist > 0).all())}


def quick_score(images: torch.Tensor, classifier: MNISTClassifier | None = None) -> dict:
    """Cheap verdict on a batch already generated: mean confidence, class histogram, coverage, and
    digits_ok = confidence ≥ 0.90 with all ten digits present."""
    _, probs = classify(images, classifier or load_classifier())
    return score_probabilities(probs)


@torch.no_grad()
def generate(model: GenerativeModel, n: int, seed: int = 0, batch: int = 1000) -> torch.Tensor:
    was_training = model.training
    model.eval()
    g = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, n, batch):
        b = min(batch, n - start)
        z = model.make_noise(b, generator=g)
        labels = torch.randint(0, NUM_CLASSES, (b,), generator=g).to(z.device) if model.conditional else None
        out.append(model.sample(z, labels).float().cpu())
    model.train(was_training)
    return torch.cat(out)


def evaluate_model(model: GenerativeModel, n: int = 10_000, seed: int = 0) -> dict:
    """Fréchet distance to the test set (and its ratio to the real-data floor), confidence, coverage."""
    classifier = load_classifier()
    feats, probs = classify(generate(model, n, seed), classifier)
    ref = reference_stats()
    fid = frechet_distance(*feature_stats(feats), ref["mu"], ref["sigma"])
    return {"fid": fid, "fid_floor": ref["floor"], "fid_ratio": fid / ref["floor"], "n": n,
            **score_probabilities(probs)}


if __name__ == "__main__":   # python -m aigc.metrics: trains and writes checkpoints/mnist_classifier.pt
    torch.set_num_threads(os.cpu_count() or 1)
    trained, acc = train_classifier()
    print(f"saved {save_classifier(trained, CLASSIFIER_PATH, acc)} (test accuracy {acc:.4f})")
