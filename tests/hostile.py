"""Hostile checkpoint files, each small, each built the way an attacker would: for the tests, and for
bench/hostile_uploads.py, which measures what each costs the server. {kind: (bytes, what the refusal says)}."""
from __future__ import annotations

import functools
import io
import struct
import zipfile

import torch

from aigc import build_model, make_checkpoint
from aigc.checkpoint import checkpoint_bytes


def rezip(data: bytes, compression: int = zipfile.ZIP_STORED, change=lambda name, content: content) -> bytes:
    """The same archive written again by Python's zipfile, each record passed through change()."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", compression) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, change(info.filename, src.read(info)))
    return out.getvalue()


def header(state_dict: dict, model_name: str = "dcgan", model_args: dict | None = None, **extra) -> dict:
    return {**make_checkpoint(build_model("dcgan", {"width": 4})), "model_name": model_name,
            "model_args": model_args or {}, "state_dict": state_dict, **extra}


def declared_storage(numel: int) -> bytes:
    """A record of 123,457 numbers whose pickle declares `numel` of them: a reader that allocates what
    is declared before reading the record allocates numel × 4 bytes."""
    data = checkpoint_bytes(header({"weight": torch.zeros(123_457)}))
    honest, lying = b"J" + struct.pack("<i", 123_457), b"J" + struct.pack("<i", numel)
    return rezip(data, change=lambda name, content: content.replace(honest, lying) if name.endswith(".pkl") else content)


@functools.cache
def build() -> dict[str, tuple[bytes, str]]:
    good = checkpoint_bytes(make_checkpoint(build_model("dcgan", {"width": 4})))
    nan_model = build_model("dcgan", {"width": 4})
    with torch.no_grad():
        next(nan_model.generator.parameters()).fill_(float("nan"))
    return {
        # a zip bomb: records that inflate to far more than the file
        "compressed records": (rezip(good, zipfile.ZIP_DEFLATED), "compressed records"),
        # thousands of records, each a tensor to create
        "5,000 records": (checkpoint_bytes(header({f"w{i}": torch.zeros(1) for i in range(5_000)})), "5,00"),
        # a pickle (the history) that takes a lot of memory and time to unpickle
        "a 20 MB history": (checkpoint_bytes(header({}, history={"loss": [0.5] * 2_300_000})), "history take"),
        # a zero-stride view of one number that declares a trillion
        "a trillion numbers in one": (checkpoint_bytes(header({"generator.project.0.weight":
                                                               torch.zeros(1).expand(10**6, 10**6)})), "declares"),
        # a storage that declares 1.5 GB over a record of 0.5 MB
        "a 1.5 GB storage declared": (declared_storage(400_000_000), "not a readable checkpoint"),
        # settings that ask for a model of 50 million numbers, with none of its weights
        "settings for a huge model": (checkpoint_bytes(header({}, model_args={"width": 256, "latent_dim": 1024})),
                                      "ask for a model of"),
        # weights that load but draw nothing
        "weights that are NaN": (checkpoint_bytes(make_checkpoint(nan_model)), "not all finite"),
    }
