"""The training loop end to end on digits: runs, exports, resumes exactly, protects run dirs."""

import json

import pytest
import torch
from safetensors.torch import load_file

import selfsup
import selfsup.train
from selfsup.errors import SelfsupError

FAST = {
    "train.epochs": 2,
    "train.batch_size": 128,
    "train.progress": False,
    "train.eval_every": 0,
    "eval.protocols": "",
    "train.report": False,
    "method.proj_hidden_dim": 64,
    "method.proj_dim": 32,
}


def config(**extra):
    return selfsup.make_config(**(FAST | extra))


def test_pretrain_writes_run_and_loadable_encoder(tmp_path):
    result = selfsup.pretrain(
        config(**{"eval.protocols": "knn", "train.report": True}), tmp_path / "run"
    )
    run = tmp_path / "run"
    for name in (
        "config.json",
        "metrics.jsonl",
        "checkpoint.pt",
        "encoder.safetensors",
        "encoder.json",
        "report.html",
        "eval.json",
        "environment.json",
    ):
        assert (run / name).is_file(), name
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert train and all(torch.isfinite(torch.tensor(r["loss"])) for r in train)
    evaluation = json.loads((run / "eval.json").read_text())
    assert set(evaluation) == {"selfsup", "random", "raw_pixels"}
    assert 0.0 <= evaluation["selfsup"]["knn_top1"] <= 1.0
    encoder = selfsup.load(run)
    x = torch.randint(0, 256, (3, 1, 8, 8), dtype=torch.uint8)
    assert encoder(x).shape == (3, encoder.out_dim)
    assert result.run_dir == run


def _weights(run):
    return load_file(str(run / "encoder.safetensors"))


def test_resume_continues_exactly(tmp_path, monkeypatch):
    selfsup.pretrain(config(), tmp_path / "straight")
    steps_per_epoch = 1437 // 128
    original = selfsup.train.training_step
    calls = {"n": 0}

    def interrupt_in_second_epoch(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == steps_per_epoch + 3:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(selfsup.train, "training_step", interrupt_in_second_epoch)
    with pytest.raises(SelfsupError, match="--resume"):
        selfsup.pretrain(config(), tmp_path / "resumed")
    monkeypatch.setattr(selfsup.train, "training_step", original)
    assert not (tmp_path / "resumed" / "encoder.safetensors").exists()
    selfsup.pretrain(config(), tmp_path / "resumed", resume=True)
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "resumed")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    ckpt_a = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=False)
    ckpt_b = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=False)
    for key, value in ckpt_a["method"].items():
        assert torch.equal(value, ckpt_b["method"][key]), key
    records = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    steps = [r["step"] for r in map(json.loads, records) if r["kind"] == "train"]
    assert steps == sorted(steps) and len(steps) == len(set(steps))


def test_existing_run_is_not_overwritten(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "notes.txt").write_text("mine")
    with pytest.raises(SelfsupError, match="already exists"):
        selfsup.pretrain(config(), run)
    assert (run / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"train.batch_size": 4096}, "larger than the dataset"),
        ({"method.name": "nosuch"}, "unknown method 'nosuch'"),
        ({"model.backbone": "vgg"}, "unknown backbone 'vgg'"),
        ({"method.temperatur": 0.1}, "unknown parameter"),
        ({"method.augment": "fancy"}, "fancy"),
        ({"data.source": "nosuch"}, "nosuch"),
    ],
)
def test_bad_input_gives_one_clear_error(tmp_path, extra, message):
    with pytest.raises(SelfsupError, match=message):
        selfsup.pretrain(config(**extra), tmp_path / "run")


@pytest.mark.slow
def test_short_simclr_run_beats_random_encoder_under_knn(tmp_path):
    """Convergence on real data: 20 epochs on digits must clearly beat a random encoder."""
    cfg = selfsup.make_config(
        **{
            "train.epochs": 20,
            "train.progress": False,
            "train.eval_every": 0,
            "eval.protocols": "knn",
        }
    )
    result = selfsup.pretrain(cfg, tmp_path / "run")
    learned = result.evaluation["selfsup"]["knn_top1"]
    random = result.evaluation["random"]["knn_top1"]
    assert learned > random + 0.05, (learned, random)


def test_crop_size_sets_the_side_of_training_views():
    from selfsup.models import EncoderSpec
    from selfsup.train import build_method

    spec = EncoderSpec("convnet", 1, 8, True, (0.5,), (0.25,))
    method = build_method(selfsup.make_config(**{"method.crop_size": 6}), spec)
    views = method.views(torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8))
    assert [tuple(v.shape) for v in views] == [(4, 1, 6, 6)] * 2


def test_unlabelled_flat_folder_trains_and_reports_geometry_only(tmp_path):
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    rng = torch.Generator().manual_seed(0)
    for i in range(160):
        pixels = torch.randint(0, 256, (16, 16, 3), dtype=torch.uint8, generator=rng)
        Image.fromarray(pixels.numpy()).save(folder / f"{i:03d}.png")
    cfg = config(
        **{
            "data.source": f"folder:{folder}",
            "train.batch_size": 64,
            "eval.protocols": "knn,linear,geometry",
            "train.report": True,
        }
    )
    result = selfsup.pretrain(cfg, tmp_path / "run")
    assert set(result.evaluation) == {"selfsup", "random"}
    assert "knn_top1" not in result.evaluation["selfsup"]
    assert result.evaluation["selfsup"]["effective_rank"] > 0
    assert (tmp_path / "run" / "report.html").is_file()
