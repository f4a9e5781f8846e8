"""Server time from the end of a stroke to what Explore's drawing bench shows, per shipped checkpoint, and
the cost of a GAN's search for the drawing (inversion).

A drawing here is a test digit blown up 8 times onto the 280×280 canvas as the canvas sends it (RGBA).
Three numbers side by side, as in bench/slider_latency.py: the backend alone (canvas pixels -> MNIST-like
digit -> the classifier's reading -> the model's redrawing (an encoder's code and reconstruction; a diffusion
model's SDEdit at strength 0.5) -> the nearest training digits); the drawing section's own server time as
the page reports it under the section (AppTest, starting from test digits: the canvas itself cannot be
driven there); and the whole Explore page rerun. A GAN's redrawing is a search that runs on a click, timed
apart: the backend row of a GAN is its inversion.

    .venv/bin/python bench/drawing_latency.py --drawings 20
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
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")   # as app.py sets it, before torch loads OpenMP
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from aigc import Redraw, configure_threads, list_checkpoints, load_checkpoint, sampling  # noqa: E402
from aigc.drawing import canvas_ink, classifier_reading, mnist_like, nearest_training_digits, redraw  # noqa: E402


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def canvas_of(digit: torch.Tensor) -> np.ndarray:
    """A test digit (1, 1, 28, 28) as the 280×280 RGBA canvas would send it: white ink on black, blown up 8×."""
    ink = Image.fromarray(((digit[0, 0] + 1) * 127.5).byte().numpy()).resize((224, 224), Image.Resampling.BILINEAR)
    rgba = np.zeros((280, 280, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[28:252, 28:252, :3] = np.asarray(ink)[..., None]
    return rgba


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--drawings", type=int, default=20)
    args = p.parse_args()
    configure_threads()
    from streamlit.testing.v1 import AppTest

    digits, labels = sampling.test_digits(torch.arange(args.drawings))
    canvases = [canvas_of(d[None]) for d in digits]
    print("| checkpoint | redrawing | backend p50 / p95 ms | error of its version (random z) "
          "| section p50 / p95 ms | whole page rerun p50 / p95 ms |\n|---|---|---|---|---|---|")
    for name, path in list_checkpoints().items():
        model, _ = load_checkpoint(path)
        model.eval()
        settings = {s.name: s.default for s in model.sampling_settings}
        backend, errors, starts = [], [], []
        for canvas, label in zip(canvases, labels):
            start = time.perf_counter()
            digit = mnist_like(canvas_ink(canvas))
            read = int(classifier_reading(digit).argmax())
            found = redraw(model, digit, read if model.conditional else None, 0.5, **settings)
            nearest_training_digits(digit)
            backend.append((time.perf_counter() - start) * 1000)
            errors.append(found.error)
            starts.append(found.start_error or float("nan"))
        searched = f" ({statistics.median(starts):.3f})" if model.redraw is Redraw.INVERT else ""

        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run()
        at.switch_page("pages/explore.py").run()
        at.selectbox(key="explore_ckpt").set_value(f"{name} (shipped)").run()
        at.radio(key="draw_source").set_value("A test digit").run()
        page, section = [], []
        for k in range(1, args.drawings + 1) if model.redraw is not Redraw.INVERT else ():
            start = time.perf_counter()
            at.number_input(key="draw_test_digit").set_value(k).run()
            page.append((time.perf_counter() - start) * 1000)
            assert not at.exception, at.exception
            reported = [c.value for c in at.caption if c.value.startswith("Server time for this update")][-1]
            section.append(float(reported.split(": ")[1].split(" ms")[0]))
        shown = (lambda v: f"{statistics.median(v):.1f} / {pct(v, 0.95):.1f}" if v else "on a click")
        print(f"| {name} | {model.redraw.value} | {shown(backend)} | {statistics.median(errors):.3f}{searched} | "
              f"{shown(section)} | {shown(page)} |")
    print(f"\n{os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}, {time.strftime('%Y-%m-%d')}")


if __name__ == "__main__":
    main()
