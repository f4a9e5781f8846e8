"""Load test: N simulated students against a real `streamlit run app.py`, on loopback only.

Each simulated student speaks Streamlit's own websocket protocol (the BackMsg/ForwardMsg protobufs the
browser sends), so thirty sessions cost the client machine little and the server sees real sessions:
it opens the app, goes to Train, presses Start, watches its run (answering the fragment's auto-reruns
like a browser does), then goes to Explore and moves a latent slider several times, timing each rerun
(request sent -> script finished, i.e. server time plus loopback). Then it closes its tab.

Bounded: every session stops at --duration seconds, and the server started here is killed at the end.

    .venv/bin/python bench/load_test.py --sessions 30 --duration 150
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Widget:
    id: str
    kind: str
    label: str
    proto: object
    fragment: str = ""                           # set when the widget lives in an st.fragment


class StreamlitSession:
    """One browser tab, as far as the server can tell."""

    def __init__(self, url: str):
        self.url = url
        self.ws = None
        self.pages: dict[str, str] = {}          # url_pathname -> page_script_hash
        self.page_hash = ""
        self.query_string = ""                   # the page address's ?… part, as the server last set it
        self.widgets: dict[str, Widget] = {}     # id -> widget of the current page
        self.states: dict[str, object] = {}      # id -> value we hold
        self.texts: list[str] = []
        self.exceptions: list[str] = []
        self.auto_reruns: dict[str, float] = {}  # fragment id -> interval
        self.finished = asyncio.Event()
        self.images = 0
        self._reader = None

    async def connect(self):
        self.ws = await websockets.connect(self.url, subprotocols=["streamlit"], max_size=2**26, open_timeout=60)
        self._reader = asyncio.create_task(self._read())

    async def close(self):
        if self._reader:
            self._reader.cancel()
        if self.ws:
            await self.ws.close()

    async def _read(self):
        try:
            async for data in self.ws:
                msg = ForwardMsg()
                msg.ParseFromString(data)
                self._handle(msg)
        except (websockets.ConnectionClosed, asyncio.CancelledError):
            pass

    def _handle(self, msg: ForwardMsg):
        kind = msg.WhichOneof("type")
        if kind == "navigation":
            for page in msg.navigation.app_pages:
                self.pages[page.url_pathname] = page.page_script_hash
            self.page_hash = msg.navigation.page_script_hash
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            element = msg.delta.new_element
            etype = element.WhichOneof("type")
            if etype == "exception":
                self.exceptions.append(f"{element.exception.type}: {element.exception.message}")
            elif etype in ("markdown", "alert", "text", "heading"):
                body = getattr(element, etype)
                self.texts.append(getattr(body, "body", "") or getattr(body, "text", ""))
            elif etype == "imgs":
                self.images += 1
            sub = getattr(element, etype, None) if etype else None
            widget_id = getattr(sub, "id", "") if sub is not None else ""
            if widget_id:
                self.widgets[widget_id] = Widget(widget_id, etype, getattr(sub, "label", ""), sub, msg.delta.fragment_id)
        elif kind == "page_info_changed":
            self.query_string = msg.page_info_changed.query_string
        elif kind == "auto_rerun":
            self.auto_reruns[msg.auto_rerun.fragment_id] = msg.auto_rerun.interval
        elif kind == "script_finished" and msg.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
            self.finished.set()

    def _widget_states(self, trigger: str | None = None):
        back = BackMsg()
        states = back.rerun_script.widget_states
        for wid, value in self.states.items():
            w = states.widgets.add()
            w.id = wid
            if isinstance(value, bool):
                w.bool_value = value
            elif isinstance(value, list):
                w.double_array_value.data.extend(value)
            elif isinstance(value, (int, float)):
                w.double_value = value
            else:
                w.string_value = str(value)
        if trigger:
            w = states.widgets.add()
            w.id = trigger
            w.trigger_value = True
        return back

    async def rerun(self, page: str | None = None, trigger: str | None = None, fragment: str = "",
                    auto: bool = True, timeout: float = 60.0) -> float:
        """Sends a rerun like the browser does and waits for script_finished; returns seconds."""
        if page is not None:
            self.page_hash = self.pages.get(page, self.page_hash)
            self.query_string = ""
            self.auto_reruns.clear()
            self.widgets.clear()
            self.states.clear()
        back = self._widget_states(trigger)
        back.rerun_script.page_script_hash = self.page_hash
        back.rerun_script.query_string = self.query_string
        if fragment:
            back.rerun_script.fragment_id = fragment
            back.rerun_script.is_auto_rerun = auto
        self.finished.clear()
        self.texts.clear()
        start = time.perf_counter()
        await self.ws.send(back.SerializeToString())
        await asyncio.wait_for(self.finished.wait(), timeout)
        return time.perf_counter() - start

    def find(self, kind: str, label: str) -> Widget | None:
        for w in self.widgets.values():
            if w.kind == kind and label.lower() in w.label.lower():
                return w
        return None


@dataclass
class Report:
    served: int = 0
    started_jobs: int = 0
    queued_seen: int = 0
    max_running: int = 0
    max_queued: int = 0
    slider_latencies: list = field(default_factory=list)   # round trip: send -> script finished
    slider_server_ms: list = field(default_factory=list)   # the page's own time for the update
    first_page_latencies: list = field(default_factory=list)
    errors: list = field(default_factory=list)


async def explore(s: StreamlitSession, args, report: Report, deadline: float):
    await s.rerun(page=args.explore_page)
    slider = s.find("slider", args.slider_label)
    if slider is None:
        raise RuntimeError(f"no slider labelled '{args.slider_label}' on {args.explore_page}: "
                           f"{[(w.kind, w.label) for w in s.widgets.values()]}")
    low, high = slider.proto.min, slider.proto.max
    for k in range(args.moves):
        if time.monotonic() > deadline:
            break
        value = low + (high - low) * ((k * 0.37) % 1.0)
        s.states[slider.id] = [float(value)]
        # like the browser: a widget inside a fragment reruns only that fragment
        report.slider_latencies.append(await s.rerun(fragment=slider.fragment, auto=False))
        for t in s.texts:                        # the page reports its own script time for the update
            m = re.search(r"Server time for this update: ([\d.]+) ms", t)
            if m:
                report.slider_server_ms.append(float(m.group(1)))
        await asyncio.sleep(0.2)
    if s.exceptions:
        raise RuntimeError(f"page raised {s.exceptions[0]}")


async def student(i: int, args, report: Report, deadline: float):
    await asyncio.sleep(i * args.ramp / max(1, args.sessions))
    s = StreamlitSession(args.ws_url)
    try:
        await s.connect()
        report.first_page_latencies.append(await s.rerun(page=None))
        if s.exceptions:
            raise RuntimeError(f"home page raised {s.exceptions[0]}")
        report.served += 1
        if args.watch <= 0:                      # explore only (quiet latency measurement)
            await explore(s, args, report, deadline)
            return
        await s.rerun(page=args.train_page)
        start = s.find("button", args.start_label)
        if start is None:
            raise RuntimeError(f"no '{args.start_label}' button on {args.train_page}: {[w.label for w in s.widgets.values()]}")
        await s.rerun(trigger=start.id)
        report.started_jobs += 1
        watch_until = min(deadline, time.monotonic() + args.watch)
        queued = False
        while time.monotonic() < watch_until:
            interval = min(s.auto_reruns.values(), default=1.0) or 1.0
            await asyncio.sleep(interval)
            for fragment in list(s.auto_reruns):
                await s.rerun(fragment=fragment)
            queued = queued or any(re.search(r"queue|position", t, re.I) for t in s.texts)
        await s.rerun()                          # a full rerun, as a refresh would: the sidebar counts jobs
        for t in s.texts:
            m = re.search(r"(\d+) running · (\d+) queued", t)
            if m:
                report.max_running = max(report.max_running, int(m.group(1)))
                report.max_queued = max(report.max_queued, int(m.group(2)))
        report.queued_seen += queued
        await explore(s, args, report, deadline)
    except Exception as exc:
        report.errors.append(f"session {i}: {type(exc).__name__}: {exc}"[:300])
    finally:
        await s.close()


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB."""
    total = 0
    for p in [pid] + [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total / 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def main_async(args, server_pid: int | None):
    report = Report()
    peak = [0.0]

    async def sample_memory():
        while True:
            if server_pid:
                peak[0] = max(peak[0], rss_mb(server_pid))
            await asyncio.sleep(0.5)

    sampler = asyncio.create_task(sample_memory())
    deadline = time.monotonic() + args.duration
    t0 = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(student(i, args, report, deadline) for i in range(args.sessions))),
                           args.duration + 60)
    sampler.cancel()
    return report, peak[0], time.monotonic() - t0


