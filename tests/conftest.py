"""Points the project at the local MNIST copy (no network here) and keeps torch small and quiet."""
import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("AIGC_DATA_DIR", str(REPO.parent / "shared" / "data" / "mnist"))
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(scope="session")
def mnist():
    from aigc.data import load_mnist
    return load_mnist(train=True)
