"""Load test: N simulated students against a real `streamlit run app.py`, on loopback only.

Each simulated student speaks Streamlit's own websocket protocol (the BackMsg/ForwardMsg protobufs the
browser sends), so thirty sessions cost the client machine little and the server sees real sessions:
it opens the app, goes to Train, presses Start, watches its run (answering the fragment's auto-reruns
like a browser does), then goes to Explore and moves a latent slider several times, timing each rerun
(request sent -> script finished, i.e. server time plus loopback). Then it closes its tab.

Bounded: every session stops at --duration seconds, and the server started here is killed at the end.

    .venv/bin/python bench/load_test.py --sessions 30 --duration 150

Soak mode ("an hour of use", compressed): for --soak seconds, --sessions tabs stay open at once, each
one a student who comes and goes: it opens Home, then does one thing — starts a training and watches
it, watches another student's run by its read-only link (?run=<id>), moves sliders on Explore, or
uploads a checkpoint on Explore (a shipped one, or now and then a corrupt file, which must be refused
with a message) — closes its tab, and a new student takes its place. The server's memory and thread
count are sampled every --sample-every seconds; the report gives them per minute, the memory growth
over the second half, the errors (exceptions shown on a page, error messages nobody expected, failed
requests, tracebacks in the server's log), the slider latencies and how often each thing was done.

    .venv/bin/python bench/load_test.py --soak 600 --sessions 30
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import websockets
from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.Common_pb2 import FileUploaderState
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
        self.error_alerts: list[str] = []        # st.error bodies shown in this tab, all reruns together
        self.session_id = ""                     # the server's id for this tab: upload URLs carry it
        self.file_urls: dict[str, object] = {}   # file_urls_request id -> FileURLsResponse
        self.file_urls_arrived = asyncio.Event()
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
        if kind == "new_session":
            self.session_id = msg.new_session.initialize.session_id or self.session_id
        elif kind == "file_urls_response":
            self.file_urls[msg.file_urls_response.response_id] = msg.file_urls_response
            self.file_urls_arrived.set()
        elif kind == "navigation":
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
                if etype == "alert" and element.alert.format == Alert.ERROR:
                    self.error_alerts.append(element.alert.body)
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
            if isinstance(value, FileUploaderState):
                w.file_uploader_state_value.CopyFrom(value)
            elif isinstance(value, bool):
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
                    auto: bool = True, timeout: float = 60.0, query: str = "") -> float:
        """Sends a rerun like the browser does and waits for script_finished; returns seconds. With
        `page`, opens that page at the address's ?`query` (e.g. "run=<id>")."""
        if page is not None:
            self.page_hash = self.pages.get(page, self.page_hash)
            self.query_string = query
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

    async def upload(self, uploader: Widget, name: str, data: bytes, http_url: str, xsrf: str,
                     timeout: float = 60.0) -> float:
        """Puts a file in a file_uploader as the browser does: asks the server for an upload URL over the
        websocket, PUTs the file there (multipart, with the XSRF cookie and header), then reruns with the
        widget's state naming the file. Returns seconds for the rerun."""
        request = BackMsg()
        request.file_urls_request.request_id = uuid.uuid4().hex
        request.file_urls_request.file_names.append(name)
        request.file_urls_request.session_id = self.session_id
        await self.ws.send(request.SerializeToString())
        request_id = request.file_urls_request.request_id
        async with asyncio.timeout(timeout):
            while request_id not in self.file_urls:
                self.file_urls_arrived.clear()
                await self.file_urls_arrived.wait()
        response = self.file_urls.pop(request_id)
        if response.error_msg or not response.file_urls:
            raise RuntimeError(f"no upload URL for {name}: {response.error_msg}")
        urls = response.file_urls[0]
        await asyncio.to_thread(put_file, http_url + urls.upload_url, name, data, xsrf, timeout)
        state = FileUploaderState()
        info = state.uploaded_file_info.add()
        info.file_id, info.name, info.size = urls.file_id, name, len(data)
        info.file_urls.CopyFrom(urls)
        self.states[uploader.id] = state
        return await self.rerun(timeout=timeout)


def put_file(url: str, name: str, data: bytes, xsrf: str, timeout: float) -> None:
    """The browser's upload: a multipart form with one part named after the file, by PUT."""
    boundary = uuid.uuid4().hex
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{name}"\r\n'
            f'Content-Type: application/octet-stream\r\n\r\n').encode() + data + f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    if xsrf:
        headers.update({"X-Xsrftoken": xsrf, "Cookie": f"_streamlit_xsrf={xsrf}"})
    request = urllib.request.Request(url, data=body, method="PUT", headers=headers)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if response.status >= 300:
            raise RuntimeError(f"upload of {name} answered HTTP {response.status}")


