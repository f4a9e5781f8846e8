"""Does the audience slow the run it came to watch? Training throughput of the Train page's default recipe
with nobody, one and thirty viewers, against the same recipe trained with no page at all.

Side by side, alternating rounds on one machine:
- alone: the recipe in a process of its own (aigc's Trainer, nothing else running);
- the lab's run, alone: the same run as the server trains it (a RunRegistry on a thread of its own, with the
  classifier reading each grid, the coach and the branch points, bench/lab_cost.py), in a process of its own
  with no page, measured as the server's run is: steps over the window, after the same 3 s. The viewers'
  share is taken against it, since it differs from the server's run by the page alone;
- server, 0 viewers: the run started from the Train page of a real `streamlit run app.py`, its tab then
  idle (it polls nothing);
- server, 1 viewer: the owner's tab answers the page's live reruns as a browser does;
- server, N viewers: the owner and N - 1 tabs on the read-only link (?run=<id>);
- paired: on one run with its 1 or N tabs connected throughout, windows in which the tabs watch alternate
  with windows in which they send nothing, so the machine's drift between separate runs drops out.
The window opens once the class has arrived: a tab that joined while fewer watched reruns its whole page
once, at its share of the class's poll budget, before the window. Each viewer is a simulated tab that
speaks Streamlit's websocket protocol (bench/load_test.py), on loopback, so the clients' own parsing also
runs on this machine's two cores (in a classroom it runs on the students' devices). Throughput is steps advanced over a timed window, read from the page's progress
bar, times the batch size.

    .venv/bin/python bench/audience.py --viewers 30 --window 15 --rounds 2
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import shutil
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from load_test import StreamlitSession, free_port, start_server, stop_server  # noqa: E402

MODEL = "cgan"
ALONE = """
from aigc import TrainConfig, Trainer, configure_allocator, configure_threads, load_mnist
configure_threads()
configure_allocator()                                              # as the app and the CLI train
data = load_mnist(train=True)
Trainer(TrainConfig.for_model("{model}", steps=20), data=data).run()             # warm-up
trainer = Trainer(TrainConfig.for_model("{model}", steps=100_000, max_seconds={window}), data=data)
trainer.run()
print(trainer.step * trainer.config.batch_size / trainer.train_seconds)
"""

ALONE_LAB = """
import os, tempfile, time
os.environ.setdefault("GOMP_SPINCOUNT", "10000")                  # as app.py sets it, before torch loads
from aigc import TrainConfig, configure_allocator, configure_threads
from aigc.runs import RunRegistry, default_max_jobs
threads = max(1, os.cpu_count() // default_max_jobs())                # as ui/cached.registry() sets it up
configure_threads(threads)
configure_allocator()
registry = RunRegistry(runs_dir=tempfile.mkdtemp(), idle_timeout=1e9, threads=threads)
warm = registry.submit(TrainConfig.for_model("{model}", steps=20))
while registry.view(warm).active:
    time.sleep(0.05)
run = registry.submit(TrainConfig.for_model("{model}", steps=100_000))
time.sleep(3)                                                      # as served(): past the first snapshots
first, started = registry.view(run).step, time.monotonic()
time.sleep({window})
last, elapsed = registry.view(run).step, time.monotonic() - started
registry.stop(run)
while registry.view(run).active:                                   # its thread ends before the interpreter
    time.sleep(0.05)
print((last - first) * {batch} / elapsed)
"""


class Tab(StreamlitSession):
    """A tab that also reads the progress bar's text (step n / m · … images/s)."""

    def __init__(self, url: str):
        super().__init__(url)
        self.progress = ""

    def _handle(self, msg):
        super()._handle(msg)
        if msg.WhichOneof("type") == "delta" and msg.delta.WhichOneof("type") == "new_element":
            if msg.delta.new_element.WhichOneof("type") == "progress":
                self.progress = msg.delta.new_element.progress.text

    def step(self) -> int:
        m = re.search(r"step ([\d,]+) /", self.progress)
        return int(m.group(1).replace(",", "")) if m else -1


async def watch(tab: Tab, until: float) -> None:
    """Answers the live fragment's auto-reruns as a browser does."""
    while time.monotonic() < until:
        await asyncio.sleep(min(tab.auto_reruns.values(), default=1) or 1)
        for fragment in list(tab.auto_reruns):
            await tab.rerun(fragment=fragment)


async def class_arrives(ws_url: str, viewers: int) -> list[Tab]:
    """The owner starts a run on the Train page and viewers - 1 more tabs open its read-only link; returns the
    tabs, the owner's first, once the class has arrived and the run is past its first snapshots."""
    owner = Tab(ws_url)
    await owner.connect()
    await owner.rerun(page=None)
    await owner.rerun(page="train")
    steps = owner.find("number_input", "Steps")
    owner.states[steps.id] = steps.proto.max                     # longer than any window
    await owner.rerun()
    await owner.rerun(trigger=owner.find("button", "Start").id)
    await owner.rerun()                                 # the page at the run's address (set by Start)
    run_id = re.search(r"run=(\w+)", owner.query_string).group(1)
    tabs = [owner]
    for _ in range(viewers - 1):
        tab = Tab(ws_url)
        await tab.connect()
        await tab.rerun(page=None)
        await tab.rerun(page="train", query=f"run={run_id}")
        tabs.append(tab)
    await asyncio.sleep(3)                              # past the first steps and snapshots
    for tab in tabs[1:]:  # the class's arrival: a tab that joined before the class was complete reruns its page
        for fragment in list(tab.auto_reruns):          # once, at its share of the poll budget, on its next poll
            await tab.rerun(fragment=fragment)
    await asyncio.sleep(2 if viewers > 1 else 0)        # ...which those full reruns take: before the window
    return tabs


async def steps_over(tabs: list[Tab], window: float, watching: bool) -> tuple[int, float]:
    """Steps the run advanced over `window` seconds while the tabs answered its live reruns (watching) or
    sent nothing (idle, as a tab left in the background), and the seconds that took."""
    owner = tabs[0]
    await owner.rerun()
    first, started = owner.step(), time.monotonic()
    if watching:
        await asyncio.gather(*(watch(t, started + window) for t in tabs))
    else:
        await asyncio.sleep(window)
    await owner.rerun()
    if first < 0 or owner.step() <= first:
        raise RuntimeError(f"the run did not advance ({first} -> {owner.step()}): {owner.progress!r}")
    return owner.step() - first, time.monotonic() - started


async def leave(tabs: list[Tab]) -> None:
    stop = tabs[0].find("button", "Stop")
    if stop is not None:
        await tabs[0].rerun(trigger=stop.id)
    for tab in tabs:
        await tab.close()


async def served(ws_url: str, viewers: int, window: float, batch: int) -> tuple[float, float]:
    """Images/s of a run started on the Train page, over `window` seconds, with `viewers` tabs watching,
    and the CPU the simulated tabs themselves took meanwhile, in cores."""
    tabs = await class_arrives(ws_url, max(viewers, 1))
    client_cpu = time.process_time()
    steps, elapsed = await steps_over(tabs, window, watching=viewers > 0)
    client_share = (time.process_time() - client_cpu) / elapsed
    await leave(tabs)
    return steps * batch / elapsed, client_share


async def paired(ws_url: str, viewers: int, window: float, pairs: int) -> list[float]:
    """The same run, the same connected tabs, windows in which they watch and windows in which they sit idle,
    in pairs ordered idle-watching then watching-idle so a steady drift of the machine cancels; returns each
    pair's speed watching over its speed idle."""
    tabs = await class_arrives(ws_url, viewers)
    ratios = []
    for i in range(pairs):
        speeds = {}
        for watching in ((False, True) if i % 2 == 0 else (True, False)):
            steps, elapsed = await steps_over(tabs, window, watching)
            speeds[watching] = steps / elapsed
        ratios.append(speeds[True] / speeds[False])
    await leave(tabs)
    return ratios


async def warm_up(ws_url: str) -> None:
    tab = Tab(ws_url)
    await tab.connect()
    await tab.rerun(page=None)
    await tab.rerun(page="train")
    await tab.close()
    await asyncio.sleep(5)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--viewers", type=int, default=30)
    p.add_argument("--window", type=float, default=15, help="timed seconds per measurement")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--pairs", type=int, default=4, help="paired windows, watching against idle, per class size")
    args = p.parse_args()
    sys.path.insert(0, str(REPO))
    from aigc import TrainConfig
    batch = TrainConfig.for_model(MODEL).batch_size

    port = free_port()
    runs = tempfile.mkdtemp(prefix="aigc-audience-runs-")
    server = start_server(port, {**os.environ, "AIGC_RUNS_DIR": runs})
    ws_url = f"ws://127.0.0.1:{port}/_stcore/stream"
    asyncio.run(warm_up(ws_url))      # a fresh server imports the backend in the background: not in a window
    alone = {"alone (no page)": ALONE.format(model=MODEL, window=args.window),
             "the lab's run, alone (no page)": ALONE_LAB.format(model=MODEL, window=args.window, batch=batch)}
    conditions = {**alone, "server, 0 viewers": 0, "server, 1 viewer": 1, f"server, {args.viewers} viewers": args.viewers}
    results = {name: [] for name in conditions}
    client = {name: [] for name in conditions}
    try:
        for r in range(args.rounds):
            for name, viewers in conditions.items():
                if name in alone:
                    out = subprocess.run([sys.executable, "-c", alone[name]], cwd=REPO, capture_output=True, text=True,
                                         check=True)
                    results[name].append(float(out.stdout.strip().splitlines()[-1]))
                    client[name].append(0.0)
                else:
                    speed, cores = asyncio.run(served(ws_url, viewers, args.window, batch))
                    results[name].append(speed)
                    client[name].append(cores)
                print(f"round {r + 1}: {name}: {results[name][-1]:,.0f} images/s, simulated tabs "
                      f"{client[name][-1]:.2f} cores", flush=True)
        ratios = {}
        for viewers in (1, args.viewers) if args.pairs else ():
            ratios[viewers] = asyncio.run(paired(ws_url, viewers, args.window, args.pairs))
            print(f"paired, {viewers} watching: " + ", ".join(f"{r:.0%}" for r in ratios[viewers]), flush=True)
    finally:
        stop_server(server)
        shutil.rmtree(runs, ignore_errors=True)
    bare, lab = (statistics.median(results[name]) for name in alone)
    print(f"\n{MODEL}, batch {batch}, {args.window:g} s windows, median of {args.rounds} rounds; "
          f"{os.cpu_count()} CPU cores, {time.strftime('%Y-%m-%d %H:%M')}")
    print("| condition | images/s | of the lab's run alone | of a bare Trainer alone | CPU of the simulated tabs |\n"
          "|---|---|---|---|---|")
    for name, values in results.items():
        print(f"| {name} | {statistics.median(values):,.0f} | {statistics.median(values) / lab:.0%} | "
              f"{statistics.median(values) / bare:.0%} | {statistics.median(client[name]):.2f} cores |")
    if ratios:
        print(f"\nThe same run with its tabs watching, as a share of it with the same tabs idle ({args.pairs} pairs "
              f"of {args.window:g} s windows):\n| tabs | median | range |\n|---|---|---|")
        for viewers, values in ratios.items():
            print(f"| {viewers} | {statistics.median(values):.0%} | {min(values):.0%}–{max(values):.0%} |")


if __name__ == "__main__":
    main()
