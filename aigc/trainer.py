"""One training loop for every model (minGPT's Trainer): it knows no model, only the interface.

It reports through callbacks — 'on_log' (smoothed metrics, speed, ETA), 'on_samples' (a grid from
fixed noise), 'on_status' (every change of its Status), 'on_end' — so the CLI can print and the app
can draw from the same loop. pause(), resume(), stop(), advance(), update_once() and change() may be
called from any thread. A loss that turns NaN/inf ends the run and puts back the last weights that were
seen finite.

A run replays exactly: it draws its random numbers from a stream of its own (the CPU and CUDA generator
states it swaps in around each step) and its batches from a seeded permutation, and state() captures
both with the weights and the optimizers' moments. A Trainer built from such a state (init=) takes the
same steps the original took next, to the last bit on the same machine: a branch of a run (runs.py).
"""
from __future__ import annotations

import math
import threading
import time
from collections import defaultdict, deque
from dataclasses import asdict, dataclass, field, fields, replace
from enum import Enum

import torch

from .checkpoint import make_checkpoint, model_from_checkpoint
from .data import MNISTTensors, load_mnist
from .device import autocast, pick_device, seed_everything
from .models import MODELS, GenerativeModel, Setting, build_model, check_base, check_range
from .sampling import noise


class Status(str, Enum):
    """Where a run is. A Trainer writes the states of the run it drives, each through one method that
    reports it ('on_status'); the run registry adds the three states a run has without a trainer."""
    READY = "ready"            # built, not started
    QUEUED = "queued"          # waiting for a free job slot (registry)
    RUNNING = "running"
    PAUSED = "paused"
    FINISHING = "finishing"    # the model fits something after its last step (a VAE's prior)
    FINISHED = "finished"
    STOPPED = "stopped"        # stopped early; its weights are kept
    DIVERGED = "diverged"      # a loss became NaN/inf; the last finite weights are kept
    FAILED = "failed"
    CANCELLED = "cancelled"    # stopped while queued (registry)
    INTERRUPTED = "interrupted"  # the server restarted while it trained; its saved state can resume (registry)

    def __str__(self) -> str:
        return self.value

    @property
    def active(self) -> bool:
        """Still queued or training: its page keeps polling."""
        return self in (Status.QUEUED, Status.RUNNING, Status.PAUSED, Status.FINISHING)

    @property
    def went_wrong(self) -> bool:
        return self in (Status.DIVERGED, Status.FAILED)


