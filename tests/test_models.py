import math

import pytest
import torch
import torch.nn.functional as F
from conftest import new_model

from aigc import MODELS, TrainConfig, Trainer, build_model
from aigc.device import autocast
from aigc.models.base import features_product, kmeans, pick_slice
from aigc.models.image_convs import ChannelsLast, ImageConv2d, ImageConvTranspose2d, _ImageConv, _ImageConvTranspose

NAMES = list(MODELS)


@pytest.mark.parametrize("name", NAMES)
def test_sample_shape_and_range(name):
    model = new_model(name).eval()
    z = model.make_noise(5, generator=torch.Generator().manual_seed(0))
    assert z.shape == (5, model.latent_dim)
    images = model.sample(z, model.default_labels(5))
    assert images.shape == (5, 1, 28, 28)
    assert images.min() >= -1 and images.max() <= 1


def ready_to_train(name: str, mnist, batch: int):
    """A fresh seeded model, its optimizers and a batch of real digits with their labels."""
    torch.manual_seed(0)
    model = new_model(name)
    model.start_training(mnist)
    return model, model.configure_optimizers(1e-3, (0.5, 0.999)), *mnist.batch(torch.arange(batch))


@pytest.mark.parametrize("name", NAMES)
def test_steps_on_real_mnist_give_finite_moving_losses(name, mnist):
    model, opts, x, y = ready_to_train(name, mnist, 64)
    before = [p.detach().clone() for p in model.parameters()]
    losses = [model.train_step(x, y, opts, autocast(torch.device("cpu"))) for _ in range(5)]
    assert set(losses[0]) == set(model.metric_names)
    for record in losses:
        assert all(math.isfinite(v.item()) for v in record.values())
    first_loss = next(iter(losses[0]))
    assert losses[0][first_loss].item() != losses[-1][first_loss].item()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.parametrize("name", ["cgan", "dcgan", "mlp_gan"])
def test_a_gan_generator_update_computes_and_changes_g_alone(name, mnist):
    model, opts, x, y = ready_to_train(name, mnist, 16)
    d_before = [p.detach().clone() for p in model.discriminator.parameters()]
    g_before = [p.detach().clone() for p in model.generator.parameters()]
    model.train_step(x, y, opts, autocast(torch.device("cpu")), phase="g")
    assert all(p.grad is None for p in model.discriminator.parameters())       # no work spent on D's gradients
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.generator.parameters())
    assert all(torch.equal(a, b) for a, b in zip(d_before, model.discriminator.parameters()))
    assert all(not torch.equal(a, b) for a, b in zip(g_before, model.generator.parameters()))


@pytest.mark.parametrize("name, args", [("cgan", {}), ("mlp_gan", {"clusters": 4})])
def test_projection_discriminator_is_w_plus_embedding_dot_features(name, args, mnist):
    """logit = w·φ(x) + embed(y)·φ(x) + b (Miyato & Koyama 2018), exactly in float64 and closely under bf16."""
    torch.manual_seed(0)
    model = build_model(name, args).eval()
    d = model.discriminator
    torch.nn.init.normal_(d.embed.weight, 0.0, 0.02)      # mlp_gan's starts at zero, which would hide the term
    x, y = mnist.batch(torch.arange(8))
    y = y % model.label_count
    features, head = (d.body.features, d.body.head) if name == "cgan" else (d.net[:-2], d.net[-2])
    d.double()
    h = features(x.double()).flatten(1)                                           # (8, f)
    expected = h @ head.weight[0] + (d.embed(y) * h).sum(1) + head.bias           # (8,)
    torch.testing.assert_close(d(x.double(), y), expected)
    d.float()
    with autocast(torch.device("cpu")):
        low = d(x, y).float()
    torch.testing.assert_close(low, expected.float(), atol=0.05, rtol=0.05)


