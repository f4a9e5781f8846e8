import numpy as np
import pytest
import torch

from aigc import CheckpointError, build_model, load_mnist
from aigc.latent import find_directions, image_statistics, interpolate, lerp, slerp
from aigc.metrics import (MNISTClassifier, classifier_accuracy, evaluate_model, frechet_distance, load_classifier,
                          quick_score, reference_stats, save_classifier)


def test_shipped_classifier_is_at_least_99_percent_accurate():
    classifier = load_classifier()
    assert classifier is load_classifier(device="cpu")                   # cached per (file, device)
    assert classifier.test_accuracy >= 0.99                              # recorded: all 10,000 test digits
    assert classifier_accuracy(classifier, n=2000) >= 0.99               # checked here: the first 2,000


class Pickled:   # any class: loading it would mean running code from the file
    pass


def test_classifier_file_round_trip_and_bad_files(tmp_path):
    model = MNISTClassifier()
    path = save_classifier(model, tmp_path / "c.pt", test_accuracy=0.5)
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]               # no temp file left behind
    loaded = load_classifier(path)
    assert loaded.test_accuracy == 0.5 and not loaded.training
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    (tmp_path / "garbage.pt").write_bytes(b"not a torch file")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    torch.save({"format": "aigc-classifier", "state_dict": {"w": torch.zeros(1)}}, tmp_path / "wrong.pt")
    torch.save({"format": "aigc-classifier", "state_dict": Pickled()}, tmp_path / "code.pt")
    for name, words in [("missing.pt", "no metrics classifier"), ("garbage.pt", "not a readable"),
                        ("code.pt", "refused"),
                        ("other.pt", "not an aigc metrics classifier"), ("wrong.pt", "do not fit")]:
        with pytest.raises(CheckpointError, match=words):
            load_classifier(tmp_path / name)
    assert issubclass(CheckpointError, ValueError)


def test_frechet_distance_closed_forms():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 4))
    sigma = np.cov(a, rowvar=False)
    mu = a.mean(0)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0, abs=1e-8)
    assert frechet_distance(torch.tensor(mu), torch.tensor(sigma), mu, sigma) == pytest.approx(0, abs=1e-8)
    # 1-D: (m1 - m2)² + (s1 - s2)² with s the standard deviations (sigma arguments are variances)
    assert frechet_distance(1.0, 4.0, -2.0, 9.0) == pytest.approx(9 + (2 - 3) ** 2)
    # diagonal Gaussians: the same, summed over dimensions
    d = frechet_distance(np.zeros(2), np.diag([1.0, 4.0]), np.array([3.0, 0.0]), np.diag([4.0, 9.0]))
    assert d == pytest.approx(9 + (1 - 2) ** 2 + (2 - 3) ** 2)
    # commuting full covariances: a rotation of the diagonal case gives the same distance
    q, _ = np.linalg.qr(rng.normal(size=(2, 2)))
    rot = lambda s: q @ s @ q.T
    assert frechet_distance(np.zeros(2), rot(np.diag([1.0, 4.0])), q @ [3.0, 0.0], rot(np.diag([4.0, 9.0]))) == pytest.approx(d)


def test_real_digits_pass_and_noise_fails():
    test = load_mnist(train=False)
    real = quick_score(test.batch(torch.arange(1000))[0])
    assert real["digits_ok"] and real["coverage"] == 10 and real["confidence"] > 0.95
    assert sum(real["class_hist"]) == 1000
    noise = quick_score(torch.rand(1000, 1, 28, 28) * 2 - 1)
    assert not noise["digits_ok"]


def test_untrained_model_scores_far_above_the_floor():
    torch.manual_seed(0)
    scores = evaluate_model(build_model("dcgan"), n=500)
    assert all(np.isfinite(scores[k]) for k in ("fid", "fid_floor", "fid_ratio", "confidence"))
    assert scores["fid_floor"] == reference_stats()["floor"] > 0
    assert scores["fid_ratio"] > 50 and sum(scores["class_hist"]) == 500 and scores["n"] == 500
    assert not scores["digits_ok"]


def test_shipped_cgan_is_close_to_real_data():
    from aigc import load_checkpoint
    model, _ = load_checkpoint("checkpoints/cgan.pt")
    scores = evaluate_model(model, n=2000)
    assert scores["coverage"] == 10 and scores["confidence"] > 0.95 and scores["fid_ratio"] < 20


def test_conditional_samples_are_scored_at_mnists_own_class_frequencies(mnist):
    from aigc.metrics import generate

    freq = reference_stats()["class_freq"]
    counts = torch.bincount(mnist.labels, minlength=10)
    torch.testing.assert_close(freq, counts.double() / counts.sum())
    assert counts[1] == counts.max() and counts[5] == counts.min()         # MNIST: most 1s, fewest 5s
    model = build_model("cgan").eval()
    only_threes = torch.zeros(10)
    only_threes[3] = 1
    z = model.make_noise(6, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model.sample(z, torch.full((6,), 3))
    torch.testing.assert_close(generate(model, 6, seed=0, class_freq=only_threes), expected)


def test_slerp_keeps_the_norm_and_ends_at_the_ends():
    z0, z1 = torch.randn(64), torch.randn(64)
    t = torch.linspace(0, 1, 7)
    path = slerp(z0, z1, t)
    assert torch.allclose(path[0], z0, atol=1e-5) and torch.allclose(path[-1], z1, atol=1e-5)
    assert torch.allclose(lerp(z0, z1, t)[3], (z0 + z1) / 2, atol=1e-6)
    norms = path.norm(dim=1)
    assert (norms.min() > min(z0.norm(), z1.norm()) * 0.9)     # a straight line would dip in the middle


def test_thickness_direction_adds_ink():
    from aigc import load_checkpoint
    model, _ = load_checkpoint("checkpoints/cgan.pt")
    thickness = next(d for d in find_directions(model, n=512, label=3) if d.name == "thickness")
    z = model.make_noise(64, generator=torch.Generator().manual_seed(5))
    labels = torch.full((64,), 3)
    with torch.no_grad():
        base = image_statistics(model.sample(z, labels))["thickness"]
        more = image_statistics(model.sample(z + 2 * thickness.vector, labels))["thickness"]
    assert (more > base).float().mean() > 0.8
    strip = interpolate(model, z[0], z[1], frames=5, mode="lerp", label=3)
    assert strip.shape == (5, 1, 28, 28)
