"""Points the project at the local MNIST copy (no network here), keeps torch small, and holds the helpers
the test files share (import them with `from conftest import ...`)."""
import os
import time
from pathlib import Path

import pytest
import torch

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
