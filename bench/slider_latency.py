"""Server time of one Explore update, per shipped checkpoint: a latent-slider move, or for a model that
samples step by step (Section.TRAJECTORY) a new seed in the step-by-step section: one image and its
whole trajectory with the sampling settings' defaults (the model's own steps, guidance and sampler), or with
--steps and --sampler in their place.

Three numbers side by side: the backend work alone (sample one image, or its trajectory, and make the
PNGs); the section's own server time as the page reports it under the section (in a browser the section
is a fragment, and a move reruns only it); and the whole Explore page rerun in Streamlit's AppTest, which
reruns every section (script execution + element serialisation; the network and the browser's drawing
come on top).

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
from aigc.models import Section  # noqa: E402
from aigc.sampling import noise  # noqa: E402


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--moves", type=int, default=30)
    p.add_argument("--steps", type=int, help="sampling steps instead of the model's own (models that sample step by step)")
    p.add_argument("--sampler", help="sampler instead of the model's own: euler, heun or ancestral")
    args = p.parse_args()
    configure_threads()
    from streamlit.testing.v1 import AppTest

    print("| checkpoint | update | backend p50 / p95 ms | section (fragment) p50 / p95 ms "
          "| whole page rerun p50 / p95 ms |\n|---|---|---|---|---|")
    for name, path in list_checkpoints().items():
        model, _ = load_checkpoint(path)
        labels = model.default_labels(1)
        stepwise = Section.TRAJECTORY in model.explore_sections
        explore_defaults = {s.name: s.default for s in model.sampling_settings}     # as the page first shows it
        overrides = {"steps": args.steps, "sampler": args.sampler} if stepwise else {}
        explore_defaults.update({k: v for k, v in overrides.items() if v is not None})
        if not stepwise:
            direction = find_directions(model, n=256)[0].vector
        backend = []
        for k in range(args.moves):
            start = time.perf_counter()
            with torch.no_grad():
                if stepwise:         # a new seed: the whole way, x_t and x̂₀ at every step, and the strip of it
                    path = model.trajectory(noise(model, 1, 100 + k), labels, **explore_defaults)
                    png_bytes(grid(torch.cat([path.images[1:, 0], path.estimates[:, 0]]), nrow=len(path.estimates)))
                else:
                    png_bytes(grid(model.sample(noise(model, 1, 7) + (k % 9 - 4) * direction, labels),
                                   nrow=1, pad=0, scale=12))
            backend.append((time.perf_counter() - start) * 1000)

        at = AppTest.from_file(str(REPO / "app.py"), default_timeout=120).run()
        at.switch_page("pages/explore.py").run()
        at.selectbox(key="explore_ckpt").set_value(f"{name} (shipped)").run()
        if stepwise:                                                        # the same settings on the page
            at.slider(key="sample_steps").set_value(explore_defaults["steps"]).run()
            at.radio(key="sample_sampler").set_value(explore_defaults["sampler"]).run()
        page, section = [], []
        for k in range(args.moves):
            widget = at.number_input(key="trajectory_seed") if stepwise else at.slider(key="dir_thickness")
            start = time.perf_counter()
            widget.set_value(100 + k if stepwise else round((k % 9 - 4) * 0.5, 1)).run()
            page.append((time.perf_counter() - start) * 1000)
            assert not at.exception, at.exception
            reported = next(c.value for c in at.caption if c.value.startswith("Server time for this update"))
            section.append(float(reported.split(": ")[1].split(" ms")[0]))
        update = (f"new seed, {explore_defaults['steps']}-step {explore_defaults['sampler']} trajectory" if stepwise
                  else "slider move")
        print(f"| {name} | {update} | "
              f"{statistics.median(backend):.1f} / {pct(backend, 0.95):.1f} | "
              f"{statistics.median(section):.1f} / {pct(section, 0.95):.1f} | "
              f"{statistics.median(page):.1f} / {pct(page, 0.95):.1f} |")
    print(f"\n{os.cpu_count()} CPU cores, torch threads {torch.get_num_threads()}, {time.strftime('%Y-%m-%d')}")


if __name__ == "__main__":
    main()
