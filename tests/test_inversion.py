import pytest
import torch
from conftest import new_model

from aigc import build_model, load_checkpoint
from aigc.checkpoint import SHIPPED_DIR
from aigc.inversion import can_invert, invert, labels_to_try, squared_error
from aigc.latent import optional_classifier
from aigc.sampling import test_digits as mnist_test_digits

FEW_STEPS = dict(steps=100, starts=4)


def spread_out(model):
    """A tiny model whose generator draws visibly different images for different z: PyTorch's default
    initialisation in place of the DCGAN recipe's N(0, 0.02), under which every z draws the same grey."""
    for module in model.modules():
        if module is not model and hasattr(module, "reset_parameters"):
            module.reset_parameters()
    return model.eval()


TINY_CGAN = {"latent_dim": 16, "width": 8, "embed_dim": 4, "ema_decay": 0.0}
TINY_VAE = {"latent_dim": 2, "hidden": 32}


def tiny(name, args, mnist=None):
    torch.manual_seed(0)
    model = build_model(name, args)
    if mnist is not None:
        model.fit_clusters(mnist, n=1000)
    return spread_out(model)


def known_target(model, label):
    """An image the model draws from a known z* (1, 1, 28, 28), and the error of another random z with
    the same label against it."""
    generator = torch.Generator().manual_seed(1)
    z_star, z_random = model.make_noise(2, generator=generator).split(1)
    labels = torch.tensor([label]) if label is not None else None
    with torch.no_grad():
        target = model.sample(z_star, labels)
        random_error = squared_error(model.sample(z_random, labels), target).item()
    return target, random_error


@pytest.mark.parametrize("name,args,label", [("cgan", TINY_CGAN, 3), ("cgan", TINY_CGAN, None), ("vae", TINY_VAE, None)])
def test_inversion_redraws_a_known_latents_image(name, args, label):
    model = tiny(name, args)
    target, random_error = known_target(model, 3 if model.label_count else None)
    assert random_error > 1e-4                       # the target is not what any z draws
    found = invert(model, target, label=label, **FEW_STEPS)
    assert found.error < 0.1 * random_error
    assert found.error < 0.5 * found.start_error     # the optimisation, not only the random pool
    assert found.z.shape == (1, model.latent_dim)
    assert (found.labels is None) == (not model.label_count)
    if label is not None:
        assert found.labels.tolist() == [label]


@pytest.mark.parametrize("name,args", [
    ("dcgan", {"latent_dim": 16, "width": 8, "clusters": 5, "ema_decay": 0.0}),
    ("mlp_gan", {"latent_dim": 16, "clusters": 5, "ema_decay": 0.0}),
])
def test_inversion_of_a_self_conditioned_gan_finds_the_group(name, args, mnist):
    model = tiny(name, args, mnist)
    target, random_error = known_target(model, 2)
    found = invert(model, target, **FEW_STEPS)
    assert found.error < 0.1 * random_error
    # the groups tried are those with the nearest k-means centres, as assign_clusters picks them
    x, _ = mnist.batch(torch.arange(20))
    for image in x.split(1):
        assert labels_to_try(model, image, None)[0].item() == model.assign_clusters(image).item()


def test_inversion_reports_what_it_found_and_leaves_the_model_as_it_was():
    model = tiny("cgan", TINY_CGAN).train()
    model.generator.embed.weight.requires_grad_(False)
    flags = [p.requires_grad for p in model.parameters()]
    weights = [p.detach().clone() for p in model.parameters()]
    target, _ = known_target(model.eval(), 5)
    model.train()
    found = invert(model, target, label=5, steps=20, starts=2)
    assert model.training
    assert [p.requires_grad for p in model.parameters()] == flags
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(weights, model.parameters()))
    with torch.no_grad():
        redrawn = model.eval().sample(found.z, found.labels)
    torch.testing.assert_close(found.image, redrawn)
    assert found.error == pytest.approx(squared_error(redrawn, target).item(), rel=1e-5)
    assert found.error <= found.start_error


def test_progress_is_reported_in_tenths_up_to_one():
    model = tiny("vae", TINY_VAE)
    target, _ = known_target(model, None)
    fractions = []
    invert(model, target, steps=50, starts=2, progress=fractions.append)
    assert fractions == pytest.approx([k / 10 for k in range(1, 11)])
    fractions.clear()
    invert(model, target, steps=7, starts=2, progress=fractions.append)
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and len(fractions) == 7


@pytest.mark.parametrize("target,options,message", [
    (torch.zeros(28, 28), {}, r"shape \(1, 1, 28, 28\), got \(28, 28\)"),
    (torch.zeros(1, 1, 32, 32), {}, "shape"),
    ([[0.0]], {}, "got list"),
    (torch.full((1, 1, 28, 28), 2.0), {}, r"in \[-1, 1\]"),
    (torch.full((1, 1, 28, 28), float("nan")), {}, "finite"),
    (torch.zeros(1, 1, 28, 28), {"steps": 0}, "steps must be between 1 and 2000"),
    (torch.zeros(1, 1, 28, 28), {"starts": 65}, "starts must be between 1 and 64"),
    (torch.zeros(1, 1, 28, 28), {"starts": 2.5}, "starts must be an integer"),
    (torch.zeros(1, 1, 28, 28), {"label": 10}, "label must be between 0 and 9"),
])
def test_bad_inputs_are_refused(target, options, message):
    model = tiny("cgan", TINY_CGAN)
    with pytest.raises(ValueError, match=message):
        invert(model, target, **options)


def test_models_without_labels_or_one_pass_sampling_are_refused():
    vae = build_model("vae", TINY_VAE)
    with pytest.raises(ValueError, match="label must be None"):
        invert(vae, torch.zeros(1, 1, 28, 28), label=3)
    diffusion = new_model("diffusion")
    assert can_invert(vae) and not can_invert(diffusion)
    with pytest.raises(ValueError, match="draws step by step"):
        invert(diffusion, torch.zeros(1, 1, 28, 28))


@pytest.mark.parametrize("name", ["cgan", "dcgan"])
def test_shipped_gan_redraws_a_real_test_digit(name):
    model, _ = load_checkpoint(SHIPPED_DIR / f"{name}.pt")
    x, y = mnist_test_digits(torch.tensor([0, 1]))                  # a 7 and a 2
    for image, digit in zip(x.split(1), y.tolist()):
        found = invert(model, image)
        with torch.no_grad():
            labels = torch.full((64,), digit) if model.conditional else None
            random_error = squared_error(model.sample(model.make_noise(64), labels), image).median().item()
        assert found.error < 0.15 * random_error
        if model.conditional and optional_classifier(model) is not None:
            assert found.labels.item() == digit
