"""The memory allocator's settings: a training with aigc.configure_allocator() against glibc's default.

The settings are process-wide and cannot be taken back, so each round starts two fresh processes, one
each way, one after the other (alternating which goes first, so drift in the machine's load hits both
alike). Each trains a fresh model from the recipe on a worker thread, as the app's run registry does (a
thread allocates from its own arena of glibc's), after a short warm-up run, and reports images/s, the page
faults a step and the process's resident memory after the run and after release_freed_memory(). The main
thread runs no torch operation: with OpenMP threads of its own kept alive, a training thread's team would
exceed the cores and libgomp would cut its spinning, slowing every parallel operation.

    .venv/bin/python bench/allocator.py --model cgan --seconds 8 --rounds 3
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # run as a script from anywhere
from aigc import MODELS  # noqa: E402


def resident_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize() / 2**20


def child(model: str, seconds: float, tuned: bool) -> dict:
    from aigc import TrainConfig, Trainer, configure_allocator, configure_threads, load_mnist
    from aigc.device import release_freed_memory

    result = {"applied": configure_allocator() if tuned else False}

    def work():                                   # on a worker thread, like the app's trainings
        configure_threads()
        data = load_mnist(train=True)
        Trainer(TrainConfig.for_model(model, steps=5), data=data).run()
        trainer = Trainer(TrainConfig.for_model(model, steps=100_000, max_seconds=seconds), data=data)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        trainer.run()
        result["images_per_s"] = trainer.step * trainer.config.batch_size / trainer.train_seconds
        result["faults_per_step"] = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / trainer.step

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    result["resident_mib"] = resident_mib()
    release_freed_memory()
    result["released_mib"] = resident_mib()
    return result


def run_child(model: str, seconds: float, tuned: bool) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", "--model", model, "--seconds", str(seconds)]
                         + (["--tuned"] if tuned else []), check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="cgan", choices=list(MODELS))
    p.add_argument("--seconds", type=float, default=8.0, help="timed seconds of training per process")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--tuned", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.model, args.seconds, args.tuned)))
        return
    runs = {False: [], True: []}
    for r in range(args.rounds):
        for tuned in ((False, True) if r % 2 == 0 else (True, False)):
            runs[tuned].append(run_child(args.model, args.seconds, tuned))
        print(f"round {r + 1}: default {runs[False][-1]['images_per_s']:,.0f} img/s   "
              f"configure_allocator {runs[True][-1]['images_per_s']:,.0f} img/s", flush=True)
    if not all(r["applied"] for r in runs[True]):
        print("configure_allocator() did not apply here (it needs glibc on Linux): both columns are the default")

    def median(tuned, key):
        return statistics.median(r[key] for r in runs[tuned])

    print(f"\n{args.model}, {args.seconds:g} s of training per process, {time.strftime('%Y-%m-%d %H:%M')}")
    print("| allocator | images/s | page faults a step | resident MiB after the run | after release |\n"
          "|---|---|---|---|---|")
    for tuned, label in ((False, "glibc's default"), (True, "configure_allocator()")):
        print(f"| {label} | {median(tuned, 'images_per_s'):,.0f} | {median(tuned, 'faults_per_step'):,.0f} | "
              f"{median(tuned, 'resident_mib'):,.0f} | {median(tuned, 'released_mib'):,.0f} |")
    print(f"ratio configure_allocator / default: {median(True, 'images_per_s') / median(False, 'images_per_s'):.2f}×")


if __name__ == "__main__":
    main()
