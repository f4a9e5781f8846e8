import re

import pytest
import torch

import aigc.latent as latent
from aigc import build_model, load_checkpoint
from aigc.checkpoint import SHIPPED_DIR
from aigc.latent import Effect, axis_directions, image_statistics, principal_directions

MEASURED = re.compile(r"[+−]?\d+(\.\d)? sd|\d+% of samples")


def pixel_change(model, vector, label=None, n=256):
    """Mean absolute pixel change of n samples for a step of 1 along `vector` (d,)."""
    z = model.make_noise(n, generator=torch.Generator().manual_seed(5))
    labels = torch.full((n,), label) if label is not None else None
    with torch.no_grad():
        return (model.sample(z + vector, labels) - model.sample(z, labels)).abs().mean().item()


# For the VAEs, whose z passes through each digit's mixture prior, the first principal direction is only
# 1.2-1.7x a random one (0.8x for the 2-D VAE with a digit chosen); the GANs' are 1.6-4.9x.
@pytest.mark.parametrize("name,label", [("mlp_gan", None), ("mlp_gan", 3), ("cgan", 3)])
def test_first_principal_direction_changes_images_more_than_random_ones(name, label):
    model, _ = load_checkpoint(SHIPPED_DIR / f"{name}.pt")
    directions = principal_directions(model, n=1024, k=3, label=label)
    assert [d.name for d in directions] == ["pc1", "pc2", "pc3"]
    for d in directions:
        assert d.vector.shape == (model.latent_dim,)
        assert d.vector.norm().item() == pytest.approx(1.0, abs=1e-5)
        assert d.help.startswith(f"PC {d.name[2:]} → ") and len(d.help) <= 70
        assert MEASURED.search(d.help), d.help
        assert re.match(r"PC \d → (more ink|leans right|wider) \(\+|PC \d → little change", d.help), d.help
    # what the help names first is what moving along the direction does to fresh samples
    first = directions[0]
    named = first.help.split(" → ")[1].split(" (")[0]
    statistic = {"more ink": "thickness", "leans right": "slant", "wider": "width"}[named]
    z = model.make_noise(256, generator=torch.Generator().manual_seed(9))
    labels = torch.full((256,), label) if label is not None else None
    with torch.no_grad():
        before = image_statistics(model.sample(z - 2 * first.vector, labels))[statistic]
        after = image_statistics(model.sample(z + 2 * first.vector, labels))[statistic]
    assert (after - before).mean() > 0.3 * before.std()
    randoms = torch.randn(8, model.latent_dim, generator=torch.Generator().manual_seed(0))
    random_change = sum(pixel_change(model, r / r.norm(), label) for r in randoms) / len(randoms)
    assert pixel_change(model, directions[0].vector, label) > 1.3 * random_change


def test_principal_directions_leave_the_model_in_its_mode_and_are_oriented():
    torch.manual_seed(0)
    model = build_model("vae", {"latent_dim": 4, "hidden": 32}).train()
    directions = principal_directions(model, n=256, k=2)
    assert model.training and len(directions) == 2
    # flipped so that the largest change is named as an increase
    for d in directions:
        assert re.match(r"PC \d → (more ink|leans right|wider) \(\+|PC \d → little change", d.help), d.help


def test_k_is_capped_at_the_latent_size_and_bad_sizes_are_refused():
    model = build_model("vae", {"latent_dim": 2, "hidden": 32})
    assert len(principal_directions(model, n=64, k=5)) == 2
    with pytest.raises(ValueError, match="k must be between 1 and 20"):
        principal_directions(model, k=0)
    with pytest.raises(ValueError, match="n must be between 16"):
        principal_directions(model, n=4)


def test_axis_directions_for_small_latents_only():
    small = build_model("vae", {"latent_dim": 2, "hidden": 32})
    axes = axis_directions(small)
    assert [d.name for d in axes] == ["z1", "z2"]
    torch.testing.assert_close(torch.stack([d.vector for d in axes]), torch.eye(2))
    for d in axes:
        assert d.help.startswith(f"{d.name}: ") and MEASURED.search(d.help) and len(d.help) <= 70
    assert axis_directions(build_model("cgan", {"latent_dim": 64, "width": 8})) == []


def test_effect_names_the_largest_changes_within_the_room():
    effect = Effect({"thickness": 1.3, "slant": 0.1, "width": -0.6}, digit_share=0.4, turn=(4, 9), turn_share=0.38)
    assert effect.phrase(80) == "more ink (+1.3 sd), turns 4s into 9s (38% of samples), narrower (−0.6 sd)"
    assert effect.phrase(60) == "more ink (+1.3 sd), turns 4s into 9s (38% of samples)"
    assert effect.reversed().phrase(80) == "less ink (−1.3 sd), turns 9s into 4s (38% of samples), wider (+0.6 sd)"
    # many different changes of digit, none the commonest by far
    scattered = Effect({"thickness": 0.0, "slant": 0.5, "width": 0.0}, digit_share=0.9, turn=(1, 7), turn_share=0.1)
    assert scattered.phrase(70) == "leans right (+0.5 sd), changes the digit (90% of samples)"
    quiet = Effect({"thickness": 0.1, "slant": -0.2, "width": 0.0}, digit_share=0.02, turn=(3, 5), turn_share=0.02)
    assert quiet.phrase(70) == "little change (≤ 0.2 sd in ink, slant, width)"


def test_without_the_classifier_the_digit_is_left_out(monkeypatch):
    monkeypatch.setattr(latent, "optional_classifier", lambda model: None)
    model, _ = load_checkpoint(SHIPPED_DIR / "vae2d.pt")
    for d in principal_directions(model, n=256, k=2) + axis_directions(model):
        assert "digit" not in d.help and "samples" not in d.help and MEASURED.search(d.help), d.help
