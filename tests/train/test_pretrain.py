"""The training loop end to end on digits: runs, exports, resumes exactly, protects run dirs."""

import importlib
import json

import pytest
import torch
from method_harness import interrupt_at
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
    assert set(evaluation) == {"queries", "selfsup", "random", "raw_pixels"}
    assert 0.0 <= evaluation["selfsup"]["knn_top1"] <= 1.0
    encoder = selfsup.load(run)
    x = torch.randint(0, 256, (3, 1, 8, 8), dtype=torch.uint8)
    assert encoder(x).shape == (3, encoder.out_dim)
    assert result.run_dir == run


def test_final_evaluation_is_the_curves_last_point(tmp_path, monkeypatch):
    """The held-out features are computed once at the end: the loop does not run its online
    check when the final evaluation follows, and the final one logs the curve's last point."""
    suite = importlib.import_module("selfsup.evaluate.suite")  # selfsup.evaluate: the function
    passes = []
    features = suite.encoder_features
    monkeypatch.setattr(
        suite, "encoder_features", lambda enc, *a, **k: passes.append(enc) or features(enc, *a, **k)
    )
    result = selfsup.pretrain(config(**{"eval.protocols": "knn"}), tmp_path / "run")
    learned = [enc for enc in passes if enc is result.encoder]
    assert len(learned) == 1  # the random encoder's pass is the other one
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    evals = [r for r in records if r["kind"] == "eval"]
    assert evals == records[-1:] and evals[0]["step"] == max(r["step"] for r in records)
    # the online figures (kNN and the collapse figures), the kNN the same as eval.json's
    assert {"knn_top1", "alignment", "uniformity"} <= set(evals[0])
    assert evals[0]["knn_top1"] == result.evaluation["selfsup"]["knn_top1"]


def test_without_final_protocols_the_loop_logs_the_last_point(tmp_path):
    selfsup.pretrain(config(), tmp_path / "run")  # eval.protocols "": no final evaluation
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert records[-1]["kind"] == "eval" and "knn_top1" in records[-1]


def _weights(run):
    return load_file(str(run / "encoder.safetensors"))


def test_resume_after_ctrl_c_continues_exactly(tmp_path, monkeypatch):
    selfsup.pretrain(config(), tmp_path / "straight")
    steps_per_epoch = 1437 // 128
    interrupt_at(monkeypatch, steps_per_epoch + 3)
    with pytest.raises(SelfsupError, match="--resume"):
        selfsup.pretrain(config(), tmp_path / "resumed")
    monkeypatch.undo()
    assert not (tmp_path / "resumed" / "encoder.safetensors").exists()
    saved = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=False)
    assert saved["progress"]["step"] == steps_per_epoch + 3  # the step in flight is counted
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
        ({"train.batch_size": 4096}, "larger than the training data"),
        ({"method.name": "nosuch"}, "unknown method 'nosuch'"),
        ({"model.backbone": "vgg"}, "unknown backbone 'vgg'"),
        ({"method.temperatur": 0.1}, "unknown parameter"),
        ({"method.augment": "fancy"}, "fancy"),
        ({"data.source": "nosuch"}, "nosuch"),
        ({"eval.protocols": "knn,foo"}, "unknown eval.protocols foo"),
        ({"eval.protocols": "sts"}, "'sts' needs pairs"),
    ],
)
def test_bad_input_gives_one_clear_error(tmp_path, extra, message):
    with pytest.raises(SelfsupError, match=message):
        selfsup.pretrain(config(**extra), tmp_path / "run")


def digits_method(**extra):
    from selfsup.data import load_data
    from selfsup.modalities import get_modality
    from selfsup.run import build_method

    train = load_data("digits").train
    return build_method(config(**extra), get_modality("image"), train), train


def test_crop_size_sets_the_side_of_training_views():
    method, _ = digits_method(**{"method.crop_size": 6})
    views = method.views({"image": torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)})
    assert [tuple(v.shape) for v in views] == [(4, 1, 6, 6)] * 2


def test_labels_never_reach_a_method_that_does_not_declare_them(monkeypatch, tmp_path):
    """SimCLR reads only "image": the loop's batches hold nothing else, labels included."""
    from selfsup.methods.simclr import SimCLR

    seen = []
    original = SimCLR.views

    def spy(self, batch):
        seen.append(set(batch))
        return original(self, batch)

    monkeypatch.setattr(SimCLR, "views", spy)
    selfsup.pretrain(config(**{"train.epochs": 1}), tmp_path / "run")
    assert seen and all(keys == {"image"} for keys in seen)


