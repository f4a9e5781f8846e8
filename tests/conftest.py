"""Points the project at the local MNIST copy (no network here), keeps torch small, and holds the helpers
the test files share (import them with `from conftest import ...`)."""
import os
import time
from pathlib import Path

# Before torch loads OpenMP: no spinning at all, since the tests run pages and trainings on many threads at
# once (app.py has its threads spin briefly instead, for the training's speed: see there).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

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


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_streamlit(runs_dir: Path, port: int, **env):
    """`streamlit run app.py` on localhost:port with its runs in runs_dir, in its own process group, once it
    answers its health check; its output goes to runs_dir/server.log. Stop it with stop_streamlit."""
    import subprocess
    import sys
    import urllib.request

    runs_dir.mkdir(parents=True, exist_ok=True)
    log = open(runs_dir / "server.log", "a")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=REPO, env={**os.environ, "AIGC_RUNS_DIR": str(runs_dir), **env}, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    log.close()
    for _ in range(120):
        if proc.poll() is not None:
            pytest.fail("streamlit exited: " + (runs_dir / "server.log").read_text()[-2000:])
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
            return proc
        except OSError:
            time.sleep(0.5)
    stop_streamlit(proc)
    pytest.fail("streamlit did not start: " + (runs_dir / "server.log").read_text()[-2000:])


def stop_streamlit(proc, kill: bool = False) -> None:
    """Ends the server and its training threads: SIGTERM and a wait, or SIGKILL at once (a crash)."""
    import signal
    import subprocess

    if proc.poll() is None and not kill:
        proc.terminate()
        try:
            proc.wait(15)
            return
        except subprocess.TimeoutExpired:
            pass
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
