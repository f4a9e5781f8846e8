"""Measuring samples with a small MNIST classifier: Fréchet distance, confidence, class coverage.

The classifier (≥ 99% test accuracy) plays the role Inception plays in FID (Heusel et al. 2017): its
128-d penultimate activations are the feature space in which generated and real digits are compared.
Every distance comes with a real-data floor — 10,000 real training digits against the test set — so a
number has a scale: 1× the floor is as close to the test set as real data gets.

    python -m aigc.metrics            # trains the classifier, writes checkpoints/mnist_classifier.pt

Definitions used by every score here:
  confidence  mean over samples of the classifier's largest softmax probability
  class_hist  how many samples the classifier assigns to each digit 0..9
  coverage    how many digits get at least 1% of the samples (at least 1 sample when n < 100): a
              collapsed generator that draws only 1s and 7s covers 2, a healthy one 10
  digits_ok   confidence ≥ 0.90 and all ten digits present — "these read as digits, of every kind"
"""
from __future__ import annotations

import argparse
import functools
import math
import os
import pickle
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .version import __version__
from .checkpoint import SHIPPED_DIR, CheckpointError, save_checkpoint
from .data import data_root, load_mnist
from .device import configure_threads, describe_device, pick_device, seed_everything
from .models import NUM_CLASSES, GenerativeModel

CLASSIFIER_PATH = SHIPPED_DIR / "mnist_classifier.pt"   # <repo>/checkpoints/, beside the shipped models
CLASSIFIER_FORMAT = "aigc-classifier"
CLASSIFIER_FORMAT_VERSION = 1
DIGITS_OK_CONFIDENCE = 0.90
COVERAGE_SHARE = 0.01


class MNISTClassifier(nn.Module):
    """conv5×5 1→32, pool, conv5×5 32→64, pool, fc 3136→128 (the features), dropout, fc 128→10."""

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
        return self.head(self.body(x))       # (b, 10) logits


# ---- training and the classifier file ----------------------------------------------------------

def random_affine(x: torch.Tensor, generator: torch.Generator, shift: float = 2.0, degrees: float = 10.0,
                  scale: float = 0.1) -> torch.Tensor:
    """Per image: a shift of up to `shift` pixels, a rotation of up to `degrees`, a zoom of up to ±`scale`.
    x (b, 1, 28, 28) in [-1, 1]; the border fills with background (-1). Handwriting varies in just these
    ways: per-image jitter lifts 3-epoch test accuracy from ~99.25% (one shift per batch) to ~99.45%."""
    b = x.shape[0]
    u = lambda: torch.rand(b, generator=generator) * 2 - 1                      # (b,) uniform in [-1, 1]
    angle, zoom = u() * math.radians(degrees), 1 + u() * scale
    tx, ty = u() * shift * 2 / 28, u() * shift * 2 / 28                          # pixels -> [-1, 1] grid units
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)   # (b, 2, 3)
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)                 # (b, 28, 28, 2)
    return F.grid_sample(x + 1, grid, align_corners=False) - 1       # zeros padding of x + 1 = background


