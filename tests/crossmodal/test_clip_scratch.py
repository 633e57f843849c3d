"""CLIP with the from-scratch text tower (`model.text_tower=scratch`): the byte tokenizer, the
causal end-of-text pooling, a few training steps on the caption fixtures, the export / load
round trip (same image and text embeddings, text-to-image search), exact resume, and (slow)
zero-shot accuracy above chance on the synthetic caption demo."""

import json

import method_harness
import pytest
import torch
from method_harness import assert_resume_exact
from pair_fixtures import TINY_CLIP, write_caption_csv, write_class_folders

import selfsup
from selfsup.data import load_data
from selfsup.errors import SelfsupError
from selfsup.models.clip import ClipEncoder, ClipEncoderSpec
from selfsup.models.encoder import ImageEncoderSpec
from selfsup.models.text_scratch import EOT, PAD, SOT, ScratchTextEncoder, ScratchTextSpec

SMALL = TINY_CLIP | {"train.batch_size": 16}


def test_byte_tokenizer_by_hand():
    tower = ScratchTextEncoder(ScratchTextSpec(width=8, layers=1, heads=2, context=5))
    batch = tower.preprocess(["ab", "é", "abcdef"])
    a, b = ord("a") + 3, ord("b") + 3
    # é is two UTF-8 bytes (0xC3 0xA9); "abcdef" is cut to 3 bytes and still ends with EOT
    assert batch["input_ids"].tolist() == [
        [SOT, a, b, EOT, PAD],
        [SOT, 0xC3 + 3, 0xA9 + 3, EOT, PAD],
        [SOT, a, b, ord("c") + 3, EOT],
    ]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 0], [1, 1, 1, 1, 0], [1] * 5]
    assert tower.tokenize_all(["a"])["input_ids"].shape == (1, 5)
    with pytest.raises(SelfsupError, match="list of strings"):
        tower.preprocess(torch.zeros(3))
    with pytest.raises(SelfsupError, match="divisible"):
        ScratchTextSpec(width=10, heads=4)


def test_features_are_the_causal_end_of_text_token():
    torch.manual_seed(0)
    tower = ScratchTextEncoder(ScratchTextSpec(width=16, layers=2, heads=2, context=20)).eval()
    with torch.no_grad():
        cat = tower.preprocess(["cat"])  # SOT c a t EOT
        features = tower(cat)
        padded = tower(tower.tokenize_all(["cat", "a much longer one"]))
        tokens = tower.forward_features(cat)["token_states"]
        longer = tower.forward_features(tower.preprocess(["cat and more"]))["token_states"]
    assert torch.allclose(features, padded[:1], atol=1e-5)  # padding changes nothing
    assert torch.allclose(features, tokens[:, 4], atol=1e-6)  # the EOT position's output
    # causal: SOT c a t see nothing of what follows them
    assert torch.allclose(longer[:, :4], tokens[:, :4], atol=1e-5)
    assert not torch.allclose(longer[:, 4], tokens[:, 4], atol=1e-3)


def test_trains_a_few_steps_and_round_trips(tmp_path):
    root = write_class_folders(tmp_path / "cc", 6, 2)
    cfg = selfsup.make_config(
        **(
            method_harness.FAST
            | SMALL
            | {
                "data.source": f"cifar-captions:{root}",
                "train.batch_size": 8,
                "train.epochs": 2,
                "eval.protocols": "zeroshot,image_text_retrieval,knn",
            }
        )
    )
    result = selfsup.pretrain(cfg, tmp_path / "run")
    row = result.evaluation["selfsup"]
    assert 0 <= row["zeroshot_top1"] <= 1 and row["i2t_r@10"] >= row["i2t_r@1"]
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    steps = [m for m in map(json.loads, lines) if "loss" in m]
    assert steps and all(torch.isfinite(torch.tensor(m["loss"])) for m in steps)
    # no text assets: the spec alone rebuilds the tower
    assert not (tmp_path / "run" / "text_encoder").exists()
    loaded = selfsup.load(tmp_path / "run").eval()
    encoder = result.encoder.eval()
    assert isinstance(loaded.text, ScratchTextEncoder)
    images = load_data(f"cifar-captions:{root}").test.images
    captions = ["a photo of a red thing", "blue", "ünïcode and a sentence longer than " * 4]
    with torch.no_grad():
        assert torch.allclose(loaded(loaded.preprocess(images)), encoder(images), atol=1e-5)
        a, b = loaded.encode_text(captions), encoder.encode_text(captions)
    assert a.shape == (3, 16) and torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(a[0], a[1])
    from selfsup.search import build_index, search

    build_index(tmp_path / "run")
    found = search(tmp_path / "run", "a photo of a red", k=3)
    assert len(found) == 3


def test_scratch_tower_needs_no_model_path_and_rejects_unknown_towers(tmp_path):
    root = write_class_folders(tmp_path / "cc", 4, 1)
    cfg = selfsup.make_config(
        **(method_harness.FAST | SMALL | {"data.source": f"cifar-captions:{root}"})
        | {"model.text_tower": "bert"}
    )
    with pytest.raises(SelfsupError, match=r"model\.text_tower"):
        selfsup.pretrain(cfg, tmp_path / "bad")
    image = ImageEncoderSpec("convnet", 3, 16, True, (0.5,) * 3, (0.25,) * 3)
    spec = ClipEncoderSpec(image, ScratchTextSpec(width=8, heads=2))
    again = ClipEncoderSpec.from_dict(spec.to_dict())
    assert again == spec and isinstance(ClipEncoder(again).text, ScratchTextEncoder)


def test_clip_scratch_resumes_exactly(tmp_path, monkeypatch):
    csv = write_caption_csv(tmp_path / "csv", 64)
    # Ctrl-C in epoch 2 of the pairs trained on: the 64 less the 13 held out (heldout.json)
    monkeypatch.setattr(method_harness, "DIGITS_TRAIN", 51)
    state = assert_resume_exact(
        tmp_path / "runs", monkeypatch, SMALL | {"data.source": f"captions:{csv}"}
    )
    assert "logit_scale" in state and any(k.startswith("encoder.text.transformer") for k in state)


@pytest.mark.slow
def test_clip_scratch_zero_shot_beats_chance(tmp_path):
    """The synthetic caption demo (4 colour classes, 64 training images each), zero-shot on
    held-out images with prompts from templates training never saw: chance is 25 %."""
    root = write_class_folders(tmp_path / "cc", 64, 16)
    cfg = selfsup.make_config(
        **(
            method_harness.FAST
            | SMALL
            | {
                "data.source": f"cifar-captions:{root}",
                "model.text_width": 64,
                "model.embed_dim": 32,
                "optim.lr": 2e-3,
                "train.batch_size": 32,
                "train.epochs": 15,
                "eval.protocols": "zeroshot,image_text_retrieval",
            }
        )
    )
    result = selfsup.pretrain(cfg, tmp_path / "run")
    learned = result.evaluation["selfsup"]["zeroshot_top1"]
    untrained = result.evaluation["random"]["zeroshot_top1"]
    print(f"zero-shot top-1: learned {learned:.3f}, untrained {untrained:.3f}")
    assert learned > 0.25 + 0.25 and learned > untrained + 0.15