def test_training_fields_hold_labels_and_index_only_when_declared():
    from selfsup.modalities import get_modality
    from selfsup.run import training_fields

    method, train = digits_method()
    assert set(training_fields(method, get_modality("image"), train)) == {"image"}
    method.inputs = frozenset({"image", "label", "index"})
    fields = training_fields(method, get_modality("image"), train)
    assert torch.equal(fields["label"], train.labels)
    assert torch.equal(fields["index"], torch.arange(len(train)))


def test_collapse_monitor_logs_the_projector_output(tmp_path):
    selfsup.pretrain(config(**{"train.log_every": 5}), tmp_path / "run")
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert all({"proj_std", "proj_std_reference", "proj_effective_rank"} <= set(r) for r in train)
    # healthy SimCLR projections sit near 1/sqrt(d) (d=32 here), far from the collapse value 0
    assert train[-1]["proj_std"] > 0.5 * train[-1]["proj_std_reference"]


def test_a_labelled_source_without_test_split_is_held_out_before_training(tmp_path):
    """An npy file with labels but no test arrays: 20 % is carved out before training, recorded
    in heldout.json, and `selfsup evaluate` reuses exactly those queries."""
    import numpy as np

    from selfsup.data import load_data

    digits = load_data("digits")
    file = tmp_path / "d.npz"
    np.savez(file, images=digits.train.images.numpy(), labels=digits.train.labels.numpy())
    cfg = config(**{"data.source": f"npy:{file}", "eval.protocols": "knn"})
    result = selfsup.pretrain(cfg, tmp_path / "run")
    held = json.loads((tmp_path / "run" / "heldout.json").read_text())
    assert held["count"] == 1437 and len(held["test"]) == 288  # sklearn rounds the test share up
    assert "held out of train before training" in result.evaluation["queries"]
    again = selfsup.evaluate(tmp_path / "run", "knn")
    assert again["selfsup"]["knn_top1"] == result.evaluation["selfsup"]["knn_top1"]


def test_unlabelled_flat_folder_trains_and_reports_geometry_only(tmp_path):
    from PIL import Image

    folder = tmp_path / "photos"
    folder.mkdir()
    rng = torch.Generator().manual_seed(0)
    for i in range(160):
        pixels = torch.randint(0, 256, (16, 16, 3), dtype=torch.uint8, generator=rng)
        Image.fromarray(pixels.numpy()).save(folder / f"{i:03d}.png")
    source = {"data.source": f"folder:{folder}", "train.batch_size": 64}
    asked = config(**source, **{"eval.protocols": "knn,linear,geometry"})
    with pytest.raises(SelfsupError, match=r"'knn' needs label.*work on it: geometry"):
        selfsup.pretrain(asked, tmp_path / "asked")  # before any training
    assert not (tmp_path / "asked").exists()
    cfg = config(**source, **{"eval.protocols": None, "train.report": True})
    result = selfsup.pretrain(cfg, tmp_path / "run")
    assert set(result.evaluation) == {"queries", "selfsup", "random"}
    assert "knn_top1" not in result.evaluation["selfsup"]
    assert result.evaluation["selfsup"]["backbone_effective_rank"] > 0
    assert (tmp_path / "run" / "report.html").is_file()


def test_resume_takes_more_epochs_and_refuses_other_changes(tmp_path, capsys):
    run = tmp_path / "run"
    selfsup.pretrain(config(), run)
    with pytest.raises(SelfsupError, match=r"method\.temperature"):
        selfsup.pretrain(out=run, resume=True, method__temperature=0.9)
    result = selfsup.pretrain(out=run, resume=True, train__epochs=3)
    assert round(result.epochs) == 3
    assert "trained 3.0 epochs" in capsys.readouterr().out
    saved = json.loads((run / "config.json").read_text())["config"]
    assert saved["train"]["epochs"] == 3


def test_after_step_sees_the_progress_the_step_reached(tmp_path, monkeypatch):
    """Step k of K hands k/K to after_step, so the last step hands 1.0 (EMA schedules)."""
    from selfsup.methods.simclr import SimCLR

    seen = []
    monkeypatch.setattr(SimCLR, "after_step", lambda self, progress: seen.append(progress))
    selfsup.pretrain(config(**{"train.epochs": 1}), tmp_path / "run")
    steps = 1437 // 128
    assert seen == pytest.approx([(k + 1) / steps for k in range(steps)])


