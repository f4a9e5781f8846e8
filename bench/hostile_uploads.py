"""What a hostile upload costs the server: peak extra memory and seconds until it is refused, for each
kind of file in tests/hostile.py, with aigc's loader (now) beside a plain weights-only torch.load of the
same bytes followed by building the model it names (the loader before the bounded checks). Each
measurement runs in a fresh process, so its peak memory is its own. Then the shipped checkpoints' load
time, both loaders side by side in one process, alternating.

    .venv/bin/python bench/hostile_uploads.py
"""
from __future__ import annotations

import argparse
import io
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]


def load_before(data) -> None:
    """The loader as it was: everything the file declares is unpickled and allocated, then the model built."""
    import torch

    from aigc import build_model
    ckpt = torch.load(io.BytesIO(data) if isinstance(data, bytes) else data, map_location="cpu", weights_only=True)
    build_model(ckpt["model_name"], ckpt["model_args"]).load_state_dict(ckpt["state_dict"])


def load_now(data) -> None:
    from aigc import load_checkpoint
    load_checkpoint(data)


def measure_one(kind: str, loader: str) -> dict:
    """In this process: peak memory above the baseline (MB) and seconds to load or refuse one file."""
    import hostile

    from aigc import build_model, make_checkpoint
    from aigc.checkpoint import checkpoint_bytes
    data = hostile.build()[kind][0]
    warm = checkpoint_bytes(make_checkpoint(build_model("dcgan", {"width": 4})))
    load_before(warm), load_now(warm)              # imports and first calls are not the file's cost
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    try:
        (load_now if loader == "now" else load_before)(data)
        outcome = "loaded"
    except MemoryError:
        outcome = "out of memory"
    except Exception as exc:
        outcome = f"refused: {str(exc)[:90]}"
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"mb": (peak - before) / 1024, "s": seconds, "outcome": outcome, "size_mb": len(data) / 2**20}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--one", nargs=2, metavar=("KIND", "LOADER"), help=argparse.SUPPRESS)
    p.add_argument("--rounds", type=int, default=5, help="rounds of the shipped checkpoints' load time")
    args = p.parse_args()
    if args.one:
        print(json.dumps(measure_one(*args.one)))
        return
    import hostile
    print("| file | size | before: extra memory, time, outcome | now: extra memory, time, outcome |\n|---|---|---|---|")
    for kind in hostile.build():
        cells = []
        for loader in ("before", "now"):
            out = subprocess.run([sys.executable, __file__, "--one", kind, loader], capture_output=True, text=True,
                                 timeout=600)
            r = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else None
            cells.append(f"{r['mb']:,.0f} MB, {r['s']:.2f} s, {r['outcome']}" if r else
                         f"process died ({out.returncode})")
            size = r["size_mb"] if r else float("nan")
        print(f"| {kind} | {size:.2f} MB | {cells[0]} | {cells[1]} |")

    from aigc import list_checkpoints
    print("\n| shipped checkpoint | before: load ms (median) | now: load ms (median) | now / before |\n|---|---|---|---|")
    for name, path in list_checkpoints().items():
        times = {"before": [], "now": []}
        for _ in range(args.rounds):
            for label, fn in (("before", load_before), ("now", load_now)):
                start = time.perf_counter()
                fn(path)
                times[label].append((time.perf_counter() - start) * 1000)
        b, n = statistics.median(times["before"]), statistics.median(times["now"])
        print(f"| {name} | {b:.0f} | {n:.0f} | {n / b:.2f}× |")
    import torch
    print(f"\ntorch {torch.__version__}, {torch.get_num_threads()} threads, {time.strftime('%Y-%m-%d %H:%M')}")


if __name__ == "__main__":
    main()
