"""What aigc.monitor.SampleMonitor costs a live run: the cgan recipe trained with and without it as an
'on_samples' callback (a grid every 25 steps), in one process, alternating which goes first each round
so drift in the machine's load hits both alike. Speeds from wall time and from the process's CPU time
(steadier on a shared machine: other processes' load does not count), and the median of each round's
with/without ratio. Then the time of one measure() call, with and without precision and recall, and the
long-run share they imply: (grid + pr / every) / (25 steps + grid + pr / every).

    .venv/bin/python bench/monitor_cost.py                          # the monitor's defaults, 500 steps x 6 rounds
    .venv/bin/python bench/monitor_cost.py --n 128 --every 10 --steps 250 --threads 2
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # run as a script from anywhere
from aigc import TrainConfig, Trainer, configure_threads, describe_device, load_mnist  # noqa: E402
from aigc.metrics import load_classifier  # noqa: E402
from aigc.monitor import SampleMonitor  # noqa: E402


def timed_run(config: TrainConfig, data, monitor: SampleMonitor | None) -> tuple[float, float]:
    """Images per second of one run, from its wall time and from its CPU time."""
    trainer = Trainer(config, data=data)
    if monitor is not None:
        trainer.add_callback("on_samples", monitor)
    wall, cpu = time.perf_counter(), time.process_time()
    trainer.run()
    images = config.steps * config.batch_size
    return images / (time.perf_counter() - wall), images / (time.process_time() - cpu)


def call_ms(monitor: SampleMonitor, model, grid, reps: int) -> tuple[float, float]:
    """Median wall and CPU milliseconds of one measure() call."""
    wall, cpu = [], []
    for _ in range(reps):
        w, c = time.perf_counter(), time.process_time()
        monitor.measure(model, grid)
        wall.append((time.perf_counter() - w) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return statistics.median(wall), statistics.median(cpu)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=500, help="per run; a multiple of 25 x every keeps the calls "
                                                          "with precision and recall at their long-run share")
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--n", type=int, default=SampleMonitor().n)
    p.add_argument("--every", type=int, default=SampleMonitor().every)
    p.add_argument("--threads", type=int, default=1, help="torch threads (the app's default: every core)")
    args = p.parse_args()
    threads = configure_threads(args.threads)
    config = TrainConfig.for_model("cgan", steps=args.steps, device="cpu")
    data = load_mnist(train=True)
    classifier = load_classifier()
    make = lambda: SampleMonitor(n=args.n, every=args.every, classifier=classifier)
    timed_run(TrainConfig.for_model("cgan", steps=25, device="cpu"), data, SampleMonitor(
        n=args.n, every=1, classifier=classifier))                       # warm-up: classifier, real features
    runs = {"without": [], "with": []}                                   # (wall, cpu) images/s per round
    for r in range(args.rounds):
        for arm in (("without", "with") if r % 2 == 0 else ("with", "without")):
            runs[arm].append(timed_run(config, data, make() if arm == "with" else None))

    trainer = Trainer(config, data=data)
    grid = trainer.sample_fixed()
    grid_ms = call_ms(SampleMonitor(n=args.n, every=10**9, classifier=classifier), trainer.model, grid, 20)
    pr_ms = call_ms(SampleMonitor(n=args.n, every=1, classifier=classifier), trainer.model, grid, 10)

    print(f"cgan recipe, batch {config.batch_size}, grid every {config.sample_every} steps, {args.steps} steps a run, "
          f"{args.rounds} rounds; monitor n={args.n}, k=3, every={args.every}")
    print("| clock | without monitor, images/s | with monitor, images/s | with / without (median of rounds) |")
    print("|---|---|---|---|")
    for c, clock in enumerate(("wall", "CPU")):
        without, with_ = ([x[c] for x in runs[arm]] for arm in ("without", "with"))
        ratio = statistics.median(b / a for a, b in zip(without, with_))
        cells = [f"{statistics.median(x):,.0f} ({', '.join(f'{v:,.0f}' for v in x)})" for x in (without, with_)]
        print(f"| {clock} | {cells[0]} | {cells[1]} | {ratio:.3f} ({1 - ratio:+.1%} cost) |")
    for c, clock in enumerate(("wall", "CPU")):
        steps_ms = 25 * config.batch_size / statistics.median(x[c] for x in runs["without"]) * 1000
        extra = grid_ms[c] + (pr_ms[c] - grid_ms[c]) / args.every
        print(f"measure(), {clock} ms: {grid_ms[c]:.1f} (grid only), {pr_ms[c]:.1f} (with precision and recall, "
              f"n={args.n}); 25 steps {steps_ms:.0f}; long-run share at every={args.every}: "
              f"{extra / (steps_ms + extra):.1%}")
    print(f"\n{describe_device(torch.device('cpu'))}, {threads} torch threads, {time.strftime('%Y-%m-%d %H:%M')}")


if __name__ == "__main__":
    main()
