"""The diffusion processes, samplers and guidance, checked against what they must do exactly; and latent
diffusion built on a VAE."""
import pytest
import torch
from conftest import base_for

from aigc import CheckpointError, TrainConfig, Trainer, build_model, load_checkpoint, make_checkpoint
from aigc.checkpoint import checkpoint_bytes
from aigc.device import autocast
from aigc.models.diffusion import (LOSS_BINS, NULL_LABEL, SAMPLERS, FlowMatching, GaussianDiffusion, denoising_loss,
                                   guided, stratified_t)

PROCESSES = [FlowMatching(), GaussianDiffusion()]


@pytest.mark.parametrize("process", PROCESSES, ids=["flow", "ddpm"])
def test_schedules_go_from_the_digit_to_noise(process):
    t = torch.linspace(0, 1, 11)
    alpha, sigma = process.schedule(t)
    assert alpha[0] == 1 and sigma[0] == 0 and alpha[-1] < 0.011 and sigma[-1] > 0.99
    assert (alpha[1:] < alpha[:-1]).all() and (sigma[1:] > sigma[:-1]).all()
    if isinstance(process, GaussianDiffusion):          # variance preserving
        torch.testing.assert_close(alpha ** 2 + sigma ** 2, torch.ones(11))
    x0, noise = torch.randn(11, 1, 28, 28), torch.randn(11, 1, 28, 28)
    torch.testing.assert_close(process.noised(x0, t, noise), alpha[:, None, None, None] * x0 + sigma[:, None, None, None] * noise)


