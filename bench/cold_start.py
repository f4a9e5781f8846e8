"""Cold start: how long the first visitor of a fresh server waits for the Home page, in Chromium.

Each round starts a fresh `streamlit run app.py` (nothing imported, nothing cached yet), opens its Home page
in a new browser context and records, in the page's own clock (milliseconds from the navigation's start):
when the title (h1) shows, when the intro text shows, when the hero grid shows, and whether a placeholder
saying what is coming showed before the grid. Then a second visitor opens the page on the now warm server:
its title and text times are what the browser alone takes (loading Streamlit's frontend, connecting,
rendering). Medians over --servers rounds per tree; give --tree more than once to compare two versions side
by side (rounds alternate between them):

    .venv/bin/python bench/cold_start.py --servers 5
    git worktree add /tmp/cold-before HEAD~1
    .venv/bin/python bench/cold_start.py --servers 5 --tree /tmp/cold-before --tree .
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

# Notes each first appearance in performance.now(), which counts from the navigation's start. Polled, not
# observed: an image finishing its download changes no DOM.
MARKS = """
window._marks = {};
const poll = setInterval(() => {
  const main = document.querySelector("[data-testid='stMain']");
  if (!main) return;
  const now = performance.now(), m = window._marks, img = main.querySelector("[data-testid='stImage'] img");
  if (m.title === undefined && main.querySelector("h1")?.innerText.trim()) m.title = now;
  if (m.text === undefined && main.innerText.includes("Pick a generative model")) m.text = now;
  if (m.placeholder === undefined && main.innerText.includes("Loading PyTorch")) m.placeholder = now;
  if (m.grid === undefined && img?.complete && img.naturalWidth > 0) { m.grid = now; clearInterval(poll); }
}, 10);
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def one_round(browser, tree: Path, timeout: float) -> dict:
    """A fresh server on `tree`, its Home page opened once; the marks in ms (None: never seen)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="aigc-cold-") as runs:
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port",
             str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
            cwd=tree, env={**os.environ, "AIGC_RUNS_DIR": runs}, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            for _ in range(240):
                try:
                    urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
                    break
                except OSError:
                    time.sleep(0.25)
            else:
                raise RuntimeError(f"streamlit did not start in {tree}")
            cold, warm = (visit(browser, url, timeout) for _ in range(2))
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(5)
    return {**{k: round(cold[k]) if k in cold else None for k in ("title", "text", "placeholder", "grid")},
            "warm_title": round(warm["title"]), "warm_text": round(warm["text"])}


def visit(browser, url: str, timeout: float) -> dict:
    """Opens the Home page in a new browser context (an empty cache, as a new visitor's) until its grid shows."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.add_init_script(MARKS)
        page.goto(url)
        page.wait_for_function("() => window._marks.grid !== undefined", timeout=timeout * 1000)
        return page.evaluate("() => window._marks")
    finally:
        context.close()


def median(rounds: list[dict], key: str):
    values = [r[key] for r in rounds if r[key] is not None]
    return round(statistics.median(values)) if values else None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--servers", type=int, default=5, help="fresh servers per tree")
    p.add_argument("--tree", action="append", type=Path, help="a checkout to run (repeatable); default: this one")
    p.add_argument("--timeout", type=float, default=120, help="seconds to wait for the hero grid")
    args = p.parse_args()
    trees = [t.resolve() for t in args.tree or [REPO]]

    from playwright.sync_api import sync_playwright

    rounds = {str(t): [] for t in trees}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync"])
        try:
            for i in range(args.servers):
                for tree in trees:
                    r = one_round(browser, tree, args.timeout)
                    rounds[str(tree)].append(r)
                    print(f"  {tree.name} round {i + 1}: {r}", file=sys.stderr, flush=True)
        finally:
            browser.close()

    summary = {
        "servers": args.servers,
        "trees": {tree: {"title_median_ms": median(rs, "title"), "text_median_ms": median(rs, "text"),
                         "grid_median_ms": median(rs, "grid"),
                         "placeholder_shown": sum(r["placeholder"] is not None for r in rs),
                         "warm_title_median_ms": median(rs, "warm_title"),
                         "warm_text_median_ms": median(rs, "warm_text"),
                         "title_ms": [r["title"] for r in rs], "grid_ms": [r["grid"] for r in rs]}
                  for tree, rs in rounds.items()},
        "cpu_cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d"),
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    sys.exit(main())