def test_image_convolutions_compute_pytorchs_convolutions():
    """D's first and G's last layer as matrix products of 4 × 4 patches: the same numbers and gradients as
    PyTorch's convolutions, in float64 (the products called directly: in float64 the layers are PyTorch's)."""
    torch.manual_seed(0)
    conv, deconv = ImageConv2d(6).double(), ImageConvTranspose2d(6).double()
    x = torch.randn(3, 1, 10, 8, dtype=torch.float64, requires_grad=True)          # any even size
    h = torch.randn(3, 6, 5, 4, dtype=torch.float64, requires_grad=True)
    torch.testing.assert_close(_ImageConv.apply(x, conv.weight, conv.bias),
                               F.conv2d(x, conv.weight, conv.bias, stride=2, padding=1))
    torch.testing.assert_close(_ImageConvTranspose.apply(h, deconv.weight, deconv.bias),
                               F.conv_transpose2d(h, deconv.weight, deconv.bias, stride=2, padding=1))
    assert torch.autograd.gradcheck(_ImageConv.apply, (x, conv.weight, conv.bias))
    assert torch.autograd.gradcheck(_ImageConvTranspose.apply, (h, deconv.weight, deconv.bias))


def test_image_convolutions_take_the_matrix_products_on_a_cpu_in_bf16_and_float32():
    """On a CPU, under bf16 autocast and in float32, the layers run as products of patches, close to PyTorch's
    convolutions in values and gradients (bf16: to its rounding; float32: to float32's); in float64 they are
    PyTorch's own."""
    torch.manual_seed(0)
    conv, deconv = ImageConv2d(32), ImageConvTranspose2d(32)
    x = torch.randn(16, 1, 28, 28, requires_grad=True)
    h = torch.randn(16, 32, 14, 14, requires_grad=True)
    assert type(conv.double()(x.double()).grad_fn).__name__ == "ConvolutionBackward0"
    assert type(deconv.double()(h.double()).grad_fn).__name__ == "ConvolutionBackward0"
    conv, deconv = conv.float(), deconv.float()
    for bf16, tolerance in ((True, 0.02), (False, 1e-5)):
        for layer, inputs, reference in ((conv, x, lambda: F.conv2d(x, conv.weight, conv.bias, stride=2, padding=1)),
                                         (deconv, h, lambda: F.conv_transpose2d(h, deconv.weight, deconv.bias, 2, 1))):
            results = []
            for run in (lambda: layer(inputs), reference):
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                    out = run()
                grads = torch.autograd.grad(out, (inputs, layer.weight, layer.bias), torch.ones_like(out))
                results.append((out, *grads))
            assert results[0][0].dtype == results[1][0].dtype == (torch.bfloat16 if bf16 else torch.float32)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                assert type(layer(inputs).grad_fn).__name__.startswith("_ImageConv")
            for ours, theirs in zip(*results):
                torch.testing.assert_close(ours.float(), theirs.float(), atol=tolerance * theirs.abs().max().item(),
                                           rtol=tolerance)


