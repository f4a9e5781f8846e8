"""One training loop for every model (minGPT's Trainer): it knows no model, only the interface.

It reports through callbacks — 'on_log' (smoothed metrics, speed, ETA), 'on_samples' (a grid from
fixed noise), 'on_status' (every change of its Status), 'on_end' — so the CLI can print and the app
can draw from the same loop. pause(), resume() and stop() may be called from any thread. A loss that
turns NaN/inf ends the run and puts back the last weights that were seen finite.
"""
from __future__ import annotations

import math
import threading
import time
from collections import defaultdict
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
    continues `init` (a checkpoint dict: its weights, step count and history, and its optimizers' state
    when it is a run's saved state; build its config with TrainConfig.for_checkpoint). `model` may instead hand over a model already built, with `start_step`
    and `history`."""

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
        if init is not None and init.get("optimizers") is not None:
            # a run resumed from its saved state (RunRegistry) goes on as the same run: Adam's moments, its clock
            for k, opt in self.optimizers.items():
                opt.load_state_dict(_clone(init["optimizers"][k]))
            self.train_seconds = float(self.history["seconds"][-1]) if self.history["seconds"] else 0.0
        self.callbacks = defaultdict(list)
        self._resume = threading.Event()
        self._resume.set()
        self._stop = threading.Event()
        self._perm_gen = torch.Generator().manual_seed(config.seed + 1)
        self._order = torch.empty(0, dtype=torch.long)
        self._cursor = 0

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
        self._resume.clear()

    def resume(self):
        self._resume.set()

    def stop(self):
        self._stop.set()
        self._resume.set()

    @property
    def paused(self) -> bool:
        return not self._resume.is_set()

    # ---- the loop -------------------------------------------------------------------------------
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

    @torch.no_grad()
    def sample_fixed(self) -> torch.Tensor:
        was_training = self.model.training
        self.model.eval()
        images = self.model.sample(self.fixed_noise, self.fixed_labels).float().cpu()
        self.model.train(was_training)
        return images

    def run(self) -> str:
        """Trains until target_step, stop() or max_seconds; returns the final status."""
        c, names = self.config, self.model.metric_names
        amp = autocast(self.device)
        good = self._snapshot()
        window = {k: torch.zeros((), device=self.device) for k in names}
        window_steps, window_time, window_start = 0, 0.0, time.perf_counter()
        self._set_status(Status.RUNNING)
        try:
            self.model.start_training(self.data)      # counts as training time, but not in the first img/s
            good = self._snapshot()
            self.train_seconds += time.perf_counter() - window_start
            window_start = time.perf_counter()
            while self.step < self.target_step and not self._stop.is_set():
                if not self._resume.is_set():
                    elapsed = time.perf_counter() - window_start
                    self.train_seconds += elapsed
                    window_time += elapsed
                    self._set_status(Status.PAUSED)
                    self._resume.wait()
                    window_start = time.perf_counter()
                    self._set_status(Status.RUNNING)
                    continue
                x, y = self.data.batch(self._next_index(c.batch_size))
                metrics = self.model.train_step(x, y, self.optimizers, amp)
                for k in names:
                    window[k] += metrics[k].float()
                self.step += 1
                window_steps += 1
                last = self.step >= self.target_step
                if self.step % c.log_every == 0 or last:
                    means = {k: (window[k] / window_steps).item() for k in names}
                    if not all(math.isfinite(v) for v in means.values()):
                        self._restore(good)
                        self._set_status(Status.DIVERGED, self._divergence_message(means))
                        break
                    good = self._snapshot()
                    elapsed = time.perf_counter() - window_start
                    self.train_seconds += elapsed
                    self._log(means, window_steps / max(window_time + elapsed, 1e-9))
                    window = {k: torch.zeros((), device=self.device) for k in names}
                    window_steps, window_time, window_start = 0, 0.0, time.perf_counter()
                if self.step % c.sample_every == 0 or last or self.samples is None:
                    self.samples = self.sample_fixed()
                    self.trigger("on_samples")
                if c.max_seconds and self.train_seconds >= c.max_seconds:
                    break
            if self.status is Status.RUNNING:
                final = Status.STOPPED if self._stop.is_set() else Status.FINISHED
                if self.model.finishing_note:
                    self._set_status(Status.FINISHING)
                if self.model.finish_training(self.data):       # it changed how it samples: redraw the grid
                    self.fixed_labels = self.model.default_labels(self.config.num_samples)
                    self.samples = self.sample_fixed()
                    self.trigger("on_samples")
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
        return make_checkpoint(self.model, self.step, self.history, self.config.to_dict(), extra, half)


def _clone(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: _clone(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_clone(v) for v in obj]
    return obj
