"""--format sentence-transformers: the folder SentenceTransformer loads gives selfsup's
embeddings, and what it cannot express is refused."""

import dataclasses
import json

import numpy as np
import pytest

import selfsup
from selfsup.errors import SelfsupError
from selfsup.export import save_encoder
from selfsup.exports.export import export
from selfsup.models.text import TextEncoder, folder_settings

SENTENCES = [
    "a man is playing a guitar",
    "the cat sits on the mat",
    "children are playing football outside in the park with two dogs and a ball",
    "zebra",  # a word the tiny vocabulary splits or does not know
]


def _variant(source, target, **changes):
    """A copy of the encoder folder `source` whose spec has `changes` (same weights)."""
    encoder = selfsup.load(source)
    variant = TextEncoder(
        dataclasses.replace(encoder.spec, **changes),
        model=encoder.model,
        tokenizer=encoder.tokenizer,
    )
    save_encoder(variant, target)
    return target


def _st_embeddings(folder):
    st = pytest.importorskip("sentence_transformers")
    model = st.SentenceTransformer(str(folder), device="cpu")
    return model, model.encode(SENTENCES, convert_to_numpy=True)


def test_sentence_transformers_loads_the_export_and_gives_selfsup_embeddings(
    text_encoder_dir, tmp_path
):
    folder = export(text_encoder_dir, "sentence-transformers", tmp_path / "st")
    modules = json.loads((folder / "modules.json").read_text())
    assert [m["path"] for m in modules] == ["", "1_Pooling", "2_Normalize"]
    model, got = _st_embeddings(folder)
    assert model.max_seq_length == 12
    want = selfsup.embed(text_encoder_dir, SENTENCES)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)  # the Normalize module
    # selfsup reads its own export back as the same pooling, normalisation and length
    settings = folder_settings(folder)
    assert (settings.pooling, settings.normalize, settings.max_length) == ("mean", True, 12)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_each_pooling_and_no_normalisation_match(text_encoder_dir, tmp_path, pooling):
    run = _variant(text_encoder_dir, tmp_path / "run", pooling=pooling, normalize=False)
    folder = export(run, "sentence-transformers", tmp_path / "st")
    assert not (folder / "2_Normalize").exists()
    _, got = _st_embeddings(folder)
    want = selfsup.embed(run, SENTENCES)
    assert not np.allclose(np.linalg.norm(want, axis=1), 1)  # unnormalised, as the run's
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_a_causal_encoder_stays_causal_in_sentence_transformers(text_encoder_dir, tmp_path):
    run = _variant(text_encoder_dir, tmp_path / "run", causal=True)
    folder = export(run, "sentence-transformers", tmp_path / "st")
    _, got = _st_embeddings(folder)
    want = selfsup.embed(run, SENTENCES)
    assert not np.allclose(want, selfsup.embed(text_encoder_dir, SENTENCES), atol=1e-3)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_a_pooling_sentence_transformers_lacks_is_refused(text_encoder_dir, tmp_path):
    run = _variant(text_encoder_dir, tmp_path / "run", pooling="first-last-avg")
    with pytest.raises(SelfsupError, match=r"first-last-avg.*--format onnx"):
        export(run, "sentence-transformers", tmp_path / "st")
    assert not (tmp_path / "st").exists()


def test_a_non_text_encoder_is_refused_naming_the_formats_that_fit(digits_run, tmp_path):
    with pytest.raises(SelfsupError, match=r"kind 'image'.*--format onnx"):
        export(digits_run, "sentence-transformers", tmp_path / "st")