def train_classifier(epochs: int = 4, batch_size: int = 128, lr: float = 2e-3, device="cpu", seed: int = 0,
                     data_dir=None, callback=None) -> tuple[MNISTClassifier, float]:
    """Adam with a one-cycle schedule on the in-memory tensors (no DataLoader); returns (model in eval
    mode, test accuracy). callback(dict(epoch, epochs, test_accuracy, seconds)) after each epoch."""
    seed_everything(seed)
    aug = torch.Generator().manual_seed(seed)
    train, test = load_mnist(True, device, data_dir), load_mnist(False, device, data_dir)
    model = MNISTClassifier().to(device)
    steps_per_epoch = len(train) // batch_size
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch)
    start = time.perf_counter()
    accuracy = float("nan")
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train), device=device)
        for i in range(steps_per_epoch):
            x, y = train.batch(order[i * batch_size:(i + 1) * batch_size])     # (b, 1, 28, 28), (b,)
            loss = F.cross_entropy(model(random_affine(x, aug)), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        accuracy = classifier_accuracy(model, test)
        if callback is not None:
            callback({"epoch": epoch + 1, "epochs": epochs, "test_accuracy": accuracy,
                      "seconds": time.perf_counter() - start})
    return model.eval(), accuracy


@torch.no_grad()
def classifier_accuracy(model: MNISTClassifier, test=None, n: int | None = None) -> float:
    """Accuracy on the first n test digits (default: all 10,000)."""
    device = next(model.parameters()).device
    test = test if test is not None else load_mnist(False)
    was_training = model.training
    model.eval()
    n = min(n or len(test), len(test))
    correct = 0
    for start in range(0, n, 1000):
        x, y = test.batch(torch.arange(start, min(n, start + 1000), device=test.labels.device))
        correct += (model(x.to(device)).argmax(1).cpu() == y.cpu()).sum().item()
    model.train(was_training)
    return correct / n


def save_classifier(model: MNISTClassifier, path=CLASSIFIER_PATH, test_accuracy: float = float("nan")) -> Path:
    """Writes a self-describing file atomically (temp file, fsync, os.replace): a failed save leaves the
    previous classifier in place. Raises CheckpointError if it cannot be written."""
    return save_checkpoint({
        "format": CLASSIFIER_FORMAT,
        "format_version": CLASSIFIER_FORMAT_VERSION,
        "aigc_version": __version__,
        "architecture": MNISTClassifier.__doc__,
        "input": "(b, 1, 28, 28) float in [-1, 1]",
        "test_accuracy": float(test_accuracy),
        "created": time.time(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
    }, path)


def load_classifier(path: str | os.PathLike = CLASSIFIER_PATH, device="cpu") -> MNISTClassifier:
    """The classifier in eval mode on `device`, loaded once per (file, device) in a process.

    Shared between callers: treat it as read-only. A file replaced on disk is read again (its
    modification time is part of the cache key). Bad files raise CheckpointError (a ValueError)."""
    path = Path(path).expanduser().resolve()
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise CheckpointError(f"no metrics classifier at {path}; train it with `python -m aigc.metrics`") from None
    return _load_classifier(str(path), mtime, str(torch.device(device)))


@functools.lru_cache(maxsize=4)
def _load_classifier(path: str, mtime: int, device: str) -> MNISTClassifier:
    name = Path(path).name
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)    # never runs code from the file
    except pickle.UnpicklingError as exc:
        if "Unsupported global" in str(exc):      # a real pickle that asks for arbitrary Python objects
            raise CheckpointError(f"{name} was refused: it holds Python objects that would run code when loaded") from None
        raise CheckpointError(f"{name} is not a readable classifier file: truncated, corrupt or another kind of file") from None
    except Exception as exc:  # the weights-only unpickler raises many kinds on garbage
        raise CheckpointError(f"{name} is not a readable classifier file: truncated, corrupt or another kind of file "
                              f"({type(exc).__name__})") from None
    if not isinstance(blob, dict) or blob.get("format") != CLASSIFIER_FORMAT:
        raise CheckpointError(f"{name} is not an aigc metrics classifier (no '{CLASSIFIER_FORMAT}' header)")
    if blob.get("format_version", 1) > CLASSIFIER_FORMAT_VERSION:
        raise CheckpointError(f"{name} was written by a newer aigc (format {blob['format_version']}); upgrade aigc")
    model = MNISTClassifier()
    try:
        model.load_state_dict(blob["state_dict"], strict=True)
    except (RuntimeError, KeyError, TypeError, AttributeError) as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise CheckpointError(f"the weights in {name} do not fit the metrics classifier ({first})") from None
    model.test_accuracy = blob.get("test_accuracy")
    return model.to(device).eval().requires_grad_(False)


# ---- Fréchet distance ------------------------------------------------------------------------------

def feature_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """features (n, d), torch or numpy -> mean (d,) and covariance (d, d), in float64."""
    f = features.detach().double().cpu().numpy() if isinstance(features, torch.Tensor) else np.asarray(features, np.float64)
    return f.mean(0), np.atleast_2d(np.cov(f, rowvar=False))


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix; tiny negative eigenvalues from rounding -> 0."""
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||² + Tr(S1 + S2 - 2 (S1^½ S2 S1^½)^½): the Fréchet (2-Wasserstein) distance between
    two Gaussians. Tr((S1 S2)^½) = Tr((S1^½ S2 S1^½)^½) since both matrices are similar, and the right-hand
    form is a PSD matrix, so two symmetric eigendecompositions replace scipy's sqrtm.
    Accepts numpy or torch; scalars for 1-D Gaussians (sigma = variance)."""
    def as_np(a, ndim):
        a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else a
        return np.atleast_2d(np.asarray(a, np.float64)) if ndim == 2 else np.atleast_1d(np.asarray(a, np.float64))

    mu1, mu2, sigma1, sigma2 = as_np(mu1, 1), as_np(mu2, 1), as_np(sigma1, 2), as_np(sigma2, 2)
    root1 = _sqrtm_psd(sigma1)
    cross = _sqrtm_psd(root1 @ sigma2 @ root1)
    d = ((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(cross)
    return max(float(d), 0.0)      # a distance: rounding can leave -1e-13 for identical inputs


# ---- scoring -----------------------------------------------------------------------------------------

@torch.no_grad()
def classify(images: torch.Tensor, classifier: MNISTClassifier, batch: int = 1000):
    """images (n, 1, 28, 28) in [-1, 1] -> features (n, 128), probabilities (n, 10), on the CPU."""
    device = next(classifier.parameters()).device
    feats, probs = [], []
    for start in range(0, len(images), batch):
        h = classifier.features(images[start:start + batch].to(device).float())
        feats.append(h.float().cpu())
        probs.append(F.softmax(classifier.head(h).float(), 1).cpu())
    return torch.cat(feats), torch.cat(probs)


def reference_stats(classifier: MNISTClassifier | None = None, device=None, n: int = 10_000, seed: int = 0) -> dict:
    """Test-set feature statistics {mu, sigma} and the real-data floor: the Fréchet distance between n
    random training digits and the 10,000 test digits. Computed once per classifier and MNIST folder
    (20,000 images through the classifier)."""
    classifier = classifier if classifier is not None else load_classifier(device=device or "cpu")
    return _reference_stats(classifier, n, seed, str(data_root()))


@functools.lru_cache(maxsize=4)
def _reference_stats(classifier: MNISTClassifier, n: int, seed: int, root: str) -> dict:
    test, train = load_mnist(False, data_dir=root), load_mnist(True, data_dir=root)
    test_feats, _ = classify(test.batch(torch.arange(len(test)))[0], classifier)
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:n]
    train_feats, _ = classify(train.batch(pick)[0], classifier)
    mu, sigma = feature_stats(test_feats)
    floor = frechet_distance(*feature_stats(train_feats), mu, sigma)
    class_freq = torch.bincount(train.labels.cpu(), minlength=NUM_CLASSES).double() / len(train)   # p(y), (10,)
    return {"mu": mu, "sigma": sigma, "floor": floor, "class_freq": class_freq}


def score_probabilities(probs: torch.Tensor) -> dict:
    """probs (n, 10) -> confidence, class_hist, coverage, digits_ok (definitions: module docstring)."""
    hist = torch.bincount(probs.argmax(1), minlength=NUM_CLASSES)
    coverage = int((hist >= max(1, COVERAGE_SHARE * len(probs))).sum())
    confidence = probs.max(1).values.mean().item()
    return {"confidence": confidence, "class_hist": hist.tolist(), "coverage": coverage,
            "digits_ok": confidence >= DIGITS_OK_CONFIDENCE and bool((hist > 0).all())}


def quick_score(images: torch.Tensor, classifier: MNISTClassifier | None = None) -> dict:
    """Cheap verdict on images already generated, (b, 1, 28, 28) in [-1, 1]: confidence, class_hist,
    coverage, digits_ok (confidence ≥ 0.90 with all ten digits present). No Fréchet distance."""
    _, probs = classify(images, classifier if classifier is not None else load_classifier(device=images.device))
    return score_probabilities(probs)


@torch.no_grad()
def generate(model: GenerativeModel, n: int, seed: int = 0, batch: int = 1000,
             class_freq: torch.Tensor | None = None, **options) -> torch.Tensor:
    """n samples (n, 1, 28, 28) on the CPU, in eval mode (GANs: the averaged generator). A conditional
    model draws x ~ p(x | y) with y ~ class_freq (MNIST's own label frequencies when scoring, so the
    samples follow p(x) = Σ p(y) p(x | y) like the data; uniform if None). Train/eval mode is restored."""
    was_training = model.training
    model.eval()
    g = torch.Generator().manual_seed(seed)
    out = []
    for start in range(0, n, batch):
        b = min(batch, n - start)
        z = model.make_noise(b, generator=g)                                            # (b, latent)
        labels = None
        if model.conditional:
            freq = class_freq if class_freq is not None else torch.ones(NUM_CLASSES)
            labels = torch.multinomial(freq.float(), b, replacement=True, generator=g).to(z.device)   # (b,)
        out.append(model.sample(z, labels, **options).float().cpu())
    model.train(was_training)
    return torch.cat(out)


def evaluate_model(model: GenerativeModel, n: int = 10_000, batch: int = 1000, seed: int = 0,
                   classifier: MNISTClassifier | None = None, **options) -> dict:
    """n samples scored against the test set: fid (Fréchet distance in classifier features), fid_floor
    (real data's own distance), fid_ratio (fid / floor), confidence, class_hist, coverage, digits_ok, n.

    The classifier runs on the model's device unless one is given. Use n = 10,000 for numbers to
    compare: with fewer samples the covariance estimate is noisier and the distance biased upwards.
    `options` go to model.sample (its sampling_settings: a diffusion model's steps and guidance)."""
    classifier = classifier if classifier is not None else load_classifier(device=model.device)
    ref = reference_stats(classifier)
    feats, probs = classify(generate(model, n, seed, batch, ref["class_freq"], **options), classifier, batch)
    fid = frechet_distance(*feature_stats(feats), ref["mu"], ref["sigma"])
    return {"fid": fid, "fid_floor": ref["floor"], "fid_ratio": fid / ref["floor"], "n": n,
            **score_probabilities(probs)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m aigc.metrics",
                                description="Trains the metrics classifier and writes it (atomically).")
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu (the shipped file), cuda, mps or auto")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default=str(CLASSIFIER_PATH))
    p.add_argument("--min-accuracy", type=float, default=0.99, help="refuse to save below this test accuracy")
    args = p.parse_args(argv)
    configure_threads()
    device = pick_device(args.device)
    print(f"training the metrics classifier on {describe_device(device)}, torch {torch.__version__}")
    start = time.perf_counter()
    model, accuracy = train_classifier(args.epochs, device=device, seed=args.seed, data_dir=args.data_dir,
                                       callback=lambda s: print(f"epoch {s['epoch']}/{s['epochs']}: test accuracy "
                                                                f"{s['test_accuracy']:.4f} ({s['seconds']:.0f} s)", flush=True))
    seconds = time.perf_counter() - start
    if accuracy < args.min_accuracy:
        print(f"test accuracy {accuracy:.4f} is below {args.min_accuracy}; {args.out} left unchanged")
        return 1
    path = save_classifier(model, args.out, accuracy)
    print(f"saved {path} ({path.stat().st_size / 2**20:.2f} MB): test accuracy {accuracy:.4f}, {seconds:.0f} s of training")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
