"""Points the project at the local MNIST copy (no network here), keeps torch small, and holds the helpers
the test files share (import them with `from conftest import ...`)."""
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")   # as app.py does, before torch loads OpenMP: see there

import pytest  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"
if SHARED_MNIST.is_dir():   # here and in CI: the canonical files, no network; elsewhere ./data, downloaded
    os.environ.setdefault("AIGC_DATA_DIR", str(SHARED_MNIST))
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def mnist():
    from aigc.data import load_mnist
    return load_mnist(train=True)


def wait_for(predicate, timeout: float = 60.0, what: str = "the condition") -> None:
    """Polls `predicate` every 50 ms; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout:g} s waiting for {what}"
        time.sleep(0.05)


def tiny_vae_run(**overrides):
    """A VAE run that would train for a long time: small batches, so each step is quick to stop."""
    from aigc import TrainConfig
    return TrainConfig.for_model("vae", **{"steps": 100_000, "batch_size": 16, **overrides})


def base_for(name: str) -> dict | None:
    """What a new model of the registry is built on: a small VAE checkpoint for a model with a base_model
    (latent diffusion), None for the others."""
    from aigc import MODELS, build_model, make_checkpoint
    wanted = MODELS[name][1].base_model
    return make_checkpoint(build_model(wanted, {"latent_dim": 2, "hidden": 32})) if wanted else None


def new_model(name: str, model_args: dict | None = None):
    """build_model for any model of the registry, built on base_for(name) where it needs one."""
    from aigc import build_model
    return build_model(name, model_args, base=base_for(name))