def format_duration(seconds: float, unknown: str = "—") -> str:
    """m:ss, or h:mm:ss from an hour on; `unknown` for an infinite or NaN time (no speed measured yet)."""
    if not math.isfinite(seconds):
        return unknown
    m, s = divmod(int(seconds + 0.5), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"

GPU_BATCH_SCALE = 4
LIMITS = {  # name: (low, high, kind) — the UI's sliders use the same numbers
    "steps": (1, 100_000, int),
    "batch_size": (8, 4096, int),
    "lr": (1e-6, 0.1, float),
    "beta1": (0.0, 0.999, float),
    "beta2": (0.0, 0.9999, float),
    "seed": (0, 2**31 - 1, int),
    "sample_every": (1, 100_000, int),
    "log_every": (1, 10_000, int),
    "num_samples": (1, 256, int),
    "max_seconds": (0.0, 86_400.0, float),
}


@dataclass
class TrainConfig:
    model: str = "cgan"
    model_args: dict = field(default_factory=dict)
    steps: int = 600
    batch_size: int = 64
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    seed: int = 0
    device: str = "auto"
    sample_every: int = 25
    log_every: int = 5
    num_samples: int = 64            # the 8×8 grid
    max_seconds: float = 0.0         # stop after this much training time; 0 = run all steps
    data_dir: str | None = None
    lr_of: dict = field(default_factory=dict)   # a learning rate for one optimizer only, {"d": 1e-4}: over lr

    @classmethod
    def for_model(cls, model: str, **overrides) -> "TrainConfig":
        """The model's tuned recipe (its class's train_defaults), then the caller's overrides."""
        if model not in MODELS:
            raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
        recipe = dict(MODELS[model][1].train_defaults)
        if pick_device(overrides.get("device") or "auto").type == "cuda" and "batch_size" in recipe:
            recipe["batch_size"] *= GPU_BATCH_SCALE      # a GPU idles on CPU-sized batches
        recipe.update({k: v for k, v in overrides.items() if v is not None})
        return cls(model=model, **recipe)

    @classmethod
    def for_checkpoint(cls, checkpoint: dict, **overrides) -> "TrainConfig":
        """The rule for continuing a checkpoint: the same model with the same settings (any model_args
        given are laid over the checkpoint's), then the model's recipe and the caller's overrides."""
        model = overrides.pop("model", None) or checkpoint["model_name"]
        model_args = {**checkpoint["model_args"], **(overrides.pop("model_args", None) or {})}
        config = cls.for_model(model, model_args=model_args, **overrides)
        config.check_continues(checkpoint)
        return config

    def check_continues(self, checkpoint: dict) -> None:
        """Raises ValueError unless this config trains the model the checkpoint holds."""
        if checkpoint.get("model_name") != self.model:
            raise ValueError(f"the starting checkpoint is a {checkpoint.get('model_name')}, "
                             f"but the run trains a {self.model}")

    def validate(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; choose one of {', '.join(MODELS)}")
        for name, (low, high, kind) in LIMITS.items():
            check_range(name, getattr(self, name), low, high, kind)
        for key, value in self.lr_of.items():
            check_range(f"the learning rate of {key}", value, *LIMITS["lr"])
        MODELS[self.model][0].from_dict(self.model_args)   # raises on a bad model setting

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


TRAIN_SETTINGS = (  # what the Train page offers for every model; defaults come from the model's recipe
    Setting("steps", "Steps", None, "Optimisation steps; each sees one batch of real digits.", step=100),
    Setting("batch_size", "Batch size", None, step=16),
    Setting("lr", "Learning rate", None, "Adam's step size. Too high and the run diverges; aigc then stops it "
                                         "and keeps the last good weights.", step=1e-4, format="%.5f"),
    Setting("seed", "Seed", 0, "Same seed, same run."),
)


def train_settings(model: str) -> tuple[Setting, ...]:
    """TRAIN_SETTINGS with their ranges from LIMITS and this model's recipe as the defaults."""
    recipe = TrainConfig.for_model(model)
    return tuple(replace(s, low=LIMITS[s.name][0], high=LIMITS[s.name][1], default=getattr(recipe, s.name))
                 for s in TRAIN_SETTINGS)


class Trainer:
    """Trains config.model from scratch (built on `base`, a checkpoint, for a model with a base_model), or
    continues `init` (a checkpoint dict: its weights, step count and history; with what state() adds, the
    optimizers' moments and the random stream too, so it goes on as the same run). Build its config with
    TrainConfig.for_checkpoint. `model` may instead hand over a model already built, with `start_step` and
    `history`."""

    def __init__(self, config: TrainConfig, model: GenerativeModel | None = None,
                 data: MNISTTensors | None = None, start_step: int = 0, history: dict | None = None,
                 init: dict | None = None, base: dict | None = None):
        config.validate()
        self.config = config
        self.device = pick_device(config.device)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True    # fixed shapes: let cuDNN pick the fastest kernels once
        seed_everything(config.seed)
        if init is not None:             # its weights, built with this config's settings
            config.check_continues(init)
            model = model_from_checkpoint({**init, "model_args": config.model_args}, self.device)
            start_step = int(init.get("step", 0))
            history = {k: list(v) for k, v in init.get("history", {}).items()}
        if model is None:
            check_base(config.model, base)
            model = build_model(config.model, config.model_args, base)
        self.model = model.to(self.device).train()
        self.data = (data or load_mnist(train=True, device=self.device, data_dir=config.data_dir)).to(self.device)
        self.optimizers = self.model.configure_optimizers(config.lr, (config.beta1, config.beta2))
        self.fixed_noise = noise(self.model, config.num_samples, config.seed)           # (n, latent)
        self.fixed_labels = self.model.default_labels(config.num_samples)
        self.step = start_step
        self.target_step = start_step + config.steps
        self.history = history or {}
        for key in ("step", "seconds", *self.model.metric_names):
            self.history.setdefault(key, [])
        self.samples: torch.Tensor | None = None     # (n, 1, 28, 28) in [-1, 1], on the CPU
        self.last_log: dict = {}
        self.status = Status.READY
        self.message = ""
        self.train_seconds = 0.0
        self.events: list[dict] = [dict(e) for e in (init or {}).get("events", [])]   # {"step", "text", "kind"}
        self._rng_state = torch.Generator().manual_seed(config.seed).get_state()     # the run's own random stream
        self._cuda_rng_state = (torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None)
        self._perm_gen = torch.Generator().manual_seed(config.seed + 1)
        self._order = torch.empty(0, dtype=torch.long)
        self._cursor = 0
        self._window = {k: torch.zeros((), device=self.device) for k in self.model.metric_names}
        self._window_steps = 0
        if init is not None and init.get("optimizers") is not None:
            # a run resumed from its saved state (RunRegistry) goes on as the same run: Adam's moments, its clock
            for k, opt in self.optimizers.items():
                opt.load_state_dict(_clone(init["optimizers"][k]))
            self.train_seconds = float(self.history["seconds"][-1]) if self.history["seconds"] else 0.0
        if init is not None and init.get("stream") is not None:
            self._restore_stream(init["stream"])
            self.samples = self.sample_fixed()      # the grid it had there: the next one is due where it was
        for key, value in config.lr_of.items():
            self._set_live(f"lr.{key}", value)
        self.callbacks = defaultdict(list)
        self._paused = False
        self._wake = threading.Event()               # set by every call from another thread
        self._stop = threading.Event()
        self._requests: deque = deque()              # while paused: ("steps", n) or ("phase", name)
        self._changes: dict = {}                     # settings to change at the next step boundary
        self._lock = threading.Lock()

    # ---- control, from any thread -------------------------------------------------------------
    def add_callback(self, event: str, fn) -> None:
        self.callbacks[event].append(fn)

    def trigger(self, event: str) -> None:
        for fn in self.callbacks[event]:
            fn(self)

    def _set_status(self, status: Status, message: str = "") -> None:
        """The one place the trainer's status changes; every change is reported through 'on_status'."""
        self.status = status
        if message:
            self.message = message
        self.trigger("on_status")

    def pause(self):
        self._paused = True

    def resume(self):
        self._paused = False
        self._wake.set()

    def stop(self):
        self._stop.set()
        self._wake.set()

    @property
    def paused(self) -> bool:
        return self._paused

    def advance(self, steps: int = 1) -> None:
        """Slow motion: a paused run takes `steps` steps, redraws its grid and logs, and stays paused."""
        check_range("steps", steps, 1, 1000)
        self._request(("steps", int(steps)))

    def update_once(self, phase: str) -> None:
        """Slow motion: a paused run makes one update of one part of its model (a GAN's "d" or "g", its
        update_phases) on the next batch; the step count stays, the grid is redrawn."""
        if phase not in self.model.update_phases:
            raise ValueError(f"a {self.model.name} has no separate update {phase!r}; it has "
                             f"{', '.join(self.model.update_phases) or 'none'}")
        self._request(("phase", phase))

    def _request(self, request: tuple) -> None:
        if not self._paused:
            raise RuntimeError("pause the run first: slow motion steps a paused run")
        with self._lock:
            self._requests.append(request)
        self._wake.set()

    def live_settings(self) -> tuple[Setting, ...]:
        """What may change while it trains (model.live_settings), with its ranges and its values now."""
        settings = []
        for s in self.model.live_settings:
            limits = LIMITS.get(s.name.split(".")[0])
            low, high = (limits[0], limits[1]) if limits and s.low is None else (s.low, s.high)
            settings.append(replace(s, low=low, high=high, default=self.live_value(s.name)))
        return tuple(settings)

    def live_value(self, name: str):
        groups = {k: opt.param_groups[0] for k, opt in self.optimizers.items()}
        return _live_value(name, groups, self.config.batch_size, vars(self.model.config))

    def change(self, **values) -> None:
        """Changes settings of the running run at its next step boundary (a coach's remedy, a person's
        choice): any of live_settings(). Raises ValueError, naming the setting, for one out of range."""
        check_changes(values, {s.name: s for s in self.live_settings()})
        with self._lock:
            self._changes.update(values)
        self._wake.set()

    # ---- the loop -------------------------------------------------------------------------------
    def _apply_changes(self) -> None:
        with self._lock:
            changes, self._changes = self._changes, {}
        if not changes:
            return
        labels = {s.name: s.label for s in self.model.live_settings}
        said = []
        for name, value in changes.items():
            before = self.live_value(name)
            if before != value:
                self._set_live(name, value)
                said.append(f"{labels[name]} {before:g} → {value:g}")
        if said:
            self.events.append({"step": self.step, "text": ", ".join(said), "kind": "settings"})
            self.trigger("on_log")           # what watches the run sees the change now, even while paused

    def _set_live(self, name: str, value) -> None:
        kind, _, key = name.partition(".")
        if kind == "lr":
            for k, opt in self.optimizers.items():
                if k == key or not key:
                    for group in opt.param_groups:
                        group["lr"] = value
            self.config = (replace(self.config, lr_of={**self.config.lr_of, key: value}) if key
                           else replace(self.config, lr=value, lr_of={}))
        elif name == "beta1":
            for opt in self.optimizers.values():
                for group in opt.param_groups:
                    group["betas"] = (value, group["betas"][1])
            self.config = replace(self.config, beta1=value)
        elif name == "batch_size":
            self.config = replace(self.config, batch_size=int(value))
        else:                    # a field of the model's config that its train_step reads each step
            setattr(self.model.config, name, value)
            self.model.config.validate()
            self.config = replace(self.config, model_args=self.model.config.to_dict())

    def _next_index(self, b: int) -> torch.Tensor:
        """Shuffled epochs: each image once per pass, a fresh order per pass."""
        if self._cursor + b > len(self._order):
            self._order = torch.randperm(len(self.data), generator=self._perm_gen).to(self.device)
            self._cursor = 0
        index = self._order[self._cursor:self._cursor + b]
        self._cursor += b
        return index

    def _snapshot(self) -> dict:
        return {
            "model": {k: v.detach().clone() for k, v in self.model.state_dict().items()},
            "optimizers": {k: _clone(opt.state_dict()) for k, opt in self.optimizers.items()},
        }

    def _restore(self, snap: dict) -> None:
        self.model.load_state_dict(snap["model"])
        for k, opt in self.optimizers.items():
            opt.load_state_dict(snap["optimizers"][k])

    def _stream(self) -> dict:
        """Where the run is in its random numbers and its batches, and its partly filled log window."""
        stream = {"rng": self._rng_state.clone(), "perm": self._perm_gen.get_state(),
                  "order": self._order.cpu().clone(), "cursor": self._cursor, "seconds": self.train_seconds,
                  "window": {k: v.detach().cpu().clone() for k, v in self._window.items()},
                  "window_steps": self._window_steps}
        if self._cuda_rng_state is not None:
            stream["cuda_rng"] = self._cuda_rng_state.clone()
        return stream

    def _restore_stream(self, stream: dict) -> None:
        self._rng_state = stream["rng"].clone()
        if self._cuda_rng_state is not None and stream.get("cuda_rng") is not None:
            self._cuda_rng_state = stream["cuda_rng"].clone()
        self._perm_gen.set_state(stream["perm"].clone())
        self._order = stream["order"].to(self.device, copy=True)         # copies: a state read back is mapped
        self._cursor = int(stream["cursor"])
        self.train_seconds = float(stream["seconds"])
        self._window = {k: v.to(self.device, copy=True) for k, v in stream["window"].items()}
        self._window_steps = int(stream["window_steps"])

    def state(self) -> dict:
        """Everything the run is at this step boundary, as a checkpoint a Trainer continues exactly (init=):
        weights, the optimizers' moments, history, the random stream and the changes made so far."""
        history = {k: list(v) for k, v in self.history.items()}
        config = {**self.config.to_dict(), "model_args": self.model.config.to_dict()}    # with what a base decided
        return make_checkpoint(self.model, self.step, history, config, {
            "optimizers": {k: _clone(opt.state_dict()) for k, opt in self.optimizers.items()},
            "stream": self._stream(), "events": [dict(e) for e in self.events]})

    def _train_step(self, amp, phase: str | None = None) -> dict:
        """One batch through the model's train_step, drawing on the run's own random stream."""
        x, y = self.data.batch(self._next_index(self.config.batch_size))
        torch.set_rng_state(self._rng_state)
        if self._cuda_rng_state is not None:
            torch.cuda.set_rng_state(self._cuda_rng_state, self.device)
        if phase is None:
            metrics = self.model.train_step(x, y, self.optimizers, amp)
        else:
            metrics = self.model.train_step(x, y, self.optimizers, amp, phase=phase)
        self._rng_state = torch.get_rng_state()
        if self._cuda_rng_state is not None:
            self._cuda_rng_state = torch.cuda.get_rng_state(self.device)
        return metrics

    @torch.no_grad()
    def sample_fixed(self) -> torch.Tensor:
        was_training = self.model.training
        self.model.eval()
        images = self.model.sample(self.fixed_noise, self.fixed_labels).float().cpu()
        self.model.train(was_training)
        return images

    def _redraw(self) -> None:
        self.samples = self.sample_fixed()
        self.trigger("on_samples")

    def run(self) -> str:
        """Trains until target_step, stop() or max_seconds; returns the final status."""
        c, names = self.config, self.model.metric_names
        amp = autocast(self.device)
        good = self._snapshot()
        window_time, window_start = 0.0, time.perf_counter()
        slow_steps = 0                      # steps left of a slow-motion request
        self._set_status(Status.RUNNING)
        try:
            self.model.start_training(self.data)      # counts as training time, but not in the first img/s
            good = self._snapshot()
            self.train_seconds += time.perf_counter() - window_start
            window_start = time.perf_counter()
            while self.step < self.target_step and not self._stop.is_set():
                self._apply_changes()
                c = self.config
                if self._paused and not slow_steps:
                    with self._lock:
                        request = self._requests.popleft() if self._requests else None
                    if request is None:
                        elapsed = time.perf_counter() - window_start
                        self.train_seconds += elapsed
                        window_time += elapsed
                        if self.status is not Status.PAUSED:
                            self._set_status(Status.PAUSED)
                        self._wake.clear()
                        if self._paused and not self._requests and not self._changes and not self._stop.is_set():
                            self._wake.wait()
                        window_start = time.perf_counter()
                        if not self._paused:
                            self._set_status(Status.RUNNING)
                        continue
                    kind, value = request
                    if kind == "phase":
                        metrics = self._train_step(amp, phase=value)
                        self.events.append({"step": self.step, "text": self.model.update_phases[value],
                                            "kind": "update"})
                        self.last_log = {**self.last_log, **{k: v.item() for k, v in metrics.items()},
                                         "update": value, "updated": list(metrics)}
                        self.trigger("on_log")
                        self._redraw()
                        continue
                    slow_steps = value
                metrics = self._train_step(amp)
                for k in names:
                    self._window[k] += metrics[k].float()
                self.step += 1
                self._window_steps += 1
                if slow_steps:
                    slow_steps -= 1
                last = self.step >= self.target_step
                if self.step % c.log_every == 0 or last or (self._paused and not slow_steps):
                    means = {k: (self._window[k] / self._window_steps).item() for k in names}
                    if not all(math.isfinite(v) for v in means.values()):
                        self._restore(good)
                        self._set_status(Status.DIVERGED, self._divergence_message(means))
                        break
                    good = self._snapshot()
                    elapsed = time.perf_counter() - window_start
                    self.train_seconds += elapsed
                    self._log(means, self._window_steps / max(window_time + elapsed, 1e-9))
                    self._window = {k: torch.zeros((), device=self.device) for k in names}
                    self._window_steps, window_time, window_start = 0, 0.0, time.perf_counter()
                if (self.step % c.sample_every == 0 or last or self.samples is None
                        or (self._paused and not slow_steps)):
                    self._redraw()
                if c.max_seconds and self.train_seconds >= c.max_seconds:
                    break
            if self.status in (Status.RUNNING, Status.PAUSED):
                final = Status.STOPPED if self._stop.is_set() else Status.FINISHED
                if self.model.finishing_note:
                    self._set_status(Status.FINISHING)
                if self.model.finish_training(self.data):       # it changed how it samples: redraw the grid
                    self.fixed_labels = self.model.default_labels(self.config.num_samples)
                    self._redraw()
                self._set_status(final)
        except Exception as exc:  # out of memory, a bad device: report it, keep the last good weights
            self._restore(good)
            self._set_status(Status.FAILED, f"training failed at step {self.step}: {type(exc).__name__}: {exc}")
        if self.samples is None or self.status.went_wrong:
            self.samples = self.sample_fixed()
        self.trigger("on_end")
        return self.status

    def _log(self, means: dict, steps_per_s: float) -> None:
        self.history["step"].append(self.step)
        self.history["seconds"].append(round(self.train_seconds, 3))
        for k, v in means.items():
            self.history[k].append(v)
        remaining = self.target_step - self.step
        self.last_log = {
            "step": self.step, "target_step": self.target_step, **means,
            "images_per_s": steps_per_s * self.config.batch_size,
            "eta_s": remaining / steps_per_s if steps_per_s > 0 else float("inf"),
            "seconds": self.train_seconds,
        }
        self.trigger("on_log")

    def _divergence_message(self, means: dict) -> str:
        bad = ", ".join(k for k, v in means.items() if not math.isfinite(v))
        return (f"training diverged at step {self.step}: {bad} became NaN or infinite. The most likely cause is "
                f"a learning rate that is too high ({self.config.lr:g}; this model's recipe uses "
                f"{self.model.train_defaults.get('lr', 2e-4):g}). The weights from step "
                f"{self.history['step'][-1] if self.history['step'] else 0} (the last finite ones) were kept.")

    def checkpoint(self, extra: dict | None = None, half: bool = False) -> dict:
        return make_checkpoint(self.model, self.step, self.history, self.config.to_dict(),
                               {"events": [dict(e) for e in self.events], **(extra or {})}, half)


def live_values(state: dict, settings) -> dict:
    """The values of live settings (Setting names, as Trainer.live_settings) in a state (Trainer.state())."""
    groups = {k: opt["param_groups"][0] for k, opt in state["optimizers"].items()}
    return {s.name: _live_value(s.name, groups, state["train_config"]["batch_size"], state["model_args"])
            for s in settings}


def _live_value(name: str, groups: dict, batch_size: int, model_args: dict):
    """A live setting's value: lr (the first optimizer's) or lr.<optimizer>, beta1, batch_size, or a field of
    the model's config. groups: {optimizer: its first param group}."""
    kind, _, key = name.partition(".")
    group = groups[key] if key else next(iter(groups.values()))
    if kind == "lr":
        return group["lr"]
    if name == "beta1":
        return group["betas"][0]
    if name == "batch_size":
        return batch_size
    return model_args[name]


def check_changes(changes: dict, settings: dict[str, Setting]) -> None:
    """Raises ValueError for a change of a setting that is not among `settings` (live ones) or out of range."""
    for name, value in changes.items():
        if name not in settings:
            raise ValueError(f"{name!r} is not a setting that can change while this model trains; these can: "
                             f"{', '.join(settings) or 'none'}")
        s = settings[name]
        check_range(s.label, value, s.low, s.high, int if isinstance(s.default, int) else float)


def _clone(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: _clone(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clone(v) for v in obj]
    return obj