def test_the_dcgan_pair_runs_channels_last_on_a_cpu_and_hands_gradients_back_in_each_inputs_layout():
    """On a CPU, under bf16 and in float32, the convolutions between the image-end layers get channels-last
    inputs (oneDNN's fastest layout there); in float64 the model keeps PyTorch's default layout. G's
    conversion hands its gradient back in its input's layout, and D's head reads channels-last features as
    they lie: the same logits and gradients as in PyTorch's order, and the gradient in the features' own layout."""
    model = build_model("cgan").train()
    inputs = {}
    for name, layer in (("g", model.generator.net.upsample[0]), ("d", model.discriminator.body.features[2])):
        layer.register_forward_pre_hook(lambda module, args, name=name: inputs.update({name: args[0]}))
    z, labels = torch.randn(8, model.latent_dim), torch.arange(8)
    for bf16, dtype, channels_last in ((True, torch.float32, True), (False, torch.float32, True),
                                       (False, torch.float64, False)):
        model.to(dtype)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            model.discriminate(model.generate(model.generator, z.to(dtype), labels), labels).float().sum().backward()
        layout = torch.channels_last if channels_last else torch.contiguous_format
        assert all(h.is_contiguous(memory_format=layout) and h.stride()[1] == (1 if channels_last else h[0, 0].numel())
                   for h in inputs.values()), (bf16, dtype, [h.stride() for h in inputs.values()])

    def layouts_and_gradient(layout, function):
        leaf = torch.randn(4, 6, 5, 5, generator=torch.Generator().manual_seed(0)).contiguous(memory_format=layout)
        x = leaf.requires_grad_() * 1   # not a leaf: autograd copies a leaf's gradient into the leaf's layout itself
        grads = []
        x.register_hook(grads.append)
        out = function(x)
        upstream = torch.empty_like(out).copy_(torch.linspace(-1, 1, out.numel()).view(out.shape))   # out's layout
        (out * upstream).sum().backward()
        return out, grads[0]

    with torch.autocast("cpu", dtype=torch.bfloat16):
        converted, grad = layouts_and_gradient(torch.contiguous_format, ChannelsLast())
    assert converted.is_contiguous(memory_format=torch.channels_last) and grad.is_contiguous()
    assert ChannelsLast()(converted) is converted and ChannelsLast()(grad.double()).is_contiguous()

    weight = torch.randn(3, 150)
    expected, expected_grad = layouts_and_gradient(torch.contiguous_format, lambda x: x.flatten(1) @ weight.t())
    for layout in (torch.contiguous_format, torch.channels_last):
        logits, grad = layouts_and_gradient(layout, lambda x: features_product(x, weight))
        torch.testing.assert_close(logits, expected)
        torch.testing.assert_close(grad, expected_grad)
        assert grad.is_contiguous(memory_format=layout), (layout, grad.stride())
    torch.testing.assert_close(features_product(expected_grad.flatten(1), weight), expected_grad.flatten(1) @ weight.t())


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
    model = build_model("vae", {"latent_dim": 3, "hidden": 64, "prior_components": 1}).eval()
    assert not model.conditional and model.default_labels(4) is None
    data = MNISTTensors(mnist.images[:600], mnist.labels[:600])
    model.fit_prior(data)
    assert model.conditional and model.default_labels(4).tolist() == [0, 1, 2, 3]
    with torch.no_grad():
        means = model.encode(data.batch(torch.arange(600))[0])[0]                  # (600, 3)
    sevens = means[data.labels == 7]
    torch.testing.assert_close(model.prior_mean[7, 0], sevens.mean(0))
    scale = model.prior_scale_tril[7, 0]
    torch.testing.assert_close(scale @ scale.T, torch.cov(sevens.T, correction=0) + 1e-4 * torch.eye(3),
                               atol=1e-5, rtol=1e-4)
    # z = 0 decodes each digit's mean; the label picks which
    z = torch.zeros(2, 3)
    torch.testing.assert_close(model.sample(z, torch.tensor([7, 2])), model.decode(model.prior_mean[[7, 2], 0]))
    assert not torch.allclose(model.sample(z[:1], torch.tensor([7])), model.sample(z[:1], torch.tensor([2])))


def test_gaussian_mixture_em_finds_the_clusters():
    from aigc.models.vae import fit_gaussian_mixture

    g = torch.Generator().manual_seed(0)
    a = torch.randn(3000, 2, generator=g) * 0.5 + torch.tensor([4.0, 0.0])
    b = torch.randn(1000, 2, generator=g) @ torch.tensor([[1.0, 0.0], [0.8, 0.6]]) - 4.0
    weight, mean, scale_tril = fit_gaussian_mixture(torch.cat([a, b]), 2, generator=g)
    i = int(mean[:, 0].argmax())             # the component at x = +4
    torch.testing.assert_close(weight[[i, 1 - i]], torch.tensor([0.75, 0.25]), atol=0.01, rtol=0)
    torch.testing.assert_close(mean[i], a.mean(0), atol=0.02, rtol=0)
    torch.testing.assert_close(mean[1 - i], b.mean(0), atol=0.02, rtol=0)
    cov_b = scale_tril[1 - i] @ scale_tril[1 - i].T
    torch.testing.assert_close(cov_b, torch.cov(b.T), atol=0.08, rtol=0)


