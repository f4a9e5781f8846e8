"""python -m aigc train | sample | evaluate | info — the same backend the app uses, printing instead of drawing."""
from __future__ import annotations

import argparse
import ast
import sys
import time
from pathlib import Path

from .checkpoint import CheckpointError, list_checkpoints, load_checkpoint, read_checkpoint, save_checkpoint
from .device import configure_allocator, configure_threads, describe_device, pick_device
from .images import grid, png_bytes
from .models import MODELS
from .models.diffusion import SAMPLERS
from .sampling import samples
from .trainer import Status, TrainConfig, Trainer, format_duration
from .version import __version__


def _model_arg(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


class ProgressBar:
    """One line redrawn in place on a terminal; a line every `every` seconds otherwise (logs, CI)."""

    def __init__(self, stream=sys.stderr, width: int = 24, every: float = 5.0):
        self.stream, self.width, self.every = stream, width, every
        self.tty = stream.isatty()
        self._last = 0.0
        self._closed = False

    def __call__(self, trainer: Trainer) -> None:
        log = trainer.last_log
        done = log["step"] / log["target_step"]
        bar = "#" * int(done * self.width) + "-" * (self.width - int(done * self.width))
        metrics = "  ".join(f"{k} {log[k]:.3f}" for k in trainer.model.metric_names)
        line = (f"step {log['step']:>6}/{log['target_step']} [{bar}] {log['images_per_s']:7.0f} img/s "
                f"ETA {format_duration(log['eta_s'], '--:--')}  {metrics}")
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r" + line)
            self.stream.flush()
        elif now - self._last >= self.every or log["step"] >= log["target_step"]:
            self.stream.write(line + "\n")
            self._last = now

    def close(self):
        if self.tty and not self._closed:
            self.stream.write("\n")
        self._closed = True


def cmd_train(args) -> int:
    configure_threads(args.threads)
    configure_allocator()
    overrides = dict(model=args.model, model_args=dict(args.model_arg or []), steps=args.steps,
                     batch_size=args.batch_size, lr=args.lr, beta1=args.beta1, seed=args.seed, device=args.device,
                     sample_every=args.sample_every, max_seconds=args.max_seconds, data_dir=args.data_dir)
    init = read_checkpoint(args.init) if args.init else None
    base = read_checkpoint(args.base) if args.base else None
    if init is not None:
        config = TrainConfig.for_checkpoint(init, **overrides)
    else:
        config = TrainConfig.for_model(overrides.pop("model") or next(iter(MODELS)), **overrides)
    config.validate()
    out = Path(args.out or f"runs/{config.model}.pt")
    samples_dir = Path(args.samples_dir) if args.samples_dir else None
    trainer = Trainer(config, init=init, base=base)
    print(f"aigc {__version__}: training {config.model} {config.model_args or ''} on {describe_device(trainer.device)}, "
          f"{config.steps} steps of {config.batch_size}", file=sys.stderr)
    bar = ProgressBar()
    trainer.add_callback("on_log", bar)

    def say_what_it_fits(t: Trainer) -> None:
        if t.status is Status.FINISHING:
            bar.close()
            print(t.model.finishing_note, file=sys.stderr)

    trainer.add_callback("on_status", say_what_it_fits)
    if samples_dir is not None:
        samples_dir.mkdir(parents=True, exist_ok=True)
        trainer.add_callback("on_samples", lambda t: (samples_dir / f"step{t.step:06d}.png").write_bytes(
            png_bytes(grid(t.samples, scale=2))))
    try:
        status = trainer.run()
    except KeyboardInterrupt:
        status, trainer.message = Status.STOPPED, "interrupted from the keyboard"
    bar.close()
    save_checkpoint(trainer.checkpoint(half=args.half), out)
    png = out.with_suffix(".png")
    png.write_bytes(png_bytes(grid(trainer.sample_fixed(), scale=2)))
    print(f"{status} at step {trainer.step} after {trainer.train_seconds:.1f} s of training"
          f"{': ' + trainer.message if trainer.message else ''}\nsaved {out} and {png}", file=sys.stderr)
    return 0 if status in (Status.FINISHED, Status.STOPPED) else 1


def sampling_options(model, args) -> dict:
    """--steps, --guidance and --sampler as keyword arguments of model.sample, for a model that has them
    (its sampling_settings); a clear error for one that draws in a single step."""
    given = {"steps": args.steps, "guidance": args.guidance, "sampler": args.sampler}
    given = {k: v for k, v in given.items() if v is not None}
    offered = {s.name for s in model.sampling_settings}
    for name in given:
        if name not in offered:
            raise ValueError(f"--{name} does not apply to a {model.name}: it draws a sample in one step")
    return given             # their ranges are the model's to check


def cmd_sample(args) -> int:
    model, _ = load_checkpoint(args.ckpt, pick_device(args.device))
    options = sampling_options(model, args)
    if args.label is not None:
        if not model.label_count:
            raise ValueError(f"--label needs a conditional or self-conditioned model; {model.name} is neither")
        if not 0 <= args.label < model.label_count:
            raise ValueError(f"--label must be between 0 and {model.label_count - 1} for this model, got {args.label}")
    images = samples(model, args.seed, args.n, args.label, **options)
    out = Path(args.out or Path(args.ckpt).with_suffix(".samples.png").name)
    out.write_bytes(png_bytes(grid(images, nrow=args.nrow, scale=args.scale)))
    print(f"wrote {args.n} samples of {model.name} to {out}")
    return 0


def cmd_evaluate(args) -> int:
    from .metrics import evaluate_model

    model, ckpt = load_checkpoint(args.ckpt, pick_device(args.device))
    options = sampling_options(model, args)
    start = time.perf_counter()
    scores = evaluate_model(model, n=args.n, seed=args.seed, **options)
    print(f"{Path(args.ckpt).name}: {model.name} at step {ckpt['step']}, {scores['n']} samples "
          f"{' '.join(f'{k}={v}' for k, v in options.items())} ({time.perf_counter() - start:.1f} s)")
    print(f"  Fréchet distance  {scores['fid']:.3f}   (real-data floor {scores['fid_floor']:.3f}, "
          f"ratio {scores['fid_ratio']:.2f}×)")
    print(f"  mean confidence   {scores['confidence']:.3f}")
    print(f"  classes covered   {scores['coverage']}/10   histogram {scores['class_hist']}")
    return 0


def cmd_info(args) -> int:
    if args.ckpt is None:
        device = pick_device()
        print(f"aigc {__version__} on {describe_device(device)}")
        print("models:")
        for name, (_, cls) in MODELS.items():
            print(f"  {name:8s} {cls.summary}")
        print("shipped checkpoints:")
        for name, path in list_checkpoints().items():
            print(f"  {name:8s} {path}")
        return 0
    model, ckpt = load_checkpoint(args.ckpt)
    params = sum(p.numel() for p in model.parameters())
    print(f"{args.ckpt}: {ckpt['model_name']} {ckpt['model_args']}")
    print(f"  step {ckpt['step']}, {params:,} parameters, written by aigc {ckpt.get('aigc_version', '?')}")
    history = ckpt.get("history") or {}
    for name in model.metric_names:
        if history.get(name):
            print(f"  last {name}: {history[name][-1]:.4f}")
    if ckpt.get("train_config"):
        tc = ckpt["train_config"]
        print(f"  trained with batch {tc.get('batch_size')}, lr {tc.get('lr')}, seed {tc.get('seed')}")
    return 0


def add_sampling_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, help="sampling steps, 1-100 (diffusion models; default: the model's)")
    parser.add_argument("--guidance", type=float, help="classifier-free guidance weight w (diffusion models)")
    parser.add_argument("--sampler", choices=SAMPLERS, help="euler (DDIM), heun (second order: about twice the "
                        "network runs per step) or ancestral (stochastic); diffusion models, default: the model's")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m aigc", description="Train, sample, evaluate and inspect aigc models on MNIST.")
    p.add_argument("--version", action="version", version=f"aigc {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a model and write a checkpoint plus a PNG of its samples")
    t.add_argument("--model", choices=list(MODELS), help=f"which model (default: {next(iter(MODELS))}, or the --init checkpoint's)")
    t.add_argument("--steps", type=int, help="optimisation steps (default: the model's recipe)")
    t.add_argument("--batch-size", type=int, help="images per step")
    t.add_argument("--lr", type=float, help="Adam learning rate")
    t.add_argument("--beta1", type=float, help="Adam beta1")
    t.add_argument("--seed", type=int, help="random seed (weights, batches, fixed sample noise)")
    t.add_argument("--max-seconds", type=float, help="stop after this many seconds of training")
    t.add_argument("--model-arg", type=_model_arg, action="append", metavar="KEY=VALUE",
                   help="a model setting, e.g. latent_dim=2 (repeatable)")
    t.add_argument("--init", help="continue from this checkpoint")
    t.add_argument("--base", help="the trained checkpoint a model such as latent_diffusion is built on (a vae)")
    t.add_argument("--out", help="checkpoint path (default: runs/<model>.pt); a PNG grid is written beside it")
    t.add_argument("--half", action="store_true", help="store the weights as float16 (half the file size)")
    t.add_argument("--samples-dir", help="also write the sample grid here every --sample-every steps")
    t.add_argument("--sample-every", type=int, help="steps between sample grids")
    t.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps")
    t.add_argument("--threads", type=int, help="CPU threads for torch (default: all cores)")
    t.add_argument("--data-dir", help="MNIST folder (default: $AIGC_DATA_DIR, else ./data; downloaded if missing)")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sample", help="write a PNG grid of samples from a checkpoint")
    s.add_argument("--ckpt", required=True)
    s.add_argument("--n", type=int, default=64)
    s.add_argument("--nrow", type=int, default=None, help="images per row (default: square)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--label", type=int, help="digit to draw (conditional models) or group (self-conditioned GANs)")
    s.add_argument("--scale", type=int, default=2, help="pixel upscaling of the PNG")
    s.add_argument("--out", help="PNG path (default: <checkpoint>.samples.png)")
    s.add_argument("--device", default="auto")
    add_sampling_arguments(s)
    s.set_defaults(func=cmd_sample)

    e = sub.add_parser("evaluate", help="Fréchet distance, confidence and class coverage of a checkpoint's samples")
    e.add_argument("--ckpt", required=True)
    e.add_argument("--n", type=int, default=10_000, help="samples to score")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--device", default="auto")
    add_sampling_arguments(e)
    e.set_defaults(func=cmd_evaluate)

    i = sub.add_parser("info", help="describe a checkpoint, or list models, checkpoints and the device")
    i.add_argument("--ckpt")
    i.set_defaults(func=cmd_info)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, CheckpointError, RuntimeError, OSError) as exc:
        print(f"aigc: error: {exc}", file=sys.stderr)
        return 2
