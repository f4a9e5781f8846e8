"""The server-wide registry of training runs: ids, a cap on concurrent jobs, a queue, bounded memory.

One RunRegistry lives per server process (the app wraps it in st.cache_resource), so a run belongs to
no browser session: a refreshed tab finds it again by id, and any number of viewers can watch it at
the compute cost of one. Worker threads never touch Streamlit; they write into the Run under its lock,
and pages read copies (Run.view()) on their own schedule.

Memory stays bounded: a run no one has looked at for `idle_timeout` seconds is stopped (its weights are
kept), finished runs keep their final weights only (with a runs folder, mapped from their saved state
instead of held in memory), sample snapshots are thinned to at most `max_snapshots`, and at most
`max_runs` runs are remembered.

A run can be branched (the time machine): its full training state is kept at up to `max_branch_points`
of its snapshots, within `branch_memory` bytes per run and `branch_memory_total` for all ended runs
(the oldest ended runs give theirs up first; they are not written to disk), and branch() starts a new run
from one of them with the settings a person changes. A branch with unchanged settings takes exactly the
steps its parent took. Runs branched from one another form a family (Run.family, the first run's id).

While a run trains, the classifier reads its samples at each snapshot (aigc.monitor) and the coach
(aigc.coach) says what is going wrong; its remedies change the running run's settings (change()).

A restart loses little: with a runs folder, a training run writes its whole state (weights, optimizers,
history, snapshots) to <runs folder>/state/<id>.pt after every `state_every` seconds of training and when it
ends, within `state_quota` bytes for all of them. A new registry reads them back: watch links and ended
runs work as before, and a run the restart interrupted is resumed by whoever holds its key.
"""
from __future__ import annotations

import hashlib
import math
import os
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from .checkpoint import CheckpointError, checkpoint_bytes, read_checkpoint, save_checkpoint
from .coach import Measured, diagnose
from .device import configure_threads, pick_device, release_freed_memory
from .images import to_uint8
from .models import MODELS, check_base
from .monitor import SampleMonitor
from .trainer import Status, TrainConfig, Trainer, check_changes

READING_KEYS = ("step", "shares", "confidence", "coverage", "digits_ok", "precision", "recall")


# The class's read-only tabs share a budget of polls: each page poll costs the server's cores some ms of
# Python (the page script, then the event loop sending it) that the run it shows would otherwise use
# (bench/audience.py, with py-spy on the server). Alone a watcher polls every second; with more of them each
# one polls less often, so that all of them together poll about WATCH_POLLS_PER_S times a second.
WATCH_POLLS_PER_S = 8
WATCHER_TTL = 10.0          # seconds a watcher counts after its last poll (longer than the slowest poll)


def watch_interval(watchers: int) -> int:
    """Seconds between a read-only tab's polls when `watchers` tabs watch a run: 1 for up to
    WATCH_POLLS_PER_S of them, then 1 more second for each further WATCH_POLLS_PER_S (30 watchers: 4 s)."""
    return max(1, math.ceil(watchers / WATCH_POLLS_PER_S))