def test_vae_mixture_prior_turns_standard_noise_into_exact_mixture_draws():
    model = build_model("vae", {"latent_dim": 2, "prior_components": 3}).eval()
    model.prior_weight[4] = torch.tensor([0.2, 0.5, 0.3])
    model.prior_mean[4] = torch.tensor([[-20.0, 0.0], [0.0, 0.0], [20.0, 0.0]])
    model.prior_scale_tril[4] = torch.diag(torch.tensor([2.0, 0.5])).expand(3, 2, 2)
    model.prior_fitted.fill_(True)
    z = torch.randn(40_000, 2, generator=torch.Generator().manual_seed(0))
    codes = model.prior_latent(z, torch.full((40_000,), 4))                            # (n, 2)
    comp = torch.bucketize(codes[:, 0].contiguous(), torch.tensor([-10.0, 10.0]))                 # which cluster each fell in
    torch.testing.assert_close(torch.bincount(comp) / 40_000., torch.tensor([0.2, 0.5, 0.3]), atol=0.01, rtol=0)
    for j, centre in enumerate((-20.0, 0.0, 20.0)):
        inside = codes[comp == j] - torch.tensor([centre, 0.0])
        torch.testing.assert_close(inside.mean(0), torch.zeros(2), atol=0.06, rtol=0)
        torch.testing.assert_close(inside.std(0), torch.tensor([2.0, 0.5]), atol=0.05, rtol=0)
    # a small step in z almost always moves the code a little (sliders move the image a little). Near the
    # edge of a slice, the component's far tail, z₀ is stretched by up to 1 / weight or jumps components.
    moved = (model.prior_latent(z[:1000] + 1e-3, torch.full((1000,), 4)) - codes[:1000]).norm(dim=1)
    assert (moved < 0.1).float().mean() > 0.97


def test_vae_sharpness_matches_the_share_of_grey_pixels(mnist):
    from aigc.data import MNISTTensors

    torch.manual_seed(0)
    model = build_model("vae", {"latent_dim": 3, "hidden": 64}).eval()
    data = MNISTTensors(mnist.images[:500], mnist.labels[:500])
    opts = model.configure_optimizers(1e-3, (0.9, 0.999))
    model.train()
    for _ in range(60):
        model.train_step(*data.batch(torch.randint(0, 500, (64,))), opts, autocast(torch.device("cpu")))
    model.eval()
    factor = model.fit_sharpness(data)
    x = data.batch(torch.arange(500))[0]
    with torch.no_grad():
        logits = model.decode_logits(model.encode(x)[0])

    def grey(p):
        return ((p > 0.1) & (p < 0.9)).float().mean().item()

    target = grey((x + 1) / 2)
    assert 1.0 < factor < 16.0 and model.decoder_sharpness.item() == factor
    assert grey(torch.sigmoid(logits * factor)) <= target < grey(torch.sigmoid(logits * (factor - 0.01)))
    torch.testing.assert_close(model.decode(model.encode(x[:4])[0]), torch.sigmoid(logits[:4] * factor) * 2 - 1)


def test_vae_checkpoint_from_before_the_prior_loads_unfitted():
    model = build_model("vae", {"latent_dim": 2})
    state = {k: v for k, v in model.state_dict().items() if not k.startswith(("prior_", "decoder_sharpness"))}
    fresh = build_model("vae", {"latent_dim": 2})
    fresh.prior_fitted.fill_(True)
    fresh.load_state_dict(state, strict=True)
    assert not fresh.conditional
    z = torch.randn(3, 2)
    torch.testing.assert_close(fresh.sample(z), model.decode(z))


