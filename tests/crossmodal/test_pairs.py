"""Image-caption sources, the clip encoder kind (export / load round trip with both towers'
assets), zero-shot and recall figures, and CLIP's exact resume."""

import method_harness
import pytest
import torch
from method_harness import assert_resume_exact
from pair_fixtures import CLASSES, write_caption_csv, write_class_folders

import selfsup
from selfsup.data import load_data
from selfsup.data.pairs import EVAL_TEMPLATES, TRAIN_TEMPLATES
from selfsup.errors import SelfsupError
from selfsup.evaluate.crossmodal import recall_at_k
from selfsup.evaluate.zeroshot import zeroshot_accuracy


def test_caption_csv_and_sidecar_folder(tmp_path):
    csv = write_caption_csv(tmp_path / "csv", 6)
    data = load_data(f"captions:{csv}").train
    assert data.images.shape == (6, 3, 16, 16) and data.images.dtype == torch.uint8
    assert data.captions[1] == "a green square, number 1" and data.labels is None
    (tmp_path / "csv" / "img" / "2.txt").write_text("a  blue\nsquare\n")
    side = load_data(f"captions:{tmp_path / 'csv' / 'img'}").train
    assert side.captions == ["a blue square"]
    (tmp_path / "bad.csv").write_text("x.png\n")
    with pytest.raises(SelfsupError, match="two columns"):
        load_data(f"captions:{tmp_path / 'bad.csv'}")


def test_cifar_captions_keep_evaluation_templates_out_of_training(tmp_path):
    root = write_class_folders(tmp_path / "cc", 8, 3)
    splits = load_data(f"cifar-captions:{root}")
    train, test = splits.train, splits.test
    assert train.classes == sorted(CLASSES) and len(train) == 32 and len(test) == 12
    cases = ((train, TRAIN_TEMPLATES, EVAL_TEMPLATES), (test, EVAL_TEMPLATES, ()))
    for data, used, unused in cases:
        for caption, label in zip(data.captions, data.labels.tolist(), strict=True):
            name = data.classes[label]
            assert any(t.format(name) == caption for t in used)
            assert not any(t.format(name) == caption for t in unused)
    assert test.templates == EVAL_TEMPLATES


def test_recall_and_zeroshot_against_hand_counts():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    c = torch.tensor([[1.0, 0.1], [1.0, 0.0], [0.7, 0.7]])
    # query 0: own 0.995 beaten by c1 (1.0) -> rank 1; query 1: own 0 beaten by c0 and c2 -> 2;
    # query 2: own 1.0 (cosine) best -> 0
    assert recall_at_k(q, c, (1, 2, 3)) == {1: pytest.approx(1 / 3), 2: pytest.approx(2 / 3), 3: 1}
    weights = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert zeroshot_accuracy(q[:2], weights, torch.tensor([0, 0])) == 0.5


def run_overrides(bert, source: str) -> dict:
    return {
        "method.name": "clip",
        "data.source": source,
        "model.path": str(bert),
        "model.embed_dim": 16,
        "optim.name": "adamw",
        "optim.lr": 1e-3,
        "train.batch_size": 16,
    }


def test_clip_resumes_exactly(tmp_path, monkeypatch, tiny_bert):
    csv = write_caption_csv(tmp_path / "csv", 64)
    # Ctrl-C in epoch 2 of the pairs trained on: the 64 less the 13 held out (heldout.json)
    monkeypatch.setattr(method_harness, "DIGITS_TRAIN", 51)
    state = assert_resume_exact(
        tmp_path / "runs", monkeypatch, run_overrides(tiny_bert, f"captions:{csv}")
    )
    assert "logit_scale" in state and any(k.startswith("encoder.text.") for k in state)


def test_export_load_round_trip_embeds_images_and_text(tmp_path, tiny_bert):
    root = write_class_folders(tmp_path / "cc", 6, 2)
    cfg = selfsup.make_config(
        **(
            method_harness.FAST
            | run_overrides(tiny_bert, f"cifar-captions:{root}")
            | {"train.epochs": 1, "eval.protocols": "zeroshot,image_text_retrieval"}
        )
    )
    result = selfsup.pretrain(cfg, tmp_path / "run")
    row = result.evaluation["selfsup"]
    assert 0 <= row["zeroshot_top1"] <= 1 and row["i2t_r@10"] >= row["i2t_r@1"]
    assert result.evaluation["raw_pixels"] == {}  # no text side: no cross-modal figures
    loaded = selfsup.load(tmp_path / "run")
    encoder = result.encoder.eval()
    loaded.eval()
    images = load_data(f"cifar-captions:{root}").test.images
    with torch.no_grad():
        assert torch.allclose(loaded(loaded.preprocess(images)), encoder(images), atol=1e-5)
        a = loaded.encode_text(["a photo of a red thing", "blue"])
        b = encoder.encode_text(["a photo of a red thing", "blue"])
    assert a.shape == (2, 16) and torch.allclose(a, b, atol=1e-5)
    with pytest.raises(SelfsupError):
        loaded.preprocess(torch.zeros(2, 2, 5, 5, 5))
    # text-to-image search over the run's images, and the CLI's embed of a pair run
    from selfsup.cli import main
    from selfsup.search import build_index, search

    build_index(tmp_path / "run")
    found = search(tmp_path / "run", "a photo of a red", k=3)
    assert len(found) == 3 and all(isinstance(i, str) for i, _ in found)
    assert main(["embed", str(tmp_path / "run"), "--out", str(tmp_path / "f.npy")]) == 0
