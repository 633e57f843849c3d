"""selfsup.embed's options, with sentence-transformers' meanings, on every modality: images, text,
series, CLIP (strings to the text tower, images to the image tower) and word vectors."""

import logging

import numpy as np
import pytest
import torch
from text.text_fixtures import CORPUS, make_tiny_bert

import selfsup
from selfsup.data.words import Vocabulary
from selfsup.errors import SelfsupError
from selfsup.export import save_encoder
from selfsup.models.clip import ClipEncoder, ClipEncoderSpec
from selfsup.models.encoder import ImageEncoder, ImageEncoderSpec
from selfsup.models.series import SeriesEncoder, series_spec
from selfsup.models.text import TextEncoder, TextEncoderSpec
from selfsup.models.word_vectors import WordVectors, WordVectorsSpec

IMAGE_SPEC = ImageEncoderSpec("convnet", 1, 8, True, (0.5,), (0.2,))
SENTENCES = [*CORPUS, "a dog", "the cat sits on the mat and the dog runs in the park outside"]


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), dropout=0.0)


@pytest.fixture(scope="module")
def encoders(tiny_bert):
    """(encoder, raw input) of each modality, built from specs in well under a second."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (11, 8, 8), dtype=np.uint8)
    series = rng.standard_normal((9, 1, 40)).astype(np.float32)
    words = ("the", "cat", "dog", "sits", "runs", "park", "mat", "on", "in", "a")
    table = WordVectors(WordVectorsSpec(dim=6, vocabulary=Vocabulary(words, (9,) * 10)))
    clip = ClipEncoder(ClipEncoderSpec(IMAGE_SPEC, TextEncoderSpec(str(tiny_bert)), 16))
    return {
        "image": (ImageEncoder(IMAGE_SPEC).eval(), images),
        "text": (TextEncoder(TextEncoderSpec(str(tiny_bert))).eval(), SENTENCES),
        "series": (SeriesEncoder(series_spec(1, 40)).eval(), series),
        "clip-text": (clip.eval(), SENTENCES),
        "clip-image": (clip, images),
        "word-vectors": (table.eval(), ["the cat sits on the mat", "a dog runs in the park"] * 3),
    }


MODALITIES = ["image", "text", "series", "clip-text", "clip-image", "word-vectors"]


@pytest.mark.parametrize("modality", MODALITIES)
def test_batch_size_does_not_change_the_embeddings(encoders, modality):
    encoder, raw = encoders[modality]
    whole = selfsup.embed(encoder, raw)
    assert isinstance(whole, np.ndarray) and whole.dtype == np.float32
    assert whole.shape == (len(raw), encoder.out_dim)
    for batch_size in (1, 4):
        np.testing.assert_allclose(
            selfsup.embed(encoder, raw, batch_size=batch_size), whole, atol=1e-5, rtol=0
        )


def test_clip_embeds_strings_with_its_text_tower_and_images_with_its_image_tower(encoders):
    clip, images = encoders["clip-image"]
    with torch.no_grad():
        text = clip.encode_text(SENTENCES).numpy()
        image = clip.encode_image(clip.preprocess(images)).numpy()
    np.testing.assert_allclose(selfsup.embed(clip, SENTENCES), text, atol=1e-5, rtol=0)
    np.testing.assert_allclose(selfsup.embed(clip, images), image, atol=1e-5, rtol=0)


@pytest.mark.parametrize("modality", MODALITIES)
def test_normalize_gives_unit_rows_and_false_gives_the_forward(encoders, modality):
    encoder, raw = encoders[modality]
    unit = selfsup.embed(encoder, raw, normalize=True)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)
    plain = selfsup.embed(encoder, raw, normalize=False)
    assert not np.allclose(np.linalg.norm(plain, axis=1), 1.0, atol=1e-3)
    np.testing.assert_allclose(
        unit, plain / np.linalg.norm(plain, axis=1, keepdims=True), atol=1e-6, rtol=0
    )
    # None: the encoder's own default (these specs say nothing, so the forward's rows)
    np.testing.assert_array_equal(selfsup.embed(encoder, raw), plain)


def test_normalize_none_follows_the_text_encoders_spec(tiny_bert):
    unit_by_default = TextEncoder(TextEncoderSpec(str(tiny_bert), normalize=True)).eval()
    rows = selfsup.embed(unit_by_default, SENTENCES)
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    plain = selfsup.embed(unit_by_default, SENTENCES, normalize=False)
    assert np.linalg.norm(plain, axis=1).min() > 1.5  # a tiny BERT's mean pooling: not unit


@pytest.mark.parametrize("modality", ["image", "text", "series"])
def test_convert_to_torch_gives_the_same_values_as_one_tensor(encoders, modality):
    encoder, raw = encoders[modality]
    array = selfsup.embed(encoder, raw, normalize=True)
    tensor = selfsup.embed(encoder, raw, normalize=True, convert_to="torch")
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float32
    assert tensor.device.type == "cpu" and not tensor.requires_grad
    np.testing.assert_allclose(tensor.numpy(), array, atol=1e-6, rtol=0)


def test_show_progress_bar_writes_a_tqdm_bar_to_stderr_and_none_when_false(encoders, capfd):
    encoder, raw = encoders["image"]
    selfsup.embed(encoder, raw, batch_size=4, show_progress_bar=True)
    out, err = capfd.readouterr()
    assert "Batches" in err and "3/3" in err and out == ""
    selfsup.embed(encoder, raw, batch_size=4, show_progress_bar=False)
    assert capfd.readouterr() == ("", "")


def test_show_progress_bar_none_follows_the_selfsup_loggers_level(encoders, capfd):
    encoder, raw = encoders["text"]
    logger = logging.getLogger("selfsup")
    before = logger.level
    try:
        logger.setLevel(logging.WARNING)
        selfsup.embed(encoder, raw, batch_size=4)
        assert capfd.readouterr().err == ""
        logger.setLevel(logging.INFO)
        selfsup.embed(encoder, raw, batch_size=4)
        assert "Batches" in capfd.readouterr().err
    finally:
        logger.setLevel(before)


def test_device_none_keeps_the_encoder_where_it_is_and_a_device_moves_it(encoders):
    encoder, raw = encoders["series"]
    assert selfsup.embed(encoder, raw, device=None).shape == (9, encoder.out_dim)
    assert next(encoder.parameters()).device.type == "cpu"
    tensor = selfsup.embed(encoder, raw, device="cpu", convert_to="torch")
    assert tensor.device.type == "cpu"


def test_a_device_that_is_not_there_is_one_clear_error(encoders, tmp_path):
    encoder, raw = encoders["image"]
    save_encoder(encoder, tmp_path / "encoder")
    for given in (encoder, tmp_path / "encoder"):  # an encoder, or a path loaded there
        with pytest.raises(SelfsupError, match="unknown device 'gpu0'"):
            selfsup.embed(given, raw, device="gpu0")
        if not torch.cuda.is_available():
            with pytest.raises(SelfsupError, match="no CUDA GPU"):
                selfsup.embed(given, raw, device="cuda")


@pytest.mark.parametrize(
    ("option", "match"),
    [
        ({"batch_size": 0}, "batch_size must be a positive integer, got 0"),
        ({"batch_size": -3}, "batch_size must be a positive integer"),
        ({"batch_size": 2.5}, "batch_size must be a positive integer, got 2.5"),
        ({"batch_size": True}, "batch_size must be a positive integer"),
        ({"normalize": "yes"}, "normalize must be True, False or None"),
        ({"show_progress_bar": 1.0}, "show_progress_bar must be True, False or None"),
        ({"convert_to": "list"}, "convert_to must be one of 'numpy', 'torch', got 'list'"),
        ({"convert_to": None}, "convert_to must be one of"),
    ],
)
def test_a_bad_option_is_one_clear_error_before_any_input_is_read(option, match):
    # the encoder and the input are not even valid: the option is checked first
    with pytest.raises(SelfsupError, match=match):
        selfsup.embed("/nonexistent/run", object(), **option)
