"""CLIP is not scored on the pairs it trained on (issue 18, item 2): a captions CSV or caption
folder has no test split, so 20 % of its pairs are held out before training, recorded in
heldout.json like a labelled source's; fewer than 10 pairs are not split, and image-text
retrieval on them is refused with the reason."""

import json

import method_harness
import pytest
from pair_fixtures import write_caption_csv
from test_clip_scratch import SMALL

import selfsup
from selfsup.errors import SelfsupError


def config(source, **extra):
    return selfsup.make_config(
        **(
            method_harness.FAST
            | SMALL
            | {"data.source": source, "train.epochs": 1, "train.batch_size": 8}
            | extra
        )
    )


def test_caption_pairs_are_held_out_before_training(tmp_path):
    csv = write_caption_csv(tmp_path / "caps", 40)
    cfg = config(f"captions:{csv}", **{"eval.protocols": "image_text_retrieval"})
    result = selfsup.pretrain(cfg, tmp_path / "run")
    held = json.loads((tmp_path / "run" / "heldout.json").read_text())
    assert held["count"] == 40 and len(held["test"]) == 8
    assert "8 samples held out of train before training" in result.evaluation["queries"]
    for value in result.evaluation["selfsup"].values():
        assert round(value * 8, 6) == round(value * 8)  # a fraction of the 8 held-out pairs
    again = selfsup.evaluate(tmp_path / "run")
    assert again["selfsup"] == result.evaluation["selfsup"]


def test_too_few_pairs_refuse_image_text_retrieval_on_training_pairs(tmp_path):
    csv = write_caption_csv(tmp_path / "caps", 8)
    asked = config(f"captions:{csv}", **{"eval.protocols": "image_text_retrieval"})
    with pytest.raises(
        SelfsupError, match=r"cannot run.*pairs are the ones the encoder trained on.*8 samples"
    ):
        selfsup.pretrain(asked, tmp_path / "asked")
    assert not (tmp_path / "asked").exists()
    result = selfsup.pretrain(config(f"captions:{csv}", **{"eval.protocols": None}), tmp_path / "r")
    assert "image_text_retrieval" in result.evaluation["skipped"]
    assert "i2t_r@1" not in result.evaluation["selfsup"]
    assert not (tmp_path / "r" / "heldout.json").exists()
