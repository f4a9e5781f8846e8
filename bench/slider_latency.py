"""Server time of one latent-slider move on the Explore page, per shipped checkpoint.

Two numbers side by side: the backend work alone (move z, run G on one latent, make the PNG) and the
whole Explore page rerun in Streamlit's AppTest (script execution + element serialisation, the server's
share of a slider update; the network and the browser's drawing come on top).

    .venv/bin/python bench/slider_latency.py --moves 30
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
import torch  # noqa: E402

from aigc import configure_threads, list_checkpoints, load_checkpoint  # noqa: E402
from aigc.images import grid, png_bytes  # noqa: E402
from aigc.latent import find_directions  # noqa: E402
from aigc.sampling import noise  # noqa: E402


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--moves", type=int, default=30)
    args = p.parse_args()
    configure_threads()
    from streamlit.testing.v1 import AppTest

    print("| checkpoint | backend p50 / p95 ms | Explore page rerun p50 / p95 ms |\n|---|---|---|")
    for name, path in list_checkpoints().items():
        model, _ = load_checkpoint(path)
        direction = find_directions(model, n=256)[0].vector
        z0 = noise(model, 1, 7)
        labels = model.default_labels(1)
        backend = []
        for k in range(args.moves):
            start = time.perf_counter()
            with torch.no_grad():
                png_bytes(grid(model.sample(z0 + (k % 9 - 4) * direction, labels), nrow=1, pad=0, scale=12))
            backend.append((time.perf_counter() - start) * 1000)

        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run()
        at.switch_page("pages/explore.py").run()
        at.selectbox(key="explore_ckpt").set_value(f"{name} (shipped)").run()
        page = []
        for k in range(args.moves):
            slider = at.slider(key="dir_thickness")
            start = time.perf_counter()
            slider.set_value(round((k % 9 - 4) * 0.5, 1)).run()
            page.append((time.perf_counter() - start) * 1000)
            assert not at.exception, at.exception
        print(f"| {name} | {statistics.median(backend):.1f} / {pct(backend, 0.95):.1f} | "
              f"{statistics.median(page):.1f} / {pct(page, 0.95):.1f} |")
    print(f"\n{os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}, {time.strftime('%Y-%m-%d')}")


if __name__ == "__main__":
    main()
