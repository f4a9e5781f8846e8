import pytest
import torch

from aigc import TrainConfig, Trainer, build_model, load_mnist
from aigc.metrics import classify, generate, load_classifier, score_probabilities
from aigc.monitor import SampleMonitor, embed, knn_radii, precision_recall

N = 256


@pytest.fixture(scope="module")
def test_features():
    """Unit features of 2N random test digits (N, 128) x 2, and of N test-set 1s."""
    classifier, test = load_classifier(), load_mnist(train=False)
    pick = torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[:2 * N]
    feats = embed(test.batch(pick)[0], classifier)
    ones = embed(test.batch(torch.nonzero(test.labels == 1).squeeze(1)[:N])[0], classifier)
    return feats[:N], feats[N:], ones


def test_disjoint_halves_of_real_digits_score_high_on_both(test_features):
    a, b, _ = test_features
    precision, recall = precision_recall(a, b)
    assert precision > 0.7 and recall > 0.7, (precision, recall)      # seen: 0.85, 0.82
    assert precision_recall(a, a) == (1.0, 1.0)


def test_only_ones_are_precise_but_recall_little(test_features):
    real, _, ones = test_features
    precision, recall = precision_recall(real, ones)
    assert precision > 0.7 and recall < 0.35, (precision, recall)     # seen: 0.89, 0.19: the 1s among the reals


def test_noise_images_are_not_precise(test_features):
    real, _, _ = test_features
    noise = torch.rand(N, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    precision, recall = precision_recall(real, embed(noise, load_classifier()))
    assert precision < 0.1 and recall < 0.05, (precision, recall)     # seen: 0.004, 0.0


def test_knn_radii_skip_the_point_itself():
    x = torch.tensor([[0.0], [1.0], [3.0], [6.0]])
    assert knn_radii(x, k=1).tolist() == [1.0, 1.0, 2.0, 3.0]
    assert knn_radii(x, k=3).tolist() == [6.0, 5.0, 3.0, 6.0]


def test_measure_reads_the_grid_and_measures_precision_every_few_calls():
    torch.manual_seed(0)
    model = build_model("cgan")                       # untrained: what a run's first snapshot sees
    grid = generate(model, 64, seed=1)                # (64, 1, 28, 28)
    monitor = SampleMonitor(n=64, every=2)
    results = [monitor.measure(model, grid) for _ in range(4)]
    assert [r["precision"] is None for r in results] == [True, False, True, False]
    assert [r["recall"] is None for r in results] == [True, False, True, False]
    assert all(0.0 <= r["precision"] <= 1.0 and 0.0 <= r["recall"] <= 1.0 for r in results[1::2])
    assert results[1]["precision"] == results[3]["precision"]          # fixed noise, fixed real digits
    expected = score_probabilities(classify(grid, load_classifier())[1])
    for r in results:
        assert len(r["shares"]) == 10 and sum(r["shares"]) == pytest.approx(1.0)
        assert r["shares"] == pytest.approx([h / 64 for h in expected["class_hist"]])
        assert r["coverage"] == expected["coverage"] == sum(h >= 1 for h in expected["class_hist"])
        assert r["confidence"] == pytest.approx(expected["confidence"], abs=1e-4)


def test_monitor_as_an_on_samples_callback(mnist):
    monitor = SampleMonitor(n=32, every=2)
    trainer = Trainer(TrainConfig.for_model("cgan", steps=3, sample_every=1, device="cpu"), data=mnist)
    trainer.add_callback("on_samples", monitor)
    trainer.run()
    assert [h["step"] for h in monitor.history] == [1, 2, 3]
    assert [h["precision"] is None for h in monitor.history] == [True, False, True]
    assert monitor.last is monitor.history[-1]


@pytest.mark.parametrize("kwargs, words", [
    ({"n": 3, "k": 3}, "at least k \\+ 1 = 4 points"),
    ({"k": 0}, "k must be at least 1"),
    ({"every": 0}, "every must be at least 1"),
])
def test_bad_arguments_are_refused(kwargs, words):
    with pytest.raises(ValueError, match=words):
        SampleMonitor(**kwargs)


def test_precision_recall_refuses_too_few_points():
    with pytest.raises(ValueError, match="at least k \\+ 1"):
        precision_recall(torch.randn(10, 8), torch.randn(3, 8), k=3)
    with pytest.raises(ValueError, match="k must be at least 1"):
        precision_recall(torch.randn(10, 8), torch.randn(10, 8), k=0)
