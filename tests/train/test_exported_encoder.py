"""The exported encoder is the one the method's paper evaluates (issue 18, item 6): DINO's
teacher (momentum) backbone, saved, evaluated at the end and in the online kNN during training;
the online encoder for every other method (MoCo v1/v2, MoCo v3 and BYOL evaluate their query /
online encoder). encoder.json says which one was exported, and at which step."""

import json

import torch
from safetensors.torch import load_file

import selfsup
import selfsup.run
from selfsup.checkpoint import load_checkpoint
from selfsup.methods import get_method

FAST = {
    "train.batch_size": 128,
    "train.progress": False,
    "train.report": False,
    "eval.protocols": "knn",
}


def test_dino_exports_and_evaluates_its_teacher(tmp_path, monkeypatch):
    seen = []
    original = selfsup.run.online_evaluation

    def spy(encoder, *args, **kwargs):
        seen.append(encoder)
        return original(encoder, *args, **kwargs)

    monkeypatch.setattr(selfsup.run, "online_evaluation", spy)
    dino = {
        "method.name": "dino",
        "method.local_crops": 0,
        "method.out_dim": 64,
        "method.hidden_dim": 64,
        "method.bottleneck_dim": 32,
    }
    cfg = selfsup.make_config(**FAST, **dino, **{"train.epochs": 2, "train.eval_every": 1})
    result = selfsup.pretrain(cfg, tmp_path / "run")
    meta = json.loads((tmp_path / "run" / "encoder.json").read_text())
    assert meta["exported"] == "teacher (momentum) backbone" and meta["step"] == 22
    state = load_checkpoint(tmp_path / "run" / "checkpoint.pt")["method"]
    exported = load_file(tmp_path / "run" / "encoder.safetensors")
    for name, value in exported.items():
        assert torch.equal(value, state[f"teacher_encoder.{name}"]), name
    assert any(not torch.equal(v, state[f"encoder.{n}"]) for n, v in exported.items())
    teacher_weights = dict(seen[0].state_dict())  # the online kNN ran on the teacher module
    assert all(torch.equal(teacher_weights[n], v) for n, v in exported.items())
    assert result.encoder is seen[0]


def test_other_methods_export_the_online_encoder():
    for name in ("moco", "mocov3", "byol", "simclr", "nnclr"):
        method = get_method(name)
        assert method.exported is get_method("simclr").exported, name
        assert method.exported_as.startswith("online encoder"), name


def test_encoder_json_records_what_was_exported_and_when(tmp_path):
    selfsup.pretrain(selfsup.make_config(**FAST, **{"train.epochs": 1}), tmp_path / "run")
    meta = json.loads((tmp_path / "run" / "encoder.json").read_text())
    assert meta["exported"] == "online encoder (the network the optimizer trains)"
    assert meta["step"] == 11
