"""What watching a run costs it: the Train page's recipe trained by a bare Trainer against the same run in a
RunRegistry, which adds at every snapshot the classifier's reading (aigc.monitor), the coach at every log
and a branch point (the trainer's whole state), in one process, alternating which goes first each round.
Then, per model, what one branch point costs: the time of Trainer.state() and the bytes it holds.

Both trainings run on threads of their own, as in the server, and the main thread runs no torch: while
another living thread of the process has run torch's parallel operations, a training thread runs at about
55% of its speed (measured 2026-11-30: 1,820 against 3,208 images/s, full speed again once that thread
ended), as if two OpenMP thread teams got in each other's way. In the server only training threads are
long-lived and run torch.

    .venv/bin/python bench/lab_cost.py                       # cgan, 1,000 steps x 3 rounds
    .venv/bin/python bench/lab_cost.py --model dcgan --steps 600 --rounds 5
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("GOMP_SPINCOUNT", "10000")                   # as app.py sets it, before torch loads
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # run as a script from anywhere
from aigc import (MODELS, TrainConfig, Trainer, configure_allocator, describe_device, load_mnist,  # noqa: E402
                  pick_device)
from aigc.runs import BranchPoint, RunRegistry  # noqa: E402


def on_a_thread(fn, *args):
    out = []
    thread = threading.Thread(target=lambda: out.append(fn(*args)))
    thread.start()
    thread.join()
    return out[0]


def bare(config: TrainConfig, data) -> float:
    trainer = Trainer(config, data=data)
    started = time.perf_counter()
    trainer.run()
    return config.steps * config.batch_size / (time.perf_counter() - started)


def branch_point(name: str, data) -> tuple[float, float]:
    """Median ms of Trainer.state() and the MB it holds, for a model after 2 steps."""
    trainer = Trainer(TrainConfig.for_model(name, steps=2), data=data)
    trainer.run()
    times = []
    for _ in range(10):
        started = time.perf_counter()
        state = trainer.state()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), BranchPoint(0, None, state).nbytes / 2**20


def watched(config: TrainConfig) -> float:
    """Images per second of the run in a registry, from its trainer's own clock (as the bare run's, from the
    first step to the last)."""
    registry = RunRegistry(max_jobs=1, idle_timeout=1e9)
    run = registry.submit(config)
    while registry.view(run).active:
        time.sleep(0.05)
    view = registry.view(run)
    return config.steps * config.batch_size / view.history["seconds"][-1]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="cgan")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    configure_allocator()                              # as the app's run registry sets it up
    print(f"device: {describe_device(pick_device())}")
    config = TrainConfig.for_model(args.model, steps=args.steps)
    data = on_a_thread(load_mnist, True)
    ratios = []
    for i in range(args.rounds):
        first, second = (bare, watched) if i % 2 == 0 else (watched, bare)
        speeds = {f.__name__: on_a_thread(bare, config, data) if f is bare else watched(config) for f in (first, second)}
        ratios.append(speeds["watched"] / speeds["bare"])
        print(f"round {i + 1}: bare {speeds['bare']:,.0f} images/s, in the registry {speeds['watched']:,.0f} "
              f"({ratios[-1]:.3f})")
    print(f"median watched / bare: {statistics.median(ratios):.3f}")
    for name in MODELS:
        if MODELS[name][1].base_model:
            continue            # built on another model's checkpoint: its own branch points are the flow's
        ms, mb = on_a_thread(branch_point, name, data)
        print(f"{name:10s} branch point: {ms:.1f} ms, {mb:.1f} MB")


if __name__ == "__main__":
    main()
