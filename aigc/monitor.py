"""What a live run's samples look like to the metrics classifier, at each snapshot, cheap enough to run
inside training.

At every call: which digits the classifier reads in the trainer's fixed-noise grid, how sure it is, how
many digits it covers (aigc.metrics' definitions). At every `every`-th call, precision and recall
(Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for Assessing Generative Models") in the
classifier's 128-d feature space: each set of points spans a manifold, the union of balls around its
points reaching to their k-th nearest neighbour; precision is the share of samples inside the real
digits' manifold (do they look real?), recall the share of real digits inside the samples' (is every kind
of real digit drawn?). n real training digits, a fixed pick, against n samples from fixed noise.

The features are scaled to unit length first (embed): the comparison is between directions. In the raw
ReLU features a faint or noisy image lands near the origin, and the few real digits with weak features
have balls wide enough to reach it: uniform noise images scored precision 0.58-1.0 against 256 real
digits, and 0.00-0.04 on the unit sphere, where disjoint halves of the test set still score 0.83-0.89.

    monitor = SampleMonitor()
    trainer.add_callback("on_samples", monitor)      # monitor.last, monitor.history: one dict per snapshot
"""
from __future__ import annotations

import copy
import functools

import torch
import torch.nn.functional as F

from .data import data_root, load_mnist
from .metrics import MNISTClassifier, classify, generate, load_classifier, score_probabilities
from .models import GenerativeModel


def embed(images: torch.Tensor, classifier: MNISTClassifier) -> torch.Tensor:
    """images (n, 1, 28, 28) in [-1, 1] -> the classifier's features scaled to unit length, (n, 128)."""
    return F.normalize(classify(images, classifier)[0], dim=1)


def knn_radii(features: torch.Tensor, k: int = 3) -> torch.Tensor:
    """features (n, d) -> (n,): each point's distance to its k-th nearest other point."""
    d = torch.cdist(features, features)                                  # (n, n), 0 on the diagonal
    return d.kthvalue(k + 1, dim=1).values                               # k + 1: the point itself comes first


def _check_sizes(n: int, k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be at least 1 (the neighbour that sets each ball's radius), got {k}")
    if n < k + 1:
        raise ValueError(f"need at least k + 1 = {k + 1} points for {k} nearest neighbours besides each point "
                         f"itself, got {n}")


def manifold_share(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> float:
    """Share of points (m, d) inside at least one ball, centres (n, d) with radii (n,)."""
    return (torch.cdist(points, centres) <= radii).any(1).float().mean().item()     # (m, n) -> (m,)


def precision_recall(real_features: torch.Tensor, fake_features: torch.Tensor, k: int = 3,
                     real_radii: torch.Tensor | None = None) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019) of fakes (m, d) against reals (n, d):
    precision = share of fakes within some real's k-NN ball, recall = share of reals within some fake's.
    real_radii (n,) may be passed precomputed (knn_radii(real_features, k))."""
    real, fake = real_features.float(), fake_features.float()
    _check_sizes(len(real), k)
    _check_sizes(len(fake), k)
    real_radii = real_radii if real_radii is not None else knn_radii(real, k)
    return manifold_share(fake, real, real_radii), manifold_share(real, fake, knn_radii(fake, k))


@functools.lru_cache(maxsize=4)
def _real_reference(classifier: MNISTClassifier, n: int, k: int, seed: int, root: str):
    """Unit features (n, 128) of n training digits picked by `seed`, and their k-NN radii (n,); computed once
    per classifier and MNIST folder."""
    train = load_mnist(True, data_dir=root)
    pick = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:n]
    feats = embed(train.batch(pick)[0], classifier)
    return feats, knn_radii(feats, k)


def _fast_copy(classifier: MNISTClassifier) -> MNISTClassifier:
    """On the CPU, a channels-last copy, whose convolutions run faster there; the shared classifier is
    left as it is."""
    device = next(classifier.parameters()).device
    return copy.deepcopy(classifier).to(memory_format=torch.channels_last) if device.type == "cpu" else classifier


class SampleMonitor:
    """measure(model, grid) at each snapshot; also an 'on_samples' callback (monitor(trainer)).

    n     real digits and samples in precision and recall (the grid itself may be any size)
    k     nearest neighbour that sets each ball's radius (the paper's k = 3)
    seed  the fixed pick of real digits and the fixed noise of the samples
    every precision and recall at every `every`-th call (1 = at each), None at the others

    The defaults are sized for the cgan recipe's snapshots (a 64-image grid every 25 steps) on a CPU;
    bench/monitor_cost.py measures what the monitor costs a run.
    """

    def __init__(self, n: int = 256, k: int = 3, seed: int = 0, every: int = 20,
                 classifier: MNISTClassifier | None = None):
        _check_sizes(n, k)
        if every < 1:
            raise ValueError(f"every must be at least 1 (1 = precision and recall at each call), got {every}")
        self.n, self.k, self.seed, self.every = n, k, seed, every
        self.classifier = classifier
        self._net = None
        self.calls = 0
        self.last: dict | None = None
        self.history: list[dict] = []      # monitor(trainer): one measure() dict per snapshot, with its step

    def _load(self, device) -> MNISTClassifier:
        if self.classifier is None:
            self.classifier = load_classifier(device=device)
        if self._net is None:
            self._net = _fast_copy(self.classifier)
        return self._net

    def measure(self, model: GenerativeModel, grid: torch.Tensor) -> dict:
        """grid (b, 1, 28, 28) in [-1, 1] -> shares (10 floats, sum 1), confidence, coverage, digits_ok
        (aigc.metrics' definitions), and precision and recall (floats at every `every`-th call, else None)."""
        net = self._load(model.device)
        _, probs = classify(grid, net)                                                  # (b, 10)
        score = score_probabilities(probs)
        hist = torch.tensor(score["class_hist"], dtype=torch.float64)                   # (10,)
        out = {"shares": (hist / hist.sum()).tolist(), "confidence": score["confidence"],
               "coverage": score["coverage"], "digits_ok": score["digits_ok"], "precision": None, "recall": None}
        self.calls += 1
        if self.calls % self.every == 0:
            real, radii = _real_reference(self.classifier, self.n, self.k, self.seed, str(data_root()))
            fake = embed(generate(model, self.n, self.seed), net)                       # (n, 128)
            out["precision"], out["recall"] = precision_recall(real, fake, self.k, radii)
        return out

    def __call__(self, trainer) -> None:
        self.last = {"step": trainer.step, **self.measure(trainer.model, trainer.samples)}
        self.history.append(self.last)