@pytest.mark.parametrize("process", PROCESSES, ids=["flow", "ddpm"])
def test_a_perfect_prediction_reads_back_the_digit_and_the_noise(process):
    x0, noise, t = torch.rand(4, 1, 28, 28) * 2 - 1, torch.randn(4, 1, 28, 28), torch.tensor([0.1, 0.4, 0.7, 0.95])
    x_t = process.noised(x0, t, noise)
    got_x0, got_noise = process.read(x_t, process.target(x0, noise), t)
    torch.testing.assert_close(got_x0, x0, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(got_noise, noise, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("process", PROCESSES, ids=["flow", "ddpm"])
@pytest.mark.parametrize("steps", [1, 3, 20])
def test_with_an_oracle_every_sampler_lands_on_the_one_digit_there_is(process, steps, sampler):
    """If the data is one image x*, the best prediction at (x_t, t) is the one that reads x̂₀ = x*; every
    sampler must then end exactly on x*, in any number of steps."""
    target = torch.rand(1, 1, 28, 28) * 2 - 1

    def oracle(x, t, labels):
        alpha, sigma = (s.view(-1, 1, 1, 1) for s in process.schedule(t))
        noise = (x - alpha * target) / sigma
        return process.target(target.expand_as(x), noise)

    z = torch.randn(3, 1, 28, 28)
    path = process.sample(oracle, z, torch.zeros(3, dtype=torch.long), steps, sampler, torch.Generator().manual_seed(0))
    assert path.images.shape == (steps + 1, 3, 1, 28, 28) and path.estimates.shape == (steps, 3, 1, 28, 28)
    torch.testing.assert_close(path.images[0], z)
    torch.testing.assert_close(path.images[-1], target.expand(3, -1, -1, -1), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("process", PROCESSES, ids=["flow", "ddpm"])
def test_heuns_steps_follow_a_curved_path_closer_than_eulers(process):
    """Data x₀ ~ N(0, s²): the best prediction is known in closed form, E[x₀ | x_t] = α s² x_t / v and
    E[ε | x_t] = σ x_t / v with v = α² s² + σ², and the deterministic path from z at t = 1 ends at
    s z / √v(1). Its slope changes along the way: halving the step must quarter Heun's error (second order;
    the last step is Euler's, as in Karras et al.) where it only halves Euler's."""
    s = 0.3

    def oracle(x, t, labels):
        alpha, sigma = (a.view(-1, 1) for a in process.schedule(t))
        v = alpha ** 2 * s ** 2 + sigma ** 2
        return process.target(alpha * s ** 2 * x / v, sigma * x / v)

    z = torch.linspace(-2.5, 2.5, 11).view(-1, 1)
    alpha, sigma = process.schedule(torch.ones(()))
    exact = s * z / (alpha ** 2 * s ** 2 + sigma ** 2).sqrt()
    error = {(sampler, steps): (process.sample(oracle, z, None, steps, sampler).images[-1] - exact).abs().max().item()
             for sampler in ("euler", "heun") for steps in (8, 16)}
    assert 1.8 < error["euler", 8] / error["euler", 16] < 2.2, error
    assert error["heun", 8] / error["heun", 16] > 2.9 and error["heun", 16] < error["euler", 16] / 2.5, error


def test_a_sampler_must_be_one_there_is():
    with pytest.raises(ValueError, match="sampler must be one of euler, heun, ancestral"):
        FlowMatching().sample(lambda x, t, labels: x, torch.zeros(1, 1), None, 4, "midpoint")
    with pytest.raises(ValueError, match="sampler must be one of"):
        build_model("diffusion", {"sampler": "rk4"})


def test_the_deterministic_flow_step_is_eulers():
    v = torch.randn(2, 1, 28, 28)
    z = torch.randn(2, 1, 28, 28)
    path = FlowMatching().sample(lambda x, t, labels: v, z, None, 4)
    for i, t in enumerate(path.t[1:]):        # a constant velocity: x moves along one straight line
        torch.testing.assert_close(path.images[i + 1], z - (1 - t) * v, atol=1e-5, rtol=1e-5)


def test_guidance_mixes_the_conditional_and_unconditional_predictions():
    net = lambda x, t, labels: torch.where(labels.view(-1, 1, 1, 1) == NULL_LABEL, 1.0, 3.0) * torch.ones_like(x)
    x, t, labels = torch.zeros(2, 1, 28, 28), torch.full((2,), 0.5), torch.tensor([4, 7])
    for w, expected in [(0.0, 1.0), (1.0, 3.0), (2.5, 1.0 + 2.5 * (3.0 - 1.0))]:
        torch.testing.assert_close(guided(net, w)(x, t, labels), torch.full_like(x, expected))


def test_stratified_levels_and_the_loss_by_level():
    t = stratified_t(40)
    assert torch.equal((t * 40).floor().long(), torch.arange(40))             # one in each stratum
    net = lambda x, t, labels: torch.zeros_like(x)
    x0 = torch.rand(64, 1, 28, 28) * 2 - 1
    losses = denoising_loss(net, FlowMatching(), x0, torch.zeros(64, dtype=torch.long), 0.1)
    bins = torch.stack([losses[f"loss_t{i}"] for i in range(LOSS_BINS)])
    torch.testing.assert_close(bins.mean(), losses["loss"])                   # equal bins of equal size
    # predicting 0 for v = ε - x₀ costs |ε|² + |x₀|² wherever t is: every bin near the same value
    assert (bins - losses["loss"]).abs().max() < 0.2 * losses["loss"]


@pytest.mark.parametrize("objective", ["flow", "ddpm"])
def test_the_model_trains_samples_and_shows_its_way(objective, mnist):
    torch.manual_seed(0)
    model = build_model("diffusion", {"objective": objective, "width": 8})
    opts = model.configure_optimizers(2e-3, (0.9, 0.999))
    x, y = mnist.batch(torch.arange(32))
    first = model.train_step(x, y, opts, autocast(torch.device("cpu")))["loss"]
    for _ in range(15):
        last = model.train_step(x, y, opts, autocast(torch.device("cpu")))["loss"]
    assert last < first and model.ema_updates == 16
    model.eval()
    z, labels = model.make_noise(2), torch.tensor([3, 8])
    path = model.trajectory(z, labels, steps=6, guidance=2.0)
    assert path.images.shape == (7, 2, 1, 28, 28) and path.estimates.shape == (6, 2, 1, 28, 28)
    torch.testing.assert_close(model.sample(z, labels, steps=6, guidance=2.0), path.images[-1])
    assert path.images[-1].abs().max() <= 1
    assert not torch.equal(model.sample(z, labels, steps=6, sampler="ancestral"), path.images[-1])
    torch.testing.assert_close(model.sample(z, labels, steps=6, sampler="ancestral"),      # seeded: repeatable
                               model.sample(z, labels, steps=6, sampler="ancestral"))
    assert not torch.equal(model.sample(z, labels, steps=6, sampler="heun"), path.images[-1])
    assert [s.name for s in model.sampling_settings] == ["steps", "guidance", "sampler"]
    assert [s.default for s in model.sampling_settings] == [model.config.sample_steps, model.config.guidance, "euler"]


def test_latent_diffusion_is_built_on_a_vae_and_carries_it(mnist, tmp_path):
    base = base_for("latent_diffusion")
    with pytest.raises(ValueError, match="trained on top of a trained vae"):
        Trainer(TrainConfig.for_model("latent_diffusion", steps=1), data=mnist)
    with pytest.raises(ValueError, match="built on a vae, not on a cgan"):
        build_model("latent_diffusion", base=make_checkpoint(build_model("cgan")))
    model = build_model("latent_diffusion", {"width": 32, "depth": 1}, base=base)
    assert model.config.vae_args == base["model_args"] and model.latent_dim == 2
    for key, value in base["state_dict"].items():
        torch.testing.assert_close(model.vae.state_dict()[key], value)
    with pytest.raises(RuntimeError, match="start_training"):
        model.train_step(*mnist.batch(torch.arange(8)), model.configure_optimizers(1e-3, (0.9, 0.999)),
                         autocast(torch.device("cpu")))
    model.start_training(mnist)
    codes = model.encode(mnist.batch(torch.arange(2000))[0])[0]
    torch.testing.assert_close(model.code_mean, codes.mean(0), atol=0.05, rtol=0.05)
    # the checkpoint rebuilds it, VAE included, without the VAE's file
    loaded, _ = load_checkpoint(checkpoint_bytes(make_checkpoint(model)))
    z = torch.randn(3, 2)
    model.eval()
    torch.testing.assert_close(loaded.sample(z, torch.tensor([1, 2, 3]), steps=4),
                               model.sample(z, torch.tensor([1, 2, 3]), steps=4))
    paths = model.latent_paths(z, torch.tensor([1, 2, 3]), steps=4)
    assert paths.images.shape == (5, 3, 2)
    torch.testing.assert_close(model.decode(paths.images[-1]), model.sample(z, torch.tensor([1, 2, 3]), steps=4))
    with pytest.raises(CheckpointError, match="do not fit"):           # a VAE's weights are no latent diffusion
        load_checkpoint(checkpoint_bytes({**base, "model_name": "latent_diffusion", "model_args": {"vae_args": {}}}))


@pytest.mark.parametrize("name", ["diffusion", "latent_diffusion"])
@pytest.mark.parametrize("option,value,match", [("steps", 0, "steps must be between 1 and 100"),
                                                ("steps", 101, "steps must be between 1 and 100"),
                                                ("guidance", -1.0, "guidance must be between 0"),
                                                ("guidance", 10.5, "guidance must be between 0")])
def test_sampling_options_out_of_range_are_refused_by_the_model(name, option, value, match):
    model = build_model(name, {"width": 8} if name == "diffusion" else None, base=base_for(name)).eval()
    z = torch.randn(2, model.latent_dim)
    with pytest.raises(ValueError, match=match):
        model.sample(z, **{option: value})
    with pytest.raises(ValueError, match=match):
        model.trajectory(z, **{option: value})
