import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from aigc.data import MNIST_FILES, _load_cpu, load_mnist

REPO = Path(__file__).resolve().parent.parent


def test_offline_load_from_a_folder_of_gz_files(tmp_path, monkeypatch):
    source = Path(os.environ["AIGC_DATA_DIR"])
    assert all((source / f).exists() for f in MNIST_FILES)
    monkeypatch.setenv("AIGC_CACHE_DIR", str(tmp_path / "cache"))
    _load_cpu.cache_clear()
    test = load_mnist(train=False, data_dir=source)
    assert test.images.shape == (10_000, 1, 28, 28) and test.images.dtype == torch.uint8
    assert test.labels.bincount().tolist()[:2] == [980, 1135]
    x, y = test.batch(torch.arange(4))
    assert x.min() >= -1 and x.max() <= 1 and x.dtype == torch.float32
    assert (tmp_path / "cache" / "mnist-root" / "MNIST" / "raw").is_dir()


def test_offline_load_from_a_torchvision_root(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for f in MNIST_FILES:
        (raw / f).symlink_to(Path(os.environ["AIGC_DATA_DIR"]) / f)
    _load_cpu.cache_clear()
    assert len(load_mnist(train=False, data_dir=tmp_path)) == 10_000


def test_missing_data_without_network_says_what_to_do(tmp_path, monkeypatch):
    import torchvision.datasets.mnist as tvm
    monkeypatch.setattr(tvm.MNIST, "mirrors", ["http://127.0.0.1:9/"])
    _load_cpu.cache_clear()
    with pytest.raises(RuntimeError, match="AIGC_DATA_DIR"):
        load_mnist(train=False, data_dir=tmp_path / "empty")


def aigc(*args, cwd):
    return subprocess.run([sys.executable, "-m", "aigc", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_cli_end_to_end(tmp_path):
    r = aigc("train", "--model", "cgan", "--steps", "12", "--batch-size", "16", "--sample-every", "6",
             "--out", "out/c.pt", "--samples-dir", "grids", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "step     12/12" in r.stderr and "img/s" in r.stderr
    assert (tmp_path / "out" / "c.pt").exists() and (tmp_path / "out" / "c.png").exists()
    assert sorted(p.name for p in (tmp_path / "grids").iterdir()) == ["step000001.png", "step000006.png", "step000012.png"]
    r = aigc("sample", "--ckpt", "out/c.pt", "--n", "10", "--label", "3", "--out", "s.png", cwd=tmp_path)
    assert r.returncode == 0 and (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
    r = aigc("sample", "--ckpt", "out/c.pt", "--label", "12", cwd=tmp_path)
    assert r.returncode != 0 and "--label must be between 0 and 9" in r.stderr
    r = aigc("info", "--ckpt", "out/c.pt", cwd=tmp_path)
    assert r.returncode == 0 and "cgan" in r.stdout and "step 12" in r.stdout
    r = aigc("train", "--init", "out/c.pt", "--steps", "4", "--batch-size", "16", "--out", "out/c2.pt", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "step 16" in aigc("info", "--ckpt", "out/c2.pt", cwd=tmp_path).stdout


@pytest.mark.parametrize("args,message", [
    (["train", "--model", "vae", "--lr", "10"], "lr must be between"),
    (["train", "--model", "vae", "--model-arg", "latent_dim=0"], "latent_dim must be between 1"),
    (["sample", "--ckpt", "missing.pt"], "no such file"),
])
def test_cli_bad_input_is_a_clear_error(tmp_path, args, message):
    r = aigc(*args, cwd=tmp_path)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_cli_refuses_a_non_checkpoint(tmp_path):
    (tmp_path / "fake.pt").write_text("hello")
    r = aigc("info", "--ckpt", "fake.pt", cwd=tmp_path)
    assert r.returncode == 2 and "not a readable checkpoint" in r.stderr


def test_cli_samples_a_diffusion_model_with_steps_and_guidance(tmp_path):
    from aigc import build_model, make_checkpoint, save_checkpoint
    save_checkpoint(make_checkpoint(build_model("diffusion", {"width": 8})), tmp_path / "d.pt")
    r = aigc("sample", "--ckpt", "d.pt", "--n", "4", "--steps", "3", "--guidance", "1.5", "--label", "7",
             "--out", "d.png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "d.png").read_bytes()[:4] == b"\x89PNG"
    r = aigc("sample", "--ckpt", "d.pt", "--steps", "0", cwd=tmp_path)
    assert r.returncode == 2 and "steps must be between 1 and 100" in r.stderr
    r = aigc("sample", "--ckpt", str(REPO / "checkpoints" / "cgan.pt"), "--steps", "5", cwd=tmp_path)
    assert r.returncode == 2 and "--steps does not apply to a cgan" in r.stderr
