"""The one place that picks the compute device, the thread count, the memory allocator's settings and the seed."""
from __future__ import annotations

import ctypes
import os
import platform
import random
from contextlib import contextmanager

import numpy as np
import torch


def pick_device(preference: str = "auto") -> torch.device:
    """'auto' picks CUDA, then Apple's MPS, then the CPU; anything else is taken as a torch device string."""
    if preference and preference != "auto":
        device = torch.device(preference)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for but no CUDA GPU is available")
        if device.type == "mps" and not _mps_available():
            raise ValueError("device 'mps' was asked for but Apple's MPS is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"CUDA GPU: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return "Apple GPU (MPS)"
    return f"CPU ({torch.get_num_threads()} threads of {os.cpu_count()} cores{', bf16' if native_bf16(device) else ''})"


def seed_everything(seed: int) -> torch.Generator:
    """Seeds Python, NumPy and torch; returns a CPU generator for code that wants its own stream."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def configure_threads(threads: int | None = None) -> int:
    """Sets torch's intra-op threads (default: AIGC_THREADS or every core) for the calling thread, and the
    default other threads take when they first read it; returns the number in force."""
    if threads is None:
        threads = int(os.environ.get("AIGC_THREADS", "0")) or (os.cpu_count() or 1)
    threads = max(1, threads)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def _glibc():
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def configure_allocator(keep_mib: int = 128) -> bool:
    """Has glibc's malloc keep up to `keep_mib` of freed memory for reuse instead of handing it back to the
    system at once; returns whether it applied (glibc on Linux only). A training step frees and allocates
    the same few megabytes of activations every step. By default glibc maps blocks of over a few MiB fresh
    and gives back the top of its heap as soon as it is free, so a convolutional GAN's every step faults
    thousands of new pages in. Blocks under 32 MiB now come from the heap (where glibc's own adaptive
    threshold ends up) and the heap's top is given back only past `keep_mib` (bench/allocator.py measures
    the pages and the speed). Process-wide and for good: call it where a process starts
    training (the app's run registry, the CLI); release_freed_memory() gives the memory back when it ends.
    Both settings or neither: either alone faults more pages than glibc's default."""
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, keep_mib << 20))


def release_freed_memory() -> None:
    """Gives the memory malloc holds free back to the system (glibc's malloc_trim), as after a training."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


@contextmanager
def torch_threads(threads: int):
    """Runs the block with `threads` intra-op threads in the calling thread. With OpenMP, torch keeps the
    count per thread once a thread has read it (configure_threads does), so such threads keep theirs;
    a thread that reads it first meanwhile takes this one, which is why a training thread sets its own
    (RunRegistry(threads=...))."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def native_bf16(device: torch.device) -> bool:
    """Whether `device` computes in bfloat16 natively: a CUDA GPU, or a CPU with AVX-512 BF16 or AMX
    instructions (Zen 4, Sapphire Rapids and later). Elsewhere bf16 is emulated and slower than fp32."""
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    cpu = torch.cpu
    return any(getattr(cpu, probe, lambda: False)() for probe in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))


def autocast(device: torch.device):
    """bf16 autocast where the device computes in bf16 natively (no loss scaling needed); a no-op elsewhere.
    On a CPU with AVX-512 BF16 the GANs and the VAE train faster than in fp32, the U-Net about as fast
    (bench/bf16.py)."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=native_bf16(device))