def default_max_jobs() -> int:
    """AIGC_MAX_JOBS, else 4 on a GPU and one job per 2 CPU cores (a second job on 2 cores halves both)."""
    if os.environ.get("AIGC_MAX_JOBS"):
        return max(1, int(os.environ["AIGC_MAX_JOBS"]))
    if pick_device().type != "cpu":
        return 4
    return max(1, (os.cpu_count() or 2) // 2)


@dataclass
class RunView:
    """A consistent copy of a run's state, safe to draw without holding any lock."""
    id: str
    model: str
    status: Status
    message: str
    step: int
    target_step: int
    history: dict
    last_log: dict
    grid: np.ndarray | None                  # (n, 28, 28) uint8, latest samples
    snapshot_steps: list
    queue_position: int                      # 1 = next to start; 0 = not queued
    expected_wait_s: float
    created: float
    config: dict
    has_weights: bool
    family: str = ""                         # the id of the first run of its branches
    parent: str | None = None                # branched from this run...
    branch_step: int | None = None           # ...at this step
    events: list = field(default_factory=list)          # settings changes: {"step", "text"}
    readings: dict = field(default_factory=dict)        # the classifier's readings of its samples (READING_KEYS)
    diagnoses: list = field(default_factory=list)       # the coach's, now
    live_settings: tuple = ()                # what may change while it trains, with the values now
    update_phases: dict = field(default_factory=dict)   # slow motion: its parts that update alone
    branch_steps: list = field(default_factory=list)    # steps it can be branched from
    pause_on_warning: bool = False           # the coach pauses it when a new warning appears...
    paused_for: str = ""                     # ...and this is the warning it paused it for

    @property
    def active(self) -> bool:
        return self.status.active

    @property
    def marks(self) -> tuple:
        """Its events as (step, text) pairs, for the charts' dashed lines (hashable: a cache key)."""
        return tuple((e["step"], e["text"]) for e in self.events)


@dataclass
class BranchPoint:
    """A run's whole training state at one snapshot (Trainer.state()), and the grid it drew there."""
    step: int
    grid: np.ndarray                         # (n, 28, 28) uint8
    state: dict
    nbytes: int = 0

    def __post_init__(self):
        self.nbytes = self.nbytes or _tensor_bytes(self.state)


def thinned(items: list, limit: int) -> list:
    """Every other item dropped until at most `limit` are left, the first and the newest always kept: what
    remains stays spread evenly over the whole run."""
    while len(items) > limit:
        items = items[:-1:2] + [items[-1]]
    return items


def _tensor_bytes(obj) -> int:
    if isinstance(obj, torch.Tensor):
        return obj.untyped_storage().nbytes()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


def key_digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


@dataclass(eq=False)
class Run:
    id: str
    config: TrainConfig
    key: str                                 # whoever holds it may control the run; viewers without it watch
    key_sha256: bytes = b""                  # what is kept of the key, on disk too ("" for a run read back)
    owner: str | None = None                 # the browser session that queued it: one queue place each
    init_checkpoint: dict | None = None      # continued from this checkpoint
    base_checkpoint: dict | None = None      # built on this one (a model with a base_model)
    created: float = field(default_factory=time.time)
    status: Status = Status.QUEUED
    message: str = ""
    step: int = 0
    target_step: int = 0
    history: dict = field(default_factory=dict)
    last_log: dict = field(default_factory=dict)
    grid: np.ndarray | None = None
    snapshots: list = field(default_factory=list)          # [(step, (n, 28, 28) uint8)]
    final_checkpoint: dict | None = None
    last_seen: float = field(default_factory=time.monotonic)
    watchers: dict = field(default_factory=dict)           # {read-only tab: when it last polled}
    trainer: Trainer | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    max_snapshots: int = 48
    worker: threading.Thread | None = None                 # the thread that trains it
    stop_requested: threading.Event = field(default_factory=threading.Event)
    state_seconds: float = 0.0                             # its trainer's training time at its last saved state
    family: str = ""                                       # the first run's id ("": this run's own)
    parent: str | None = None
    branch_step: int | None = None
    branch_changes: dict = field(default_factory=dict)     # settings its branch changes, applied as it starts
    branch_points: list = field(default_factory=list)      # [BranchPoint], oldest first
    max_branch_points: int = 16
    branch_memory: int = 96 * 2**20
    events: list = field(default_factory=list)
    readings: dict = field(default_factory=lambda: {k: [] for k in READING_KEYS})
    diagnoses: list = field(default_factory=list)
    live_settings: tuple = ()
    monitor: SampleMonitor | None = None
    pause_on_warning: bool = False
    pause_on: tuple = ()                                   # ...only these kinds of warning (a lesson's); () = any
    paused_for: str = ""
    paused_on: set = field(default_factory=set)            # the kinds it has paused for

    def __post_init__(self):
        self.key_sha256 = self.key_sha256 or key_digest(self.key)
        self.family = self.family or self.id

    def opens_with(self, key: str) -> bool:
        """Whether `key` controls this run. In constant time: how long a wrong key takes to refuse says
        nothing about how much of it was right."""
        return secrets.compare_digest(key_digest(key), self.key_sha256)

    def view(self, queue_position: int = 0, expected_wait_s: float = 0.0) -> RunView:
        with self.lock:
            return RunView(
                id=self.id, model=self.config.model, status=self.status, message=self.message,
                step=self.step, target_step=self.target_step,
                history={k: list(v) for k, v in self.history.items()},
                last_log=dict(self.last_log), grid=self.grid,
                snapshot_steps=[s for s, _ in self.snapshots],
                queue_position=queue_position, expected_wait_s=expected_wait_s,
                created=self.created, config=self.config.to_dict(),
                has_weights=self.final_checkpoint is not None or self.trainer is not None,
                family=self.family, parent=self.parent, branch_step=self.branch_step,
                events=list(self.events), readings={k: list(v) for k, v in self.readings.items()},
                diagnoses=list(self.diagnoses), live_settings=self.live_settings,
                update_phases=dict(MODELS[self.config.model][1].update_phases) if self.trainer is not None else {},
                branch_steps=[p.step for p in self.branch_points],
                pause_on_warning=self.pause_on_warning, paused_for=self.paused_for,
            )

    def branch_point(self, step: int) -> "BranchPoint":
        with self.lock:
            point = next((p for p in self.branch_points if p.step == step), None)
        if point is None:
            raise ValueError(f"run {self.id} keeps no state at step {step:,} to branch from; it keeps "
                             f"{', '.join(f'{p.step:,}' for p in self.branch_points) or 'none'}")
        return point

    def snapshot(self, index: int) -> tuple[int, np.ndarray]:
        with self.lock:
            return self.snapshots[index]

    def set_status(self, status: Status, message: str = "") -> None:
        """The one writer of a run's status: its trainer reports through here ('on_status'), the registry
        for the states a run has without one. A message already given (why it was stopped) is kept."""
        with self.lock:
            self.status = status
            self.message = self.message or message

    # ---- trainer callbacks (worker thread) -------------------------------------------------------
    def _on_log(self, trainer: Trainer) -> None:
        live_settings = trainer.live_settings()
        measured = Measured(self.config.model, trainer.step, trainer.target_step, trainer.history,
                            self.readings, trainer.events, {s.name: s.default for s in live_settings})
        diagnoses = diagnose(measured)
        new = [d for d in diagnoses if d.severity == "warning" and d.kind not in self.paused_on
               and (not self.pause_on or d.kind in self.pause_on)]
        if new and self.pause_on_warning and not trainer.paused:
            trainer.pause()              # a class gets time to read the warning and apply the remedy
            self.paused_for = new[0].title
            self.paused_on.add(new[0].kind)      # once per kind: a remedy that needs time is not paused again
        with self.lock:
            self.step = trainer.step
            self.last_log = dict(trainer.last_log)
            self.history = {k: list(v) for k, v in trainer.history.items()}
            self.events = [dict(e) for e in trainer.events]
            self.live_settings = live_settings
            self.diagnoses = diagnoses
            self.config = trainer.config

    def _on_samples(self, trainer: Trainer) -> None:
        pixels = to_uint8(trainer.samples)
        if self.monitor is not None:
            reading = self.monitor.measure(trainer.model, trainer.samples)
            with self.lock:
                if self.readings["step"] and self.readings["step"][-1] == trainer.step:
                    for values in self.readings.values():
                        values.pop()
                self.readings["step"].append(trainer.step)
                for key in READING_KEYS[1:]:
                    self.readings[key].append(reading[key])
        if not trainer.status.went_wrong:
            self._keep_branch_point(trainer, pixels)
        with self.lock:
            self.grid = pixels
            self.step = trainer.step
            if self.snapshots and self.snapshots[-1][0] == trainer.step:
                self.snapshots[-1] = (trainer.step, pixels)      # redrawn at the same step (VAE's fitted prior)
            else:
                self.snapshots.append((trainer.step, pixels))
            self.snapshots = thinned(self.snapshots, self.max_snapshots)   # the replay spans the whole run

    def _keep_branch_point(self, trainer: Trainer, pixels: np.ndarray) -> None:
        """The trainer's whole state at this snapshot, thinned evenly (keeping the first and the newest) to
        max_branch_points and to branch_memory bytes."""
        point = BranchPoint(trainer.step, pixels, trainer.state())
        with self.lock:
            points = [p for p in self.branch_points if p.step != point.step] + [point]
            limit = max(2, min(self.max_branch_points, self.branch_memory // max(1, point.nbytes)))
            self.branch_points = thinned(points, limit)

    def branch_bytes(self) -> int:
        with self.lock:
            return sum(p.nbytes for p in self.branch_points)

    def _on_status(self, trainer: Trainer) -> None:
        if trainer.status.active:   # the final status is set once the final weights are stored (RunRegistry._work)
            self.set_status(trainer.status, trainer.message)

    def checkpoint(self) -> dict:
        """The run's weights now (mid-run: the trainer's current ones), as a checkpoint dict."""
        with self.lock:
            trainer, final = self.trainer, self.final_checkpoint
        if final is not None:
            return final
        if trainer is None:
            raise CheckpointError(f"run {self.id} has no weights yet: it has not started")
        return trainer.checkpoint(extra={"run_id": self.id})

    def checkpoint_bytes(self) -> bytes:
        return checkpoint_bytes(self.checkpoint())


class RunRegistry:
    def __init__(self, max_jobs: int | None = None, max_queue: int = 64, max_runs: int = 200,
                 idle_timeout: float = 90.0, runs_dir: str | os.PathLike | None = None,
                 max_snapshots: int = 48, clock=time.monotonic, janitor_interval: float = 0.0,
                 state_every: float = 30.0, state_quota: int = 2**30, threads: int | None = None,
                 max_branch_points: int = 16, branch_memory: int = 96 * 2**20, branch_memory_total: int = 256 * 2**20,
                 monitor: bool = True):
        self.max_jobs = max_jobs or default_max_jobs()
        self.max_branch_points = max_branch_points
        self.branch_memory = branch_memory
        self.branch_memory_total = branch_memory_total
        self.monitor = monitor          # the classifier reads each run's samples at every snapshot
        self.threads = threads          # torch threads each training thread sets for itself; None: as they are
        self.max_queue = max_queue
        self.max_runs = max_runs
        self.idle_timeout = idle_timeout
        self.runs_dir = Path(runs_dir) if runs_dir else None
        self.state_dir = self.runs_dir / "state" if self.runs_dir else None
        self.state_every = state_every
        self.state_quota = state_quota
        self.max_snapshots = max_snapshots
        self.clock = clock
        self._runs: dict[str, Run] = {}
        self._queue: deque[Run] = deque()
        self._running: set[Run] = set()
        self._lock = threading.RLock()
        self._recent_durations: deque[float] = deque([30.0], maxlen=20)   # seconds per finished job
        self._read_back = threading.Event()          # set once the runs a previous server saved are read
        self._closing = threading.Event()            # set by close(): no new trainings, states kept resumable
        if self.state_dir is not None:
            threading.Thread(target=self._read_states, name="aigc-read-states", daemon=True).start()
        else:
            self._read_back.set()
        if janitor_interval > 0:
            threading.Thread(target=self._janitor, args=(janitor_interval,), name="aigc-janitor", daemon=True).start()

    def _janitor(self, interval: float) -> None:
        while True:
            time.sleep(interval)
            try:
                self.reap()
            except Exception:  # never let housekeeping kill the thread
                pass

    # ---- submitting and finding runs -----------------------------------------------------------
    def submit(self, config: TrainConfig, init_checkpoint: dict | None = None,
               base_checkpoint: dict | None = None, owner: str | None = None, pause_on_warning: bool = False,
               pause_on: tuple = ()) -> Run:
        """Validates, then starts the run or queues it; raises ValueError (bad settings) or RuntimeError (no
        place in the queue) with a readable message. An `owner` (a browser session) holds at most one place
        in the queue, so one person pressing Start again and again cannot lock the others out. With
        `pause_on_warning` the coach pauses the run whenever a new warning appears (one of `pause_on`, if
        given)."""
        config.validate()
        if init_checkpoint is not None:
            config.check_continues(init_checkpoint)
        else:
            check_base(config.model, base_checkpoint)
        return self._enqueue(owner, config=config, init_checkpoint=init_checkpoint, base_checkpoint=base_checkpoint,
                             target_step=config.steps, pause_on_warning=pause_on_warning, pause_on=tuple(pause_on))

    def branch(self, run: Run, step: int, changes: dict | None = None, owner: str | None = None) -> Run:
        """A new run from `run`'s state at `step` (one of its branch steps), with the live settings in `changes`
        changed; it trains to the same last step. A run still training is stopped first, keeping its weights:
        the branch takes its place. Raises ValueError for a step it keeps no state at or a bad setting."""
        point = run.branch_point(step)
        changes = dict(changes or {})
        with run.lock:
            settings = {s.name: s for s in run.live_settings}
            history = {k: list(v) for k, v in point.state["history"].items()}
            snapshots = [(s, p) for s, p in run.snapshots if s < step] + [(step, point.grid)]
            readings = {k: [v for s, v in zip(run.readings["step"], values) if s <= step]
                        for k, values in run.readings.items()}
            target = run.target_step
        check_changes(changes, settings)
        config = replace(TrainConfig.from_dict(point.state["train_config"]), steps=max(1, target - step))
        if run.status.active:
            self.stop(run, f"stopped at step {run.step:,} to start its branch from step {step:,}; its weights were kept")
        return self._enqueue(owner, config=config, init_checkpoint=point.state, target_step=target,
                             family=run.family, parent=run.id, branch_step=step, branch_changes=changes,
                             history=history, step=step, snapshots=snapshots, readings=readings,
                             grid=point.grid, events=[dict(e) for e in point.state.get("events", [])],
                             pause_on_warning=run.pause_on_warning, pause_on=run.pause_on)

    def family(self, run: Run) -> list[Run]:
        """The runs branched from one another with `run`, oldest first."""
        with self._lock:
            return sorted((r for r in self._runs.values() if r.family == run.family), key=lambda r: r.created)

    def _enqueue(self, owner: str | None, **fields) -> Run:
        self.reap()
        with self._lock:
            if len(self._queue) >= self.max_queue:
                raise RuntimeError(f"the training queue is full ({self.max_queue} runs waiting); try again in a few minutes")
            waiting = next((i + 1 for i, r in enumerate(self._queue) if owner is not None and r.owner == owner), 0)
            if waiting:
                raise RuntimeError(f"you already have a run waiting in the queue (position {waiting}); cancel it, or "
                                   f"wait until it starts, to queue another")
            run = Run(id=secrets.token_hex(4), key=secrets.token_urlsafe(12), owner=owner,
                      max_snapshots=self.max_snapshots, last_seen=self.clock(),
                      max_branch_points=self.max_branch_points, branch_memory=self.branch_memory, **fields)
            self._runs[run.id] = run
            self._queue.append(run)
            self._forget_old()
            self._start_queued()
        return run

    def get(self, run_id: str | None) -> Run | None:
        """The run with this id; one a previous server saved may take until they are all read back."""
        if not run_id:
            return None
        with self._lock:
            run = self._runs.get(run_id)
        if run is None and not self._read_back.is_set():
            self._read_back.wait()
            with self._lock:
                run = self._runs.get(run_id)
        return run

    def all_runs(self) -> list[Run]:
        self._read_back.wait()
        with self._lock:
            return sorted(self._runs.values(), key=lambda r: r.created)

    def view(self, run: Run) -> RunView:
        with self._lock:
            position = next((i + 1 for i, r in enumerate(self._queue) if r is run), 0)
            wait = self._expected_wait(position)
        return run.view(position, wait)

    def heartbeat(self, run: Run, watcher: str | None = None) -> None:
        """Someone is looking at this run; call it on every poll, with `watcher` naming a read-only tab."""
        run.last_seen = now = self.clock()
        if watcher is not None:
            with run.lock:
                run.watchers[watcher] = now

    def watching(self, run: Run) -> int:
        """How many read-only tabs polled this run in the last WATCHER_TTL seconds (the ones gone are forgotten)."""
        now = self.clock()
        with run.lock:
            for tab in [tab for tab, seen in run.watchers.items() if now - seen > WATCHER_TTL]:
                del run.watchers[tab]
            return len(run.watchers)

    def counts(self) -> dict:
        with self._lock:
            return {"running": len(self._running), "queued": len(self._queue), "runs": len(self._runs),
                    "max_jobs": self.max_jobs}

    def _expected_wait(self, position: int) -> float:
        if position == 0:
            return 0.0
        per_job = sum(self._recent_durations) / len(self._recent_durations)
        rounds = (position - 1) // self.max_jobs + 1
        return rounds * per_job

    # ---- control -------------------------------------------------------------------------------
    def pause(self, run: Run):
        if run.trainer is not None:
            run.trainer.pause()

    def resume(self, run: Run):
        """Resumes a paused run, or queues again one a restart interrupted, from its saved state."""
        run.paused_for = ""
        if run.trainer is not None:
            run.trainer.resume()
            return
        with self._lock:
            if run.status is not Status.INTERRUPTED or run in self._queue:
                return
            with run.lock:
                run.config = replace(run.config, steps=max(1, run.target_step - run.step))
                run.message = ""
            run.stop_requested.clear()
            run.set_status(Status.QUEUED)
            self._queue.append(run)
        self._start_queued()

    def change(self, run: Run, **values) -> None:
        """Changes live settings of a running run at its next step (a coach's remedy); ValueError if it is
        not training or a value is out of range."""
        trainer = run.trainer
        if trainer is None:
            raise ValueError(f"run {run.id} is not training, so its settings cannot change; branch it instead")
        trainer.change(**values)

    def advance(self, run: Run, steps: int = 1, phase: str | None = None) -> None:
        """Slow motion for a paused run: `steps` steps, or one update of one part of it (`phase`)."""
        trainer = run.trainer
        if trainer is None:
            raise ValueError(f"run {run.id} is not training")
        if phase is None:
            trainer.advance(steps)
        else:
            trainer.update_once(phase)

    def stop(self, run: Run, reason: str = "") -> None:
        """Stops a running run (keeping its weights) or cancels a queued one."""
        with self._lock:
            if run in self._queue:
                self._queue.remove(run)
                if run.final_checkpoint is not None:          # a resume called off: it keeps its saved state
                    run.set_status(Status.INTERRUPTED, reason or "its resume was cancelled; it can still resume")
                else:
                    run.set_status(Status.CANCELLED, reason or "cancelled before it started")
                return
        with run.lock:
            if reason:
                run.message = reason
            trainer = run.trainer
        run.stop_requested.set()          # seen by a worker that has not built its trainer yet
        if trainer is not None:
            trainer.stop()

    def save(self, run: Run, path: str | os.PathLike | None = None) -> Path:
        """Writes the run's checkpoint atomically (default: <runs_dir>/<id>.pt)."""
        if path is None:
            if self.runs_dir is None:
                raise CheckpointError("no runs folder is configured to save into")
            path = self.runs_dir / f"{run.config.model}-{run.id}.pt"
        return save_checkpoint(run.checkpoint(), path)

    # ---- housekeeping --------------------------------------------------------------------------
    def reap(self) -> list[Run]:
        """Stops runs nobody has polled for idle_timeout seconds (their tab was closed)."""
        now, reaped = self.clock(), []
        with self._lock:
            candidates = [r for r in self._runs.values() if r.status.active]
        for run in candidates:
            if now - run.last_seen > self.idle_timeout:
                self.stop(run, f"stopped after {self.idle_timeout:.0f} s with no browser watching it; "
                               f"its weights were kept")
                reaped.append(run)
        return reaped

    def _forget_old(self) -> None:
        """Drops the oldest finished runs beyond max_runs (called with the lock held)."""
        done = [r for r in sorted(self._runs.values(), key=lambda r: r.last_seen) if not r.status.active]
        excess = len(self._runs) - self.max_runs
        for run in done[:max(0, excess)]:
            del self._runs[run.id]
            if self.state_dir is not None:
                (self.state_dir / f"{run.id}.pt").unlink(missing_ok=True)

    def _start_queued(self) -> None:
        with self._lock:
            while self._queue and len(self._running) < self.max_jobs and not self._closing.is_set():
                run = self._queue.popleft()
                self._running.add(run)
                run.set_status(Status.RUNNING)
                run.worker = threading.Thread(target=self._work, args=(run,), name=f"aigc-run-{run.id}", daemon=True)
                run.worker.start()

    def close(self, timeout: float = 30.0) -> None:
        """For a server shutting down: stops every training at the end of its step and writes its state as
        it is, so the next server offers it to resume, and waits for the worker threads (one still inside
        torch as the interpreter exits aborts the process)."""
        self._closing.set()
        with self._lock:
            running = list(self._running)
        for run in running:
            run.stop_requested.set()
            if run.trainer is not None:
                run.trainer.stop()
        for run in running:
            if run.worker is not None:
                run.worker.join(timeout)

    def _work(self, run: Run) -> None:
        started = time.monotonic()
        if self.threads:      # OpenMP keeps a count per thread: this one's, whatever a page thread set meanwhile
            configure_threads(self.threads)
        try:
            trainer = Trainer(run.config, init=run.init_checkpoint, base=run.base_checkpoint)
            if run.branch_changes:
                trainer.change(**run.branch_changes)
            if self.monitor and run.monitor is None:
                run.monitor = SampleMonitor()
            with run.lock:
                run.live_settings = trainer.live_settings()
            for event, fn in (("on_log", run._on_log), ("on_samples", run._on_samples), ("on_status", run._on_status),
                              ("on_log", lambda t: self._save_state_every(run, t))):
                trainer.add_callback(event, fn)
            with run.lock:
                run.trainer = trainer
                run.final_checkpoint = None       # a resumed run's saved weights: its trainer's are newer
                run.init_checkpoint = run.base_checkpoint = None     # the trainer has what it needed of them
                run.target_step = trainer.target_step
                run.step = trainer.step
                run.state_seconds = trainer.train_seconds
            if run.stop_requested.is_set():
                trainer.stop()
            trainer.run()
            if self._closing.is_set():        # the server is shutting down: the run stays resumable as it is
                self._save_state(run, trainer)
                return
            final = trainer.checkpoint(extra={"run_id": run.id})
            with run.lock:
                run.final_checkpoint = final
                run.trainer = None            # frees optimizer state, activations and the data reference
            saved = self._save_state(run, status=trainer.status, message=trainer.message)
            try:                              # from now on the run lives in its state file, mapped, not in memory
                _, final, snapshots = split_state(read_checkpoint(saved)) if saved else (None, final, None)
            except CheckpointError:           # evicted at once for another run's state: it stays in memory
                pass
            else:
                with run.lock:
                    run.final_checkpoint, run.snapshots = final, snapshots or run.snapshots
            run.set_status(trainer.status, trainer.message)      # ended, once its weights are kept
            self._trim_branch_points()
        except Exception as exc:
            with run.lock:
                run.trainer = None
            run.set_status(Status.FAILED, f"{type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._running.discard(run)
                self._recent_durations.append(time.monotonic() - started)
                idle = not self._running and not self._queue
            if idle:                 # the memory the training freed and malloc kept (configure_allocator) goes back
                release_freed_memory()
            self._start_queued()

    def _trim_branch_points(self) -> None:
        """Ended runs give up their branch points, the longest-unseen first, beyond branch_memory_total."""
        with self._lock:
            ended = sorted((r for r in self._runs.values() if not r.status.active and r.branch_points),
                           key=lambda r: r.last_seen)
        total = sum(r.branch_bytes() for r in ended)
        for run in ended:
            if total <= self.branch_memory_total:
                break
            total -= run.branch_bytes()
            with run.lock:
                run.branch_points = []

    # ---- surviving a restart --------------------------------------------------------------------------
    def _save_state_every(self, run: Run, trainer: Trainer) -> None:
        """On the worker thread, between steps: the run's state after every state_every s of training."""
        if trainer.train_seconds - run.state_seconds >= self.state_every:
            run.state_seconds = trainer.train_seconds
            self._save_state(run, trainer)

    def _save_state(self, run: Run, trainer: Trainer | None = None, status: Status | None = None,
                    message: str = "") -> Path | None:
        """Writes <state_dir>/<id>.pt atomically: the run's checkpoint (a training one: with its optimizers'
        state, so a resume continues the same run), what the registry knows of it, and its snapshots; returns
        its path. `status` and `message`: the ones it is about to get. A failure (a full disk) is said in the
        run's message once; the training goes on."""
        if self.state_dir is None:
            return None
        with run.lock:
            state = {"id": run.id, "key_sha256": run.key_sha256.hex(), "status": (status or run.status).value,
                     "message": run.message or message, "target_step": run.target_step, "created": run.created,
                     "last_log": dict(run.last_log), "snapshot_steps": [s for s, _ in run.snapshots],
                     "family": run.family, "parent": run.parent, "branch_step": run.branch_step,
                     "readings": {k: list(v) for k, v in run.readings.items()}}
            pixels = np.stack([p for _, p in run.snapshots]) if run.snapshots else np.zeros((0, 0, 28, 28), np.uint8)
            final = run.final_checkpoint
        if trainer is not None:           # a training state: a resume goes on exactly as the run would have
            checkpoint = {**trainer.state(), "run_id": run.id}
        elif final is not None:
            checkpoint = final
        else:
            return None
        path = self.state_dir / f"{run.id}.pt"
        try:
            save_checkpoint({**checkpoint, "run": state, "snapshots": torch.from_numpy(pixels)}, path)
        except CheckpointError as exc:
            with run.lock:
                if "state" not in run.message:
                    run.message += f" (its state for a restart could not be saved: {exc})"
            return None
        self._evict_states(keep=path)
        return path

    def _evict_states(self, keep: Path) -> None:
        """Keeps the state folder within state_quota: ended runs' states go first, the oldest first."""
        with self._lock:
            active = {r.id for r in self._runs.values() if r.status.active}
        files = []
        for path in self.state_dir.glob("*.pt"):
            try:
                files.append((path.stem in active, path.stat().st_mtime, path.stat().st_size, path))
            except FileNotFoundError:     # evicted by another worker meanwhile
                pass
        total = sum(size for _, _, size, _ in files)
        for _, _, size, path in sorted(files):
            if total <= self.state_quota:
                break
            if path != keep:
                path.unlink(missing_ok=True)
                total -= size

    def _read_states(self) -> None:
        """Reads back the runs a previous server saved, newest max_runs of them, on a thread of its own so
        that a server with many of them answers at once. A run that was training is INTERRUPTED: whoever
        holds its key resumes it (resume()). Unreadable states are skipped."""
        try:
            paths = sorted(self.state_dir.glob("*.pt"), key=lambda p: p.stat().st_mtime)[-self.max_runs:]
            for path in paths:
                try:
                    run = self._run_from_state(read_checkpoint(path))
                except (CheckpointError, KeyError, TypeError, ValueError):
                    continue
                with self._lock:
                    self._runs.setdefault(run.id, run)
        except OSError:           # the folder vanished or cannot be listed: nothing to read back
            pass
        finally:
            self._read_back.set()

    def _run_from_state(self, saved: dict) -> Run:
        state, checkpoint, snapshots = split_state(saved)
        config = TrainConfig.from_dict(checkpoint["train_config"])
        config.validate()
        status, message = Status(state["status"]), state["message"]
        if status.active:
            status = Status.INTERRUPTED
            message = (f"The server restarted while this run trained. It was saved at step {checkpoint['step']:,}; "
                       f"whoever started it can resume it from there.")
        return Run(id=state["id"], config=config, key="", key_sha256=bytes.fromhex(state["key_sha256"]),
                   init_checkpoint={**checkpoint, "optimizers": saved.get("optimizers"), "stream": saved.get("stream")}
                   if status is Status.INTERRUPTED else None,
                   created=state["created"], status=status, message=message, step=checkpoint["step"],
                   target_step=state["target_step"], history=checkpoint["history"],
                   last_log=state["last_log"], grid=snapshots[-1][1] if snapshots else None, snapshots=snapshots,
                   final_checkpoint=checkpoint, last_seen=self.clock(), max_snapshots=self.max_snapshots,
                   family=state.get("family", ""), parent=state.get("parent"), branch_step=state.get("branch_step"),
                   readings=_readings(state.get("readings") or {}),
                   events=list(checkpoint.get("events", [])))


def _readings(saved: dict) -> dict:
    """Readings read back, with every key READING_KEYS names (None where an older server did not measure it)."""
    steps = list(saved.get("step", []))
    return {k: steps if k == "step" else list(saved.get(k, [None] * len(steps))) for k in READING_KEYS}


def split_state(saved: dict) -> tuple[dict, dict, list]:
    """A saved state as (what the registry knew of the run, its checkpoint without the optimizers and random
    stream, its snapshots [(step, (n, 28, 28) uint8)])."""
    checkpoint = {k: v for k, v in saved.items() if k not in ("run", "snapshots", "optimizers", "stream")}
    return saved["run"], checkpoint, list(zip(saved["run"]["snapshot_steps"], saved["snapshots"].numpy()))