def test_vae_checkpoint_with_one_gaussian_per_digit_loads_as_that_gaussian():
    model = build_model("vae", {"latent_dim": 2})
    state = {k: v for k, v in model.state_dict().items() if not k.startswith(("prior_", "decoder_sharpness"))}
    mean, scale_tril = torch.randn(10, 2), torch.tensor([[1.5, 0.0], [0.3, 0.2]]).repeat(10, 1, 1)
    state.update(prior_mean=mean, prior_scale_tril=scale_tril, prior_fitted=torch.tensor(True))
    fresh = build_model("vae", {"latent_dim": 2})
    fresh.load_state_dict(state, strict=True)
    assert fresh.conditional and fresh.decoder_sharpness.item() == 1.0
    z, labels = torch.randn(5, 2), torch.tensor([0, 3, 3, 9, 1])
    expected = mean[labels] + (scale_tril[labels] @ z.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(fresh.sample(z, labels), model.decode(expected), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name,args,match", [
    ("vae", {"latent_dim": 0}, "latent_dim must be between 1"),
    ("dcgan", {"width": 10_000}, "width must be between"),
    ("mlp_gan", {"dropout": 2.0}, "dropout must be between"),
    ("dcgan", {"clusters": 10, "pack": 2}, "clusters and pack > 1 can't be combined"),
    ("dcgan", {"clusters": -1}, "clusters must be between 0 and 100"),
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


def test_gan_without_weight_averaging_keeps_no_copy_and_loads_files_that_kept_one():
    averaged = build_model("cgan", {"width": 8, "ema_decay": 0.5})
    plain = build_model("cgan", {"width": 8, "ema_decay": 0})
    assert not any(k.startswith("generator_ema.") for k in plain.state_dict())
    assert sum(p.numel() for p in plain.state_dict().values()) < sum(p.numel() for p in averaged.state_dict().values())
    old_file = averaged.state_dict()              # a file from when the unused copy was still saved
    plain.load_state_dict(old_file, strict=True)
    z, labels = torch.randn(2, 64), torch.tensor([1, 8])
    averaged.eval()
    torch.testing.assert_close(plain.eval().sample(z, labels), averaged.generate(averaged.generator, z, labels))


def test_vae_prior_fit_survives_codes_that_collapse(mnist):
    """An untrained or collapsed encoder puts many digits on one point: the fit must still succeed."""
    from aigc.data import MNISTTensors

    model = build_model("vae", {"latent_dim": 4, "hidden": 32, "prior_components": 3}).eval()
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.zero_()                                  # every digit encodes to exactly 0
    data = MNISTTensors(mnist.images[:400], mnist.labels[:400])
    model.finish_training(data)
    assert model.conditional and torch.isfinite(model.prior_scale_tril).all()
    assert torch.isfinite(model.sample(torch.randn(5, 4), torch.arange(5))).all()


def test_pick_slice_gives_categories_by_weight_and_fresh_standard_noise():
    z0 = torch.randn(200_000, 1, generator=torch.Generator().manual_seed(0))
    weight = torch.tensor([[0.5, 0.2, 0.3]]).expand(len(z0), 3)
    index, noise = pick_slice(z0, weight)
    share = torch.bincount(index, minlength=3).float() / len(z0)
    torch.testing.assert_close(share, weight[0], atol=0.005, rtol=0)
    for j in range(3):                      # within every slice the noise is N(0, 1) again
        part = noise[index == j, 0]
        assert abs(part.mean().item()) < 0.02 and abs(part.std().item() - 1) < 0.02
    near, _ = pick_slice(z0[:1000] + 1e-3, weight[:1000])           # a small step keeps the slice, mostly
    assert (near == index[:1000]).float().mean() > 0.99


def test_kmeans_finds_separated_groups():
    generator = torch.Generator().manual_seed(0)
    truth = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = torch.cat([c + torch.randn(300, 2, generator=generator) for c in truth])          # (900, 2)
    centres = kmeans(x, 3, generator=generator)
    found = centres[torch.cdist(truth, centres).argmin(1)]          # the centre nearest each true one
    torch.testing.assert_close(found, truth, atol=0.25, rtol=0)
    assert len(set(torch.cdist(truth, centres).argmin(1).tolist())) == 3


@pytest.mark.parametrize("name,args", [("dcgan", {"clusters": 6, "width": 8}), ("mlp_gan", {"clusters": 6})])
def test_self_conditioned_gan_groups_the_data_and_draws_each_group(name, args, mnist):
    torch.manual_seed(0)
    model = build_model(name, args)
    opts = model.configure_optimizers(1e-3, (0.5, 0.999))
    x, y = mnist.batch(torch.arange(64))
    with pytest.raises(RuntimeError, match="not fitted yet"):          # no groups, no training
        model.train_step(x, y, opts, autocast(torch.device("cpu")))
    model.start_training(mnist)
    assert model.clusters_fitted and model.label_count == 6
    # weights are the groups' shares of the data, and each image goes to its nearest centre
    share = torch.bincount(model.assign_clusters(mnist.batch(torch.arange(len(mnist)))[0]), minlength=6) / len(mnist)
    torch.testing.assert_close(model.cluster_weight, share.float())
    groups = model.assign_clusters(x)
    nearest = torch.cdist(x.flatten(1), model.cluster_centres).argmin(1)
    assert torch.equal(groups, nearest)
    # z₀ picks the group at its weight; a given group changes the image
    model.eval()
    z = torch.randn(30_000, model.latent_dim)
    picked = pick_slice(z[:, :1], model.cluster_weight.expand(len(z), -1))[0]
    torch.testing.assert_close(torch.bincount(picked, minlength=6) / len(z), model.cluster_weight, atol=0.01, rtol=0)
    assert not torch.allclose(model.sample(z[:4], torch.full((4,), 0)), model.sample(z[:4], torch.full((4,), 5)))
    model.train()
    metrics = [model.train_step(x, y, opts, autocast(torch.device("cpu"))) for _ in range(3)]
    assert all(math.isfinite(v.item()) for m in metrics for v in m.values())


@pytest.mark.parametrize("name", NAMES)
def test_what_a_model_declares_fits_its_config(name):
    from dataclasses import fields

    from aigc import Section, train_settings

    config_cls, model_cls = MODELS[name]
    config_fields = {f.name for f in fields(config_cls)}
    for setting in model_cls.settings:           # each is a config field, offered at a value the config accepts
        assert setting.name in config_fields and setting.default in setting.choices
        for choice in setting.choices:
            config_cls.from_dict({setting.name: choice})
    assert model_cls.metric_names == tuple(s.metric for p in model_cls.panels for s in p.series)
    for setting in train_settings(name):         # the recipe's values lie within the trainer's limits
        assert setting.low <= setting.default <= setting.high
    model = new_model(name)
    assert model.explore_sections and all(isinstance(s, Section) for s in model.explore_sections)


def test_the_label_picker_follows_what_the_model_draws_from():
    from aigc import Section

    cgan, grouped, plain = build_model("cgan"), build_model("dcgan", {"clusters": 7}), build_model("dcgan")
    assert cgan.label_setting.choices == tuple(range(10)) and cgan.describe() == ["pick the digit below"]
    assert grouped.label_setting.choices == (None, *range(7)) and grouped.label_setting.show(None) == "any"
    assert Section.GROUPS in grouped.explore_sections and Section.GROUPS not in plain.explore_sections
    assert plain.label_setting is None and plain.describe() == []
    assert Section.LATENT_MAP in build_model("vae", {"latent_dim": 2}).explore_sections
    assert Section.LATENT_MAP not in build_model("vae").explore_sections


def test_seeded_sampling_helpers(mnist):
    from aigc import sampling

    model = build_model("dcgan", {"clusters": 4, "width": 8}).eval()
    model.fit_clusters(mnist, n=2000)
    torch.testing.assert_close(sampling.noise(model, 3, 5), sampling.noise(model, 3, 5))
    assert not torch.equal(sampling.noise(model, 3, 5), sampling.noise(model, 3, 6))
    assert sampling.as_labels(model, 3, 2).tolist() == [2, 2, 2] and sampling.as_labels(model, 2, None) is None
    strip = sampling.group_strip(model)                    # one sample per group, side by side, scaled 2×
    assert strip.shape == (2 * (28 + 2) + 4, 2 * (4 * (28 + 2) + 2))
    images = sampling.samples(model, 0, 4, torch.arange(4))
    torch.testing.assert_close(images, model.sample(sampling.noise(model, 4, 0), torch.arange(4)))
    coords, digits = sampling.encode_test_digits(build_model("vae", {"latent_dim": 2}).eval(), n=50)
    assert coords.shape == (50, 2) and digits.shape == (50,) and digits[0] == 7     # the first test digit is a 7


def test_a_self_conditioned_gan_loaded_from_its_file_sorts_images_into_its_groups():
    from aigc import load_checkpoint
    from aigc.sampling import test_digits
    model, _ = load_checkpoint("checkpoints/dcgan.pt")
    groups = model.assign_clusters(test_digits(torch.arange(50))[0])
    assert groups.shape == (50,) and 0 <= int(groups.min()) and int(groups.max()) < model.clusters