def pct(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", type=int, default=30)
    p.add_argument("--duration", type=float, default=150, help="hard limit for the whole test, seconds")
    p.add_argument("--ramp", type=float, default=30, help="sessions arrive spread over this many seconds")
    p.add_argument("--watch", type=float, default=20, help="seconds each student watches the Train page")
    p.add_argument("--moves", type=int, default=10, help="slider moves per student on Explore")
    p.add_argument("--url", help="an already running app (http://127.0.0.1:PORT); default: start one here")
    p.add_argument("--max-jobs", type=int, help="AIGC_MAX_JOBS for the server started here")
    p.add_argument("--train-page", default="train")
    p.add_argument("--explore-page", default="explore")
    p.add_argument("--start-label", default="Start")
    p.add_argument("--slider-label", default="Thick")
    args = p.parse_args()

    server = None
    url = args.url
    if url is None:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "AIGC_RUNS_DIR": os.environ.get("AIGC_RUNS_DIR", "/tmp/aigc-load-runs")}
        if args.max_jobs:
            env["AIGC_MAX_JOBS"] = str(args.max_jobs)
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/_stcore/health", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            server.kill()
            sys.exit("server did not start")
    host = url.split("://", 1)[1].rstrip("/")
    if not host.startswith(("127.", "localhost", "[::1]")):
        sys.exit("this load test only targets loopback addresses")
    args.ws_url = f"ws://{host}/_stcore/stream"
    try:
        report, peak, wall = asyncio.run(main_async(args, server.pid if server else None))
    finally:
        if server:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(10)
    lat = [x * 1000 for x in report.slider_latencies]
    first = [x * 1000 for x in report.first_page_latencies]
    summary = {
        "sessions": args.sessions, "served": report.served, "jobs_started": report.started_jobs,
        "saw_queue_position": report.queued_seen,
        "max_jobs_running": report.max_running, "max_jobs_queued": report.max_queued,
        "slider_updates": len(lat),
        "slider_server_p50_ms": round(pct(report.slider_server_ms, 0.5), 1),
        "slider_server_p95_ms": round(pct(report.slider_server_ms, 0.95), 1),
        "slider_round_trip_p50_ms": round(pct(lat, 0.5), 1), "slider_round_trip_p95_ms": round(pct(lat, 0.95), 1),
        "first_page_p50_ms": round(pct(first, 0.5), 1), "first_page_p95_ms": round(pct(first, 0.95), 1),
        "server_peak_rss_mb": round(peak, 1), "errors": len(report.errors), "wall_s": round(wall, 1),
        "cpu_cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d"),
    }
    print(json.dumps(summary, indent=2))
    for e in report.errors[:10]:
        print("error:", e)
    return 0 if not report.errors else 1


if __name__ == "__main__":
    sys.exit(main())
