"""The drawing bench's backend: a drawing made into an MNIST digit, the nearest training digits, and what
each kind of model makes of a digit it is shown."""
import numpy as np
import pytest
import torch
from conftest import new_model
from PIL import Image

from aigc import MODELS, Redraw, load_checkpoint
from aigc.drawing import (CENTRE, canvas_ink, classifier_reading, map_plane, mnist_like, morph_from,
                          nearest_training_digits, redraw)
from aigc import sampling
from aigc.sampling import noise


def centre_and_side(digit: torch.Tensor) -> tuple[float, float, int]:
    """Centre of mass (y, x) and the longer side of the inked box of one digit (1, 1, 28, 28) in [-1, 1]."""
    ink = (digit[0, 0] + 1) / 2
    coords = torch.arange(28.0)
    cy = float((ink.sum(1) * coords).sum() / ink.sum())
    cx = float((ink.sum(0) * coords).sum() / ink.sum())
    inked = ink > 0.05
    return cy, cx, max(int(inked.any(1).sum()), int(inked.any(0).sum()))


def as_drawn(digit: torch.Tensor, scale: int, top: int, left: int, size: int = 320) -> np.ndarray:
    """A test digit as a person might draw it: blown up `scale` times, anywhere on a large canvas (ink)."""
    big = Image.fromarray(((digit[0, 0] + 1) / 2).numpy()).resize((28 * scale, 28 * scale), Image.Resampling.BILINEAR)
    canvas = np.zeros((size, size), dtype=np.float32)
    canvas[top:top + 28 * scale, left:left + 28 * scale] = np.asarray(big)
    return canvas


def test_a_drawn_digit_lands_where_mnist_digits_sit_and_reads_as_itself():
    digits, labels = sampling.test_digits(torch.arange(100))
    rng = np.random.default_rng(0)
    read = 0
    for digit, label in zip(digits, labels):
        scale = int(rng.integers(5, 11))
        top, left = rng.integers(0, 320 - 28 * scale + 1, 2)
        prepared = mnist_like(as_drawn(digit[None], scale, top, left))
        assert prepared.shape == (1, 1, 28, 28) and prepared.min() >= -1 and prepared.max() <= 1
        cy, cx, side = centre_and_side(prepared)
        assert abs(cy - CENTRE) < 0.6 and abs(cx - CENTRE) < 0.6        # MNIST's own spread is 0.3 px
        assert side == 20                                                 # the 20×20 box, as in MNIST
        read += int(classifier_reading(prepared).argmax() == label)
    assert read >= 97          # the classifier reads the prepared drawings as it reads the originals


def test_a_small_off_centre_stroke_is_scaled_up_and_centred():
    canvas = np.zeros((280, 280), dtype=np.float32)
    canvas[20:60, 200:206] = 1.0                      # a short vertical bar in the top right corner: a "1"
    cy, cx, side = centre_and_side(mnist_like(canvas))
    assert abs(cy - CENTRE) < 0.6 and abs(cx - CENTRE) < 0.6 and side == 20


def test_canvas_pixels_become_ink_and_an_empty_canvas_is_no_digit():
    rgba = np.zeros((10, 10, 4), dtype=np.uint8)                # transparent
    assert mnist_like(canvas_ink(rgba)) is None
    rgba[2:5, 2:5] = (255, 255, 255, 255)                      # a white stroke
    rgba[6:8, 6:8] = (0, 0, 0, 255)                            # the eraser's black
    ink = canvas_ink(rgba)
    assert ink[3, 3] == pytest.approx(1.0) and ink[7, 7] == 0 and ink[0, 0] == 0
    with pytest.raises(ValueError, match="RGBA"):
        canvas_ink(np.zeros((10, 10, 3), dtype=np.uint8))


def test_the_nearest_training_digit_of_a_training_digit_is_itself(mnist):
    index = 12_345
    digit = mnist.batch(torch.tensor([index]))[0]
    found = nearest_training_digits(digit, k=3)
    assert found.indices[0] == index and found.distances[0] == pytest.approx(0, abs=1e-3)
    assert found.labels[0] == int(mnist.labels[index]) and list(found.distances) == sorted(found.distances)
    assert torch.equal(found.images[0], digit[0])


def test_a_vae_encodes_a_digit_and_its_reconstruction_is_closer_than_a_sample():
    model, _ = load_checkpoint("checkpoints/vae.pt")
    model.eval()
    digit = sampling.test_digits(torch.tensor([0]))[0]
    found = redraw(model, digit)
    assert model.redraw is Redraw.ENCODE and found.code.shape == (1, model.latent_dim)
    with torch.no_grad():
        sample = model.sample(noise(model, 1, 0), torch.tensor([7]))
    assert found.error < 0.5 * float((sample - digit).pow(2).mean())
    strip = morph_from(model, digit, found, seed=3, frames=6, label=7)
    assert strip.shape == (6, 1, 28, 28) and torch.allclose(strip[0], found.image[0], atol=1e-5)


def test_sdedit_at_full_strength_is_the_models_own_sample_and_the_morph_ends_there():
    torch.manual_seed(0)
    model = new_model("diffusion", {"width": 8, "ema_decay": 0.0}).eval()
    digit = sampling.test_digits(torch.tensor([1]))[0]
    labels = torch.tensor([2])
    z = noise(model, 1, 5)
    edited = model.edit(digit, labels, strength=1.0, noise=z, steps=6, guidance=1.0)
    assert torch.allclose(edited.images[-1], model.sample(z, labels, steps=6, guidance=1.0), atol=1e-5)
    light = model.edit(digit, labels, strength=0.1, noise=z, steps=6, guidance=1.0)
    assert len(light.estimates) == 1             # a tenth of the way: one step of six
    found = redraw(model, digit, label=2, strength=0.5, steps=6, guidance=1.0)
    strip = morph_from(model, digit, found, seed=5, frames=5, steps=6, guidance=1.0)
    assert torch.equal(strip[0], digit[0]) and torch.allclose(strip[-1], edited.images[-1][0], atol=1e-5)
    with pytest.raises(ValueError, match="strength"):
        model.edit(digit, labels, strength=0.0)


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_says_how_it_redraws_and_does(name):
    torch.manual_seed(0)
    model = new_model(name).eval()
    digit = sampling.test_digits(torch.tensor([2]))[0]
    found = redraw(model, digit, label=1 if model.conditional else None, strength=0.3,
                   **{s.name: s.default for s in model.sampling_settings})
    assert isinstance(model.redraw, Redraw) and found.image.shape == (1, 1, 28, 28)
    assert np.isfinite(found.error) and (found.code is not None) == (model.redraw is not Redraw.EDIT)


def test_the_map_plane_is_the_plane_of_most_spread():
    codes = np.random.default_rng(0).normal(size=(500, 16)) * np.r_[5.0, 3.0, np.ones(14) * 0.1]
    mean, basis = map_plane(codes)
    assert np.allclose(basis.T @ basis, np.eye(2), atol=1e-8)
    assert np.abs(basis[:2]).sum(0).min() > 0.99                 # the two axes with the most spread
    assert np.array_equal(map_plane(codes[:, :2])[1], np.eye(2))
