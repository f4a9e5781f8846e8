import io
import os
import pickle

import pytest
import torch

from aigc import (MODELS, CheckpointError, TrainConfig, Trainer, build_model, load_checkpoint, make_checkpoint,
                  save_checkpoint)
from aigc.checkpoint import checkpoint_bytes, list_checkpoints

import hostile
from conftest import new_model


@pytest.mark.parametrize("name", list(MODELS))
def test_round_trip_gives_identical_samples(name, tmp_path):
    model = new_model(name, {"latent_dim": 2} if name == "vae" else {}).eval()
    path = save_checkpoint(make_checkpoint(model, step=7, history={"step": [7]}), tmp_path / "m.pt")
    loaded, ckpt = load_checkpoint(path)
    z = model.make_noise(6, generator=torch.Generator().manual_seed(1))
    labels = model.default_labels(6)
    assert torch.equal(model.sample(z, labels), loaded.sample(z, labels))
    assert ckpt["step"] == 7 and ckpt["model_name"] == name and ckpt["aigc_version"]
    assert loaded.config == model.config


def test_trainer_checkpoint_carries_history_and_config(mnist, tmp_path):
    trainer = Trainer(TrainConfig.for_model("vae", steps=4, log_every=2, batch_size=16), data=mnist)
    trainer.run()
    _, ckpt = load_checkpoint(save_checkpoint(trainer.checkpoint(), tmp_path / "v.pt"))
    assert ckpt["history"]["step"] == [2, 4] and ckpt["train_config"]["batch_size"] == 16


def _good_bytes():
    return checkpoint_bytes(make_checkpoint(build_model("dcgan")))


class Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned > /tmp/aigc_pwned",))


@pytest.mark.parametrize("payload,match", [
    (b"this is a text file, not a checkpoint", "not a readable checkpoint"),
    (_good_bytes()[:5000], "not a readable checkpoint"),
    (pickle.dumps({"format": "aigc-checkpoint"}), "not a readable checkpoint|refused"),
])
def test_corrupt_files_are_refused(payload, match):
    with pytest.raises(CheckpointError, match=match):
        load_checkpoint(payload)


def test_malicious_pickle_is_refused_and_never_run(tmp_path):
    if os.path.exists("/tmp/aigc_pwned"):
        os.unlink("/tmp/aigc_pwned")
    buffer = io.BytesIO()
    torch.save({"format": "aigc-checkpoint", "evil": Boom()}, buffer)
    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(buffer.getvalue())
    assert not os.path.exists("/tmp/aigc_pwned")


def test_foreign_pytorch_file_is_named():
    buffer = io.BytesIO()
    torch.save(torch.nn.Linear(2, 2).state_dict(), buffer)
    with pytest.raises(CheckpointError, match="not an aigc checkpoint"):
        load_checkpoint(buffer.getvalue())


def test_weights_of_another_architecture_are_named():
    ckpt = make_checkpoint(build_model("dcgan"))
    ckpt["model_args"] = {"latent_dim": 64, "width": 16}
    with pytest.raises(CheckpointError, match="do not fit a dcgan"):
        load_checkpoint(checkpoint_bytes(ckpt))
    ckpt = make_checkpoint(build_model("dcgan"))
    ckpt["model_name"] = "vae"
    ckpt["model_args"] = {}
    with pytest.raises(CheckpointError, match="do not fit a vae"):
        load_checkpoint(checkpoint_bytes(ckpt))


def test_unknown_model_and_missing_file():
    ckpt = make_checkpoint(build_model("vae"))
    ckpt["model_name"] = "stylegan9"
    with pytest.raises(CheckpointError, match="unknown model"):
        load_checkpoint(checkpoint_bytes(ckpt))
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint("/nonexistent/x.pt")


def test_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = save_checkpoint(make_checkpoint(build_model("vae"), step=1), tmp_path / "v.pt")
    before = path.read_bytes()

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(CheckpointError, match="disk is full.*unchanged"):
        save_checkpoint(make_checkpoint(build_model("vae"), step=2), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["v.pt"]   # no temp file left behind


def test_shipped_checkpoints_load():
    shipped = list_checkpoints()
    for name, path in shipped.items():
        model, ckpt = load_checkpoint(path)
        assert ckpt["step"] > 0, name


def test_checkpoints_are_listed_by_the_model_they_hold(tmp_path):
    save_checkpoint(make_checkpoint(build_model("vae", {"latent_dim": 2})), tmp_path / "mine.pt")
    save_checkpoint(make_checkpoint(build_model("dcgan")), tmp_path / "other.pt")
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    assert sorted(list_checkpoints(tmp_path)) == ["broken", "mine", "other"]
    assert list(list_checkpoints(tmp_path, model="vae")) == ["mine"]
    assert list(list_checkpoints(tmp_path, model="dcgan")) == ["other"]
    assert "cgan" in list_checkpoints(model="cgan") and "vae" not in list_checkpoints(model="cgan")


@pytest.mark.parametrize("kind", list(hostile.build()))
def test_hostile_files_are_refused_with_a_reason(kind):
    data, reason = hostile.build()[kind]
    assert len(data) < 25 * 2**20, "each is small enough to upload"
    with pytest.raises(CheckpointError, match=reason):
        load_checkpoint(data)


def test_a_file_written_again_by_another_zip_writer_still_loads():
    good = make_checkpoint(build_model("dcgan", {"width": 4}), step=3)
    model, ckpt = load_checkpoint(hostile.rezip(checkpoint_bytes(good)))
    assert ckpt["step"] == 3 and torch.equal(model.state_dict()["generator.project.0.weight"],
                                             good["state_dict"]["generator.project.0.weight"])
