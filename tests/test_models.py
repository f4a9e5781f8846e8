import math

import pytest
import torch

from aigc import MODELS, TrainConfig, Trainer, build_model
from aigc.device import autocast

NAMES = list(MODELS)


@pytest.mark.parametrize("name", NAMES)
def test_sample_shape_and_range(name):
    model = build_model(name).eval()
    z = model.make_noise(5, generator=torch.Generator().manual_seed(0))
    assert z.shape == (5, model.latent_dim)
    images = model.sample(z, model.default_labels(5))
    assert images.shape == (5, 1, 28, 28)
    assert images.min() >= -1 and images.max() <= 1


@pytest.mark.parametrize("name", NAMES)
def test_steps_on_real_mnist_give_finite_moving_losses(name, mnist):
    torch.manual_seed(0)
    model = build_model(name)
    opts = model.configure_optimizers(1e-3, (0.5, 0.999))
    x, y = mnist.batch(torch.arange(64))
    before = [p.detach().clone() for p in model.parameters()]
    losses = [model.train_step(x, y, opts, autocast(torch.device("cpu"))) for _ in range(5)]
    assert set(losses[0]) == set(model.metric_names)
    for record in losses:
        assert all(math.isfinite(v.item()) for v in record.values())
    first_loss = next(iter(losses[0]))
    assert losses[0][first_loss].item() != losses[-1][first_loss].item()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_mlp_gan_has_the_textbook_shape():
    model = build_model("mlp_gan")
    g = [m.out_features for m in model.generator if isinstance(m, torch.nn.Linear)]
    d = [m.out_features for m in model.discriminator if isinstance(m, torch.nn.Linear)]
    assert model.latent_dim == 100 and g == [256, 512, 1024, 784] and d == [1024, 512, 256, 1]
    assert [m.p for m in model.discriminator if isinstance(m, torch.nn.Dropout)] == [0.3] * 3


def test_cgan_draws_the_digit_it_is_told():
    torch.manual_seed(0)
    model = build_model("cgan").eval()
    z = model.make_noise(2).repeat(2, 1)
    a = model.sample(z[:2], torch.tensor([3, 3]))
    b = model.sample(z[:2], torch.tensor([7, 7]))
    assert model.conditional and not torch.allclose(a, b)


def test_packed_dcgan_discriminator_judges_samples_in_groups(mnist):
    torch.manual_seed(0)
    model = build_model("dcgan", {"pack": 2})
    x, y = mnist.batch(torch.arange(13))                  # an odd batch: the odd one out is left unjudged
    assert model.discriminate(x).shape == (6,)
    assert model.discriminator.features[0].in_channels == 2
    opts = model.configure_optimizers(2e-4, (0.5, 0.999))
    metrics = model.train_step(x, y, opts, autocast(torch.device("cpu")))
    assert all(math.isfinite(v.item()) for v in metrics.values())


def test_vae_encode_and_two_d_latent():
    model = build_model("vae", {"latent_dim": 2})
    mu, logvar = model.encode(torch.zeros(3, 1, 28, 28))
    assert mu.shape == logvar.shape == (3, 2)


def test_vae_fitted_prior_is_each_digits_gaussian_and_makes_it_conditional(mnist):
    from aigc.data import MNISTTensors

    torch.manual_seed(0)
    model = build_model("vae", {"latent_dim": 3, "hidden": 64}).eval()
    assert not model.conditional and model.default_labels(4) is None
    data = MNISTTensors(mnist.images[:600], mnist.labels[:600])
    model.fit_prior(data)
    assert model.conditional and model.default_labels(4).tolist() == [0, 1, 2, 3]
    with torch.no_grad():
        means = model.encode(data.batch(torch.arange(600))[0])[0]                  # (600, 3)
    sevens = means[data.labels == 7]
    torch.testing.assert_close(model.prior_mean[7], sevens.mean(0))
    scale = model.prior_scale_tril[7]
    torch.testing.assert_close(scale @ scale.T, torch.cov(sevens.T) + 1e-4 * torch.eye(3), atol=1e-5, rtol=1e-4)
    # z = 0 decodes each digit's mean; the label picks which
    z = torch.zeros(2, 3)
    torch.testing.assert_close(model.sample(z, torch.tensor([7, 2])), model.decode(model.prior_mean[[7, 2]]))
    assert not torch.allclose(model.sample(z[:1], torch.tensor([7])), model.sample(z[:1], torch.tensor([2])))


def test_vae_checkpoint_from_before_the_prior_loads_unfitted():
    model = build_model("vae", {"latent_dim": 2})
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("prior_")}
    fresh = build_model("vae", {"latent_dim": 2})
    fresh.prior_fitted.fill_(True)
    fresh.load_state_dict(state, strict=True)
    assert not fresh.conditional
    z = torch.randn(3, 2)
    torch.testing.assert_close(fresh.sample(z), model.decode(z))


@pytest.mark.parametrize("name,args,match", [
    ("vae", {"latent_dim": 0}, "latent_dim must be between 1"),
    ("dcgan", {"width": 10_000}, "width must be between"),
    ("mlp_gan", {"dropout": 2.0}, "dropout must be between"),
    ("cgan", {"colour": 1}, "no setting"),
    ("nope", {}, "unknown model"),
])
def test_bad_model_settings_are_named(name, args, match):
    with pytest.raises(ValueError, match=match):
        build_model(name, args)


@pytest.mark.parametrize("field,value,match", [
    ("lr", 10.0, "lr must be between"),
    ("batch_size", 1, "batch_size must be between 8"),
    ("steps", 0, "steps must be between"),
    ("lr", float("nan"), "lr must be between"),
    ("batch_size", 12.5, "batch_size must be an integer"),
])
def test_bad_train_settings_are_named(field, value, match):
    config = TrainConfig.for_model("dcgan", **{field: value})
    with pytest.raises(ValueError, match=match):
        config.validate()
    with pytest.raises(ValueError, match=match):
        Trainer(config)


def test_limits_at_their_edges_are_accepted():
    TrainConfig.for_model("vae", lr=0.1, batch_size=8, steps=1, model_args={"latent_dim": 1}).validate()
