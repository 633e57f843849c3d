"""contrastive_caption end to end on tiny data: a run, the stage switch, exact resume across it,
and the bad inputs."""

import pytest
import torch
from method_harness import assert_config_resumes_exactly, torch_threads
from scene_fixtures import TINY_CAPTION, write_scene_csv

import selfsup
from selfsup.errors import SelfsupError
from selfsup.methods.contrastive_caption import load_trained


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: two fight over the shared cores and run several times slower."""
    with torch_threads(1):
        yield


def _cfg(csv, **extra):
    base = {"data.source": f"captions:{csv}", "train.batch_size": 16, "train.epochs": 4}
    return selfsup.make_config(**(TINY_CAPTION | base | extra))


def test_tiny_run_switches_stage_and_keeps_the_mle_copy(tmp_path):
    csv = write_scene_csv(tmp_path / "data", 80)  # 64 train: 4 steps an epoch, 16 in all
    cfg = _cfg(csv, **{"method.contrastive_start": 0.5})
    selfsup.pretrain(cfg, tmp_path / "run")
    method, splits = load_trained(tmp_path / "run")
    assert method.counter("switched") == 1
    records = (tmp_path / "run" / "metrics.jsonl").read_text()
    assert "token_nll" in records and "contrastive_loss" in records
    # the contrastive stage moved the decoder away from the frozen MLE copy, not the image tower
    ref, cap = method.reference.state_dict(), method.captioner.state_dict()
    assert any(not torch.equal(ref[k], cap[k]) for k in ref if k.startswith("decoder."))
    assert all(
        torch.equal(ref[k], cap[k])
        for k in ref
        if k.startswith("image.") and "num_b" not in k and "running" not in k
    )
    groups = method.update_groups("contrastive")
    assert {id(p) for p in groups[0]["params"]} == {
        id(p) for p in method.captioner.decoder.parameters()
    }
    assert groups[0]["fixed_lr"] and method.update_groups("mle")[0]["fixed_lr"]  # constant lr
    captions = method.captions(splits.test.images[:4])
    assert len(captions) == 4 and all(isinstance(c, str) for c in captions)
    assert (tmp_path / "run" / "figures" / "contrastive-caption-generated-captions.png").is_file()


@pytest.mark.parametrize("start", [0.25, 0.75])  # switch before / after the interruption
def test_resume_is_exact_across_the_stage_switch(tmp_path, monkeypatch, start):
    csv = write_scene_csv(tmp_path / "data", 80)
    cfg = _cfg(csv, **{"method.contrastive_start": start})
    state = assert_config_resumes_exactly(tmp_path, monkeypatch, cfg, interrupt_call=7)
    assert state["switched"].item() == 1
    assert any(k.startswith("reference.decoder.") for k in state)


def test_needs_the_word_tower(tmp_path):
    csv = write_scene_csv(tmp_path / "data", 20)
    cfg = _cfg(csv, **{"model.text_tower": "scratch"})
    with pytest.raises(SelfsupError, match=r"model\.text_tower=words"):
        selfsup.pretrain(cfg, tmp_path / "run")


def test_a_source_without_captions_is_refused(tmp_path):
    cfg = selfsup.make_config(**TINY_CAPTION, **{"data.source": "digits"})
    with pytest.raises(SelfsupError, match="pair"):
        selfsup.pretrain(cfg, tmp_path / "run")


def test_a_caption_of_no_words_is_refused(tmp_path):
    captions = ["a red circle", "?!"] * 10  # some of them land in the training split
    csv = write_scene_csv(tmp_path / "data", 20, captions=captions)
    with pytest.raises(SelfsupError, match="has no words"):
        selfsup.pretrain(_cfg(csv), tmp_path / "run")


def test_bad_settings_are_refused(tmp_path):
    csv = write_scene_csv(tmp_path / "data", 20)
    for key, value in (("method.contrastive_start", 0.0), ("method.negatives", 0)):
        with pytest.raises(SelfsupError, match="contrastive_caption"):
            selfsup.pretrain(_cfg(csv, **{key: value}), tmp_path / f"run{key}")
