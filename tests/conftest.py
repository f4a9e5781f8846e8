"""Points the project at the local MNIST copy (no network here) and keeps torch small and quiet."""
import os
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