def xsrf_cookie(http_url: str) -> str:
    """The XSRF cookie a browser gets with its first request (Streamlit sets it on the health check)."""
    with urllib.request.urlopen(f"{http_url}/_stcore/health", timeout=10) as response:
        for header in response.headers.get_all("Set-Cookie") or []:
            m = re.match(r"_streamlit_xsrf=([^;]+)", header)
            if m:
                return m.group(1)
    return ""


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
    await move_slider(s, slider, args.moves, report, deadline)
    if s.exceptions:
        raise RuntimeError(f"page raised {s.exceptions[0]}")


async def move_slider(s: StreamlitSession, slider: Widget, moves: int, report: Report, deadline: float,
                      pause=lambda: 0.2):
    low, high = slider.proto.min, slider.proto.max
    for k in range(moves):
        if time.monotonic() > deadline:
            break
        value = low + (high - low) * ((k * 0.37) % 1.0)
        if slider.proto.step >= 1:               # an integer slider (Step, Frames) takes whole values
            value = round(value)
        s.states[slider.id] = [float(value)]
        # like the browser: a widget inside a fragment reruns only that fragment
        report.slider_latencies.append(await s.rerun(fragment=slider.fragment, auto=False))
        for t in s.texts:                        # the page reports its own script time for the update
            m = re.search(r"Server time for this update: ([\d.]+) ms", t)
            if m:
                report.slider_server_ms.append(float(m.group(1)))
        await asyncio.sleep(pause())


async def watch(s: StreamlitSession, until: float) -> bool:
    """Answers the page's fragment auto-reruns as a browser does until `until`; whether the page
    showed a queue position meanwhile."""
    queued = False
    while time.monotonic() < until:
        interval = min(s.auto_reruns.values(), default=1.0) or 1.0
        await asyncio.sleep(interval)
        for fragment in list(s.auto_reruns):
            await s.rerun(fragment=fragment)
        queued = queued or any(re.search(r"queue|position", t, re.I) for t in s.texts)
    return queued


def read_job_counts(s: StreamlitSession, report: Report) -> tuple[int, int] | None:
    """(running, queued) from the sidebar, which a full rerun draws."""
    for t in s.texts:
        m = re.search(r"(\d+) running · (\d+) queued", t)
        if m:
            running, queued = int(m.group(1)), int(m.group(2))
            report.max_running = max(report.max_running, running)
            report.max_queued = max(report.max_queued, queued)
            return running, queued
    return None


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
        queued = await watch(s, min(deadline, time.monotonic() + args.watch))
        await s.rerun()                          # a full rerun, as a refresh would: the sidebar counts jobs
        read_job_counts(s, report)
        report.queued_seen += queued
        await explore(s, args, report, deadline)
    except Exception as exc:
        report.errors.append(f"session {i}: {type(exc).__name__}: {exc}"[:300])
    finally:
        await s.close()


def proc_status_total(pid: int, key: str) -> int:
    """A /proc/<pid>/status field (VmRSS: in kB, Threads:) summed over a process and its children."""
    total = 0
    for p in [pid] + [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith(key):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MB."""
    return proc_status_total(pid, "VmRSS:") / 1024


def stop_server(server: subprocess.Popen) -> None:
    """SIGTERM to the server's process group; SIGKILL if it is still there 10 s later."""
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(10)


def start_server(port: int, env: dict, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) -> subprocess.Popen:
    """`streamlit run app.py` on 127.0.0.1:`port` in its own process group, once it answers its health check."""
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=REPO, env=env, stdout=stdout, stderr=stderr, start_new_session=True)
    for _ in range(120):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=1)
            return server
        except OSError:
            time.sleep(0.5)
    server.kill()
    sys.exit("server did not start")


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


# ---- soak mode: students come and go ------------------------------------------------------------------
ACTIONS = {"train": 2, "watch": 3, "explore": 3, "upload": 2}     # how often a student picks each, relatively
CORRUPT_SHARE = 0.25          # of uploads: a corrupt file instead of a checkpoint


@dataclass
class Soak:
    """What the soak mode tallies beside Report's latencies and errors."""
    shipped: list                                      # checkpoint files students upload
    actions: Counter = field(default_factory=Counter)
    tabs_opened: int = 0
    tabs_open: int = 0
    run_ids: list = field(default_factory=list)        # runs students started: others open them by link
    jobs: tuple = (0, 0)                               # (running, queued) as a sidebar last drew them
    samples: list = field(default_factory=list)        # (s into the soak, server MB, threads, tabs open, jobs, errors)


