"""What surviving a restart costs: writing a run's saved state, per model with its recipe, and reading a
runs folder back when a server starts.

For each model, a run of the run registry trains for `--steps` steps with a state after every log
(`state_every=0`); every state write is timed (the registry's own path: the trainer's checkpoint with its
optimizers, the snapshots, an atomic write with fsync). A training run writes one every 30 s of
training, so its share of the training time is write / 30 s. Then a new registry reads the folder back,
holding `--copies` runs of each model (the states copied under new ids), timed over `--rounds` restarts:
until the registry answers, and until every run is read back.

    .venv/bin/python bench/restart_cost.py --steps 40 --copies 10
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # run as a script from anywhere
from aigc import MODELS, Status, TrainConfig, configure_threads, describe_device, pick_device  # noqa: E402
from aigc import read_checkpoint, runs  # noqa: E402

STATE_EVERY_S = 30.0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", action="append", choices=list(MODELS), help="repeatable; default: every model")
    p.add_argument("--steps", type=int, default=40, help="steps per run (a state at every log, every 5 steps)")
    p.add_argument("--copies", type=int, default=10, help="runs of each model in the folder a new server reads")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--base", default="checkpoints/vae.pt", help="the VAE a latent diffusion model is built on")
    args = p.parse_args()
    threads = configure_threads()
    folder = Path(tempfile.mkdtemp(prefix="aigc-restart-"))
    writes: list[float] = []
    original_save = runs.save_checkpoint

    def timed_save(checkpoint, path):
        started = time.perf_counter()
        result = original_save(checkpoint, path)
        if Path(path).parent.name == "state":
            writes.append((time.perf_counter() - started) * 1000)
        return result

    runs.save_checkpoint = timed_save
    try:
        print("| model | state file MB | state write ms (median) | share of 30 s of training |\n|---|---|---|---|")
        registry = runs.RunRegistry(max_jobs=1, runs_dir=folder, state_every=0.0)
        for name in args.model or list(MODELS):
            writes.clear()
            base = read_checkpoint(args.base) if MODELS[name][1].base_model else None
            run = registry.submit(TrainConfig.for_model(name, steps=args.steps, log_every=5), base_checkpoint=base)
            while registry.view(run).active:
                time.sleep(0.05)
            assert registry.view(run).status is Status.FINISHED, registry.view(run).message
            state = folder / "state" / f"{run.id}.pt"
            ms = statistics.median(writes[:-1] or writes)       # while training (the last one is the ended run's)
            print(f"| {name} | {state.stat().st_size / 2**20:.1f} | {ms:,.0f} | {ms / (STATE_EVERY_S * 1000):.2%} |")
            saved = read_checkpoint(state)
            for k in range(args.copies - 1):                    # more runs like it, under their own ids
                copy_id = f"{run.id}-{k}"
                original_save({**saved, "run": {**saved["run"], "id": copy_id}}, state.with_name(f"{copy_id}.pt"))
    finally:
        runs.save_checkpoint = original_save
    files = list((folder / "state").glob("*.pt"))
    times = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        restarted = runs.RunRegistry(max_jobs=1, runs_dir=folder)
        made = time.perf_counter() - started
        assert len(restarted.all_runs()) == len(files)          # waits until they are all read back
        times.append((made, time.perf_counter() - started))
    total_mb = sum(f.stat().st_size for f in files) / 2**20
    made, read = (statistics.median(t[i] for t in times) * 1000 for i in (0, 1))
    print(f"\nA new server's registry is ready in {made:,.1f} ms and has read {len(files)} saved runs "
          f"({total_mb:,.0f} MB) back, on a thread of its own, after {read:,.0f} ms (medians of {args.rounds}).")
    print(f"{describe_device(pick_device())}, {threads} torch threads, {time.strftime('%Y-%m-%d %H:%M')}")
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
