"""MNIST through torchvision, held as one uint8 tensor on the training device.

Where the files come from, in order: an explicit folder (CLI --data-dir), the AIGC_DATA_DIR
environment variable, else ./data. A folder may be a torchvision root (holding MNIST/raw/) or a plain
folder with the four canonical .gz files, which are linked into a writable staging root first.
Anything missing is downloaded by torchvision, which checks every file's md5.
"""
from __future__ import annotations

import functools
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch

DATA_ENV = "AIGC_DATA_DIR"
MNIST_FILES = (
    "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
)


@dataclass(frozen=True)
class MNISTTensors:
    images: torch.Tensor    # (n, 1, 28, 28) uint8
    labels: torch.Tensor    # (n,) int64

    def __len__(self):
        return self.labels.shape[0]

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images as float in [-1, 1] (the generators' Tanh range) and their labels."""
        return self.images[index].float().div_(127.5).sub_(1.0), self.labels[index]

    def to(self, device) -> "MNISTTensors":
        return MNISTTensors(self.images.to(device), self.labels.to(device))


def data_root(data_dir: str | os.PathLike | None = None) -> Path:
    return Path(data_dir or os.environ.get(DATA_ENV) or "data").expanduser().resolve()


def _torchvision_root(root: Path) -> Path:
    """Returns a root whose MNIST/raw/ torchvision can read and write."""
    if (root / "MNIST" / "raw").is_dir() or not all((root / f).is_file() for f in MNIST_FILES):
        return root
    # A bare folder of the four .gz files (possibly read-only): link them into a staging root.
    staging = Path(os.environ.get("AIGC_CACHE_DIR", Path.home() / ".cache" / "aigc")) / "mnist-root"
    raw = staging / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name in MNIST_FILES:
        target = raw / name
        if not target.exists():
            try:
                target.symlink_to(root / name)
            except OSError:
                shutil.copyfile(root / name, target)
    return staging


@functools.lru_cache(maxsize=4)
def _load_cpu(root: str, train: bool) -> MNISTTensors:
    from torchvision.datasets import MNIST  # imported here: torchvision is slow to import

    try:
        ds = MNIST(str(_torchvision_root(Path(root))), train=train, download=True)
    except Exception as exc:  # network down, bad md5, unwritable folder
        raise RuntimeError(
            f"could not load MNIST from {root}: {exc}. Put the four MNIST .gz files in that folder "
            f"(or set {DATA_ENV} to a folder holding them), or connect to the internet so torchvision can download them."
        ) from exc
    return MNISTTensors(ds.data.unsqueeze(1).contiguous(), ds.targets.long())


def load_mnist(train: bool = True, device: str | torch.device = "cpu",
               data_dir: str | os.PathLike | None = None) -> MNISTTensors:
    """The MNIST training (60,000) or test (10,000) set as tensors on `device`, loaded once per process."""
    return _load_cpu(str(data_root(data_dir)), train).to(device)