async def soak_train(s: StreamlitSession, args, report: Report, soak: Soak, rng: random.Random, deadline: float):
    await s.rerun(page=args.train_page)
    start = s.find("button", args.start_label)
    if start is None:
        raise RuntimeError(f"no '{args.start_label}' button on {args.train_page}: {[w.label for w in s.widgets.values()]}")
    await s.rerun(trigger=start.id)
    run_id = urllib.parse.parse_qs(s.query_string).get("run", [""])[0]
    if not run_id:
        raise RuntimeError(f"Start gave no run: {s.error_alerts[-1:] or s.texts[:3]}")
    report.started_jobs += 1
    soak.run_ids.append(run_id)
    # awaited first: `report.x += await …` would add to the value read before the wait, losing other students' counts
    queued = await watch(s, min(deadline, time.monotonic() + rng.uniform(args.watch / 2, args.watch * 2)))
    report.queued_seen += queued
    return "train"


async def soak_watch(s: StreamlitSession, args, report: Report, soak: Soak, rng: random.Random, deadline: float):
    run_id = rng.choice(soak.run_ids[-10:])          # a recent run, as a link shared in class would be
    await s.rerun(page=args.train_page, query=f"run={run_id}")
    if any("no longer on this server" in t for t in s.texts):
        return "watch_gone"                          # forgotten (the registry keeps a bounded number): said so
    if not any("read-only" in t for t in s.texts) or s.find("button", "Stop") or s.find("button", "Pause"):
        raise RuntimeError(f"run {run_id} by its read-only link is not read-only: {[w.label for w in s.widgets.values()]}")
    await watch(s, min(deadline, time.monotonic() + rng.uniform(args.watch / 2, args.watch * 2)))
    return "watch"