def test_time_budget_does_not_charge_the_first_step(tmp_path, monkeypatch):
    """A slow first step (compilation, CUDA start-up) must not eat the budget."""
    import time

    original = selfsup.train.training_step
    calls = {"n": 0}

    def slow_first(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            time.sleep(2.0)
        return original(*args, **kwargs)

    monkeypatch.setattr(selfsup.train, "training_step", slow_first)
    selfsup.pretrain(config(**{"train.time_budget": 0.02}), tmp_path / "run")  # 1.2 s
    assert calls["n"] > 1


def test_non_square_images_keep_height_and_width(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    file = tmp_path / "wide.npz"
    np.savez(
        file,
        images=rng.integers(0, 256, (160, 3, 12, 20), dtype=np.uint8),
        labels=rng.integers(0, 2, 160),
    )
    cfg = config(**{"data.source": f"npy:{file}", "train.batch_size": 32, "train.epochs": 1})
    selfsup.pretrain(cfg, tmp_path / "run")
    encoder = selfsup.load(tmp_path / "run")
    assert encoder.spec.height_width == (12, 20)
    assert encoder.preprocess(rng.integers(0, 256, (2, 3, 24, 40), dtype=np.uint8)).shape == (
        2,
        3,
        12,
        20,
    )


def test_asking_for_cuda_without_a_gpu_is_one_clear_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    x = torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8)
    from selfsup.models import ImageEncoder, ImageEncoderSpec

    encoder = ImageEncoder(ImageEncoderSpec("convnet", 1, 8, True, (0.5,), (0.2,)))
    with pytest.raises(SelfsupError, match="no CUDA GPU"):
        selfsup.embed(encoder, x, device="cuda")
    with pytest.raises(SelfsupError, match="no CUDA GPU"):
        selfsup.pretrain(config(**{"train.device": "cuda"}), tmp_path / "run")


def test_ctrl_c_in_the_final_evaluation_says_what_is_saved(tmp_path, monkeypatch):
    import selfsup.run

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(selfsup.run, "evaluate_with_baselines", interrupted)
    with pytest.raises(SelfsupError, match=r"encoder is saved.*selfsup evaluate .*selfsup report"):
        selfsup.pretrain(config(**{"eval.protocols": "knn"}), tmp_path / "run")
    assert (tmp_path / "run" / "encoder.safetensors").is_file()

    api = importlib.import_module("selfsup.api")  # selfsup.evaluate is the function
    monkeypatch.setattr(api, "evaluate_with_baselines", interrupted)
    with pytest.raises(SelfsupError, match="evaluation interrupted; nothing was written"):
        selfsup.evaluate(tmp_path / "run", "knn")


def _crash_in_first_step(monkeypatch):
    def crash(*args, **kwargs):
        raise RuntimeError("crashed in the first step")

    monkeypatch.setattr(selfsup.train, "training_step", crash)


@pytest.mark.parametrize("resume", [False, True])
def test_a_run_that_crashed_before_its_first_checkpoint_starts_again_in_place(
    tmp_path, monkeypatch, capsys, resume
):
    """Issue 19 item 2: the crashed run's folder holds no checkpoint; the same --out (or
    --resume) starts it again instead of being refused, and says what it removed."""
    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        _crash_in_first_step(patch)
        with pytest.raises(RuntimeError, match="first step"):
            selfsup.pretrain(config(), run)
    assert (run / "config.json").is_file() and not (run / "checkpoint.pt").exists()
    capsys.readouterr()
    result = selfsup.pretrain(config(), run, resume=resume)
    out = capsys.readouterr().out
    assert "started again in place: deleted" in out and "config.json" in out
    if resume:
        assert "stopped before it wrote a checkpoint" in out
    assert (run / "checkpoint.pt").is_file() and result.epochs == 2


def test_a_crashed_run_with_results_or_other_files_is_still_refused(tmp_path, monkeypatch):
    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        _crash_in_first_step(patch)
        with pytest.raises(RuntimeError):
            selfsup.pretrain(config(), run)
    (run / "notes.txt").write_text("mine")
    with pytest.raises(SelfsupError, match="already exists"):
        selfsup.pretrain(config(), run)
    with pytest.raises(SelfsupError, match="cannot resume"):
        selfsup.pretrain(config(), run, resume=True)
    assert (run / "notes.txt").read_text() == "mine"


def test_a_run_shorter_than_log_every_logs_its_first_and_last_step(tmp_path):
    """Issue 19 item 11: 22 steps with log_every 100 still give a curve (steps 1 and 22)."""
    selfsup.pretrain(config(**{"train.log_every": 100}), tmp_path / "run")
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 22]