async def soak_explore(s: StreamlitSession, args, report: Report, soak: Soak, rng: random.Random, deadline: float):
    await s.rerun(page=args.explore_page)
    slider = s.find("slider", args.slider_label)
    if slider is None:
        raise RuntimeError(f"no slider labelled '{args.slider_label}' on {args.explore_page}: "
                           f"{[(w.kind, w.label) for w in s.widgets.values()]}")
    await move_slider(s, slider, rng.randint(max(1, args.moves // 2), args.moves), report, deadline,
                      pause=lambda: rng.uniform(0.5, 2.0))
    return "explore"


async def soak_upload(s: StreamlitSession, args, report: Report, soak: Soak, rng: random.Random, deadline: float):
    await s.rerun(page=args.explore_page)
    source = s.find("radio", "Model")
    if source is None:
        raise RuntimeError(f"no model source radio on {args.explore_page}")
    s.states[source.id] = "Upload a checkpoint"
    await s.rerun()
    uploader = next((w for w in s.widgets.values() if w.kind == "file_uploader"), None)
    if uploader is None:
        raise RuntimeError(f"no file uploader on {args.explore_page}: {[(w.kind, w.label) for w in s.widgets.values()]}")
    path = rng.choice(soak.shipped)
    data, name = path.read_bytes(), path.name
    corrupt = rng.random() < CORRUPT_SHARE
    if corrupt:                                      # a download cut short, or not a checkpoint at all
        data = data[:len(data) // 2] if rng.random() < 0.5 else rng.randbytes(4096)
        name = f"corrupt-{name}"                     # still .pt: the browser only offers .pt files
    seen = len(s.error_alerts)
    # the page is redrawn for another model: the widgets of the first one (and their fragments) are gone,
    # and the server answers nothing at all to a rerun of a fragment that is gone
    s.widgets.clear()
    await s.upload(uploader, name, data, args.http_url, args.xsrf)
    refused = [a for a in s.error_alerts[seen:] if "can't be used" in a]
    if corrupt:
        if not refused:
            raise RuntimeError(f"the corrupt upload {name} was not refused with a message: {s.texts[:3]}")
        del s.error_alerts[seen:]                    # the message the page owes a corrupt file: not an error
        return "upload_corrupt"
    if refused or not any("latent size" in t for t in s.texts):
        raise RuntimeError(f"the upload of {name} did not open: {refused or s.texts[:3]}")
    slider = s.find("slider", args.slider_label) or next(
        (w for w in s.widgets.values() if w.kind == "slider" and w.fragment), None)
    if slider is not None:
        await move_slider(s, slider, 3, report, deadline, pause=lambda: rng.uniform(0.5, 2.0))
    return "upload"


SOAK_ACTIONS = {"train": soak_train, "watch": soak_watch, "explore": soak_explore, "upload": soak_upload}


async def soak_student(i: int, args, report: Report, soak: Soak, deadline: float):
    """One seat in the room: a student after another, each in a new tab, until the deadline."""
    rng = random.Random(i)                           # the same sequence of choices on every soak
    await asyncio.sleep(i * args.ramp / max(1, args.sessions))
    while time.monotonic() < deadline - 5:
        action = rng.choices(list(ACTIONS), weights=list(ACTIONS.values()))[0]
        if action == "watch" and not soak.run_ids:
            action = "explore"
        soak.tabs_opened += 1
        tab = soak.tabs_opened
        s = StreamlitSession(args.ws_url)
        soak.tabs_open += 1
        try:
            await s.connect()
            report.first_page_latencies.append(await s.rerun(page=None))
            report.served += 1
            soak.jobs = read_job_counts(s, report) or soak.jobs
            done = await SOAK_ACTIONS[action](s, args, report, soak, rng, deadline)
            if s.exceptions:
                raise RuntimeError(f"page raised {s.exceptions[0]}")
            if s.error_alerts:
                raise RuntimeError(f"page showed an error: {s.error_alerts[0]}")
            soak.actions[done] += 1
        except Exception as exc:
            report.errors.append(f"tab {tab} ({action}): {type(exc).__name__}: {exc or 'no answer in time'}"[:300])
        finally:
            soak.tabs_open -= 1
            await s.close()
        await asyncio.sleep(rng.uniform(1.0, 5.0))   # the seat is empty a moment before the next student


async def soak_async(args, server_pid: int | None):
    report = Report()
    soak = Soak(shipped=[p for p in sorted((REPO / "checkpoints").glob("*.pt")) if p.stem != "mnist_classifier"])
    t0 = time.monotonic()
    deadline = t0 + args.soak

    async def sample_server():
        k = 0
        while server_pid and t0 + k * args.sample_every <= deadline:
            await asyncio.sleep(max(0.0, t0 + k * args.sample_every - time.monotonic()))
            soak.samples.append((time.monotonic() - t0, rss_mb(server_pid), proc_status_total(server_pid, "Threads:"),
                                 soak.tabs_open, soak.jobs, len(report.errors)))
            k += 1

    sampler = asyncio.create_task(sample_server())
    students = [asyncio.create_task(soak_student(i, args, report, soak, deadline)) for i in range(args.sessions)]
    # a hard end: a rerun that never finishes cannot keep the soak going
    done, pending = await asyncio.wait(students, timeout=args.soak + 90)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    if pending:
        report.errors.append(f"{len(pending)} students still busy 90 s after the end: cancelled")
    report.errors += [f"student: {type(t.exception()).__name__}: {t.exception()}"[:300]
                      for t in done if t.exception() is not None]
    await sampler
    return report, soak, time.monotonic() - t0


def soak_summary(args, report: Report, soak: Soak, wall: float, log_errors: list) -> tuple[dict, str]:
    """The JSON summary and a markdown table of the server over time (one row a minute)."""
    lat = [x * 1000 for x in report.slider_latencies]
    first = [x * 1000 for x in report.first_page_latencies]
    samples = soak.samples
    summary = {
        "mode": "soak", "soak_s": args.soak, "sessions": args.sessions, "tabs_opened": soak.tabs_opened,
        "served": report.served, "actions": dict(sorted(soak.actions.items())), "jobs_started": report.started_jobs,
        "saw_queue_position": report.queued_seen,
        "max_jobs_running": report.max_running, "max_jobs_queued": report.max_queued,
        "slider_updates": len(lat),
        "slider_server_p50_ms": round(pct(report.slider_server_ms, 0.5), 1),
        "slider_server_p95_ms": round(pct(report.slider_server_ms, 0.95), 1),
        "slider_round_trip_p50_ms": round(pct(lat, 0.5), 1), "slider_round_trip_p95_ms": round(pct(lat, 0.95), 1),
        "first_page_p50_ms": round(pct(first, 0.5), 1), "first_page_p95_ms": round(pct(first, 0.95), 1),
    }
    rows = []
    if samples:
        mid = min(samples, key=lambda x: abs(x[0] - args.soak / 2))
        last = samples[-1]
        second = [x for x in samples if x[0] >= mid[0]]
        # least squares over the second half: a steady leak shows as a slope even when the two ends are noisy
        mt = sum(x[0] for x in second) / len(second)
        mr = sum(x[1] for x in second) / len(second)
        var = sum((x[0] - mt) ** 2 for x in second)
        slope = sum((x[0] - mt) * (x[1] - mr) for x in second) / var * 60 if var else 0.0
        summary.update({
            "server_rss_start_mb": round(samples[0][1], 1), "server_rss_mid_mb": round(mid[1], 1),
            "server_rss_end_mb": round(last[1], 1), "server_rss_peak_mb": round(max(x[1] for x in samples), 1),
            "rss_growth_second_half_pct": round((last[1] - mid[1]) / mid[1] * 100, 2),
            "rss_slope_second_half_mb_per_min": round(slope, 2),
            "server_threads_start": samples[0][2], "server_threads_mid": mid[2], "server_threads_end": last[2],
            "server_threads_max": max(x[2] for x in samples), "samples": len(samples),
        })
        for minute in range(int(args.soak // 60) + 1):
            t, rss, threads, tabs, (running, queued), errors = min(samples, key=lambda x: abs(x[0] - minute * 60))
            rows.append({"minute": minute, "rss_mb": round(rss, 1), "threads": threads, "tabs_open": tabs,
                         "running": running, "queued": queued, "errors": errors})
    summary.update({
        "errors": len(report.errors) + len(log_errors), "page_errors": len(report.errors),
        "server_log_tracebacks": len(log_errors), "timeline": rows,
        "wall_s": round(wall, 1), "cpu_cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d"),
    })
    table = ["| minute | server memory (MB) | threads | tabs open | trainings running / queued | errors so far |",
             "|---|---|---|---|---|---|"]
    table += [f"| {r['minute']} | {r['rss_mb']:,.0f} | {r['threads']} | {r['tabs_open']} | {r['running']} / {r['queued']} "
              f"| {r['errors']} |" for r in rows]
    return summary, "\n".join(table)


def server_log_errors(path: Path) -> list[str]:
    """The last line of every traceback in the server's log: exceptions no page showed."""
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    found = []
    for k, line in enumerate(lines):
        if line.startswith("Traceback"):
            tail = next((x for x in lines[k + 1:] if x and not x.startswith((" ", "Traceback"))), "?")
            found.append(tail[:300])
    return found


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
    p.add_argument("--soak", type=float, default=0,
                   help="soak mode: students come and go for this many seconds (--duration is then unused)")
    p.add_argument("--sample-every", type=float, default=5, help="soak mode: seconds between samples of the server")
    args = p.parse_args()

    server = None
    url = args.url
    log_path = runs_tmp = None
    if url is None:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        if args.soak and not os.environ.get("AIGC_RUNS_DIR"):
            # a fresh runs folder: runs saved by an earlier soak would be read back and weigh on this one
            runs_tmp = tempfile.mkdtemp(prefix="aigc-soak-runs-")
        env = {**os.environ, "AIGC_RUNS_DIR": runs_tmp or os.environ.get("AIGC_RUNS_DIR", "/tmp/aigc-load-runs")}
        if args.max_jobs:
            env["AIGC_MAX_JOBS"] = str(args.max_jobs)
        log = subprocess.DEVNULL
        if args.soak:                            # its tracebacks count as errors
            log_path = Path(tempfile.mkstemp(prefix="aigc-soak-server-", suffix=".log")[1])
            log = log_path.open("wb")
        server = start_server(port, env, stdout=log, stderr=subprocess.STDOUT if args.soak else subprocess.DEVNULL)
    host = url.split("://", 1)[1].rstrip("/")
    if not host.startswith(("127.", "localhost", "[::1]")):
        sys.exit("this load test only targets loopback addresses")
    args.ws_url = f"ws://{host}/_stcore/stream"
    args.http_url = f"http://{host}"
    if args.soak:
        try:
            args.xsrf = xsrf_cookie(args.http_url)
            report, soak, wall = asyncio.run(soak_async(args, server.pid if server else None))
        finally:
            if server:
                stop_server(server)
            if runs_tmp:
                shutil.rmtree(runs_tmp, ignore_errors=True)
        log_errors = server_log_errors(log_path) if log_path else []
        summary, table = soak_summary(args, report, soak, wall, log_errors)
        if log_path:
            summary["server_log"] = str(log_path)
        print(json.dumps(summary, indent=2))
        print(table)
        for e in (report.errors + [f"server log: {e}" for e in log_errors])[:20]:
            print("error:", e)
        return 0 if summary["errors"] == 0 else 1
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
