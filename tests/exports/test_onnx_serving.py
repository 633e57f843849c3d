"""Serving an ONNX export: `selfsup.load("model.onnx")` gives an onnxruntime encoder whose
numpy preprocessing equals the torch encoder's, and `selfsup.embed` through it equals the run's
embeddings; with torch blocked, `import selfsup`, load and embed still work."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from text.text_fixtures import CORPUS, make_tiny_bert

import selfsup
from selfsup.errors import SelfsupError
from selfsup.export import save_encoder
from selfsup.models.clip import ClipEncoder, ClipEncoderSpec
from selfsup.models.encoder import ImageEncoder, ImageEncoderSpec
from selfsup.models.series import SeriesEncoder, series_spec
from selfsup.models.text import TextEncoder, TextEncoderSpec

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

RNG = np.random.default_rng(0)
# Images as users hold them: other sizes (non-square, both larger and smaller than the
# encoder's), grey and RGB, channels first and last, uint8 and float, one image alone.
RAW_IMAGES = {
    "grey stack, wide": RNG.integers(0, 256, (5, 13, 29), dtype=np.uint8),
    "RGB channels last, tall": RNG.integers(0, 256, (4, 41, 17, 3), dtype=np.uint8),
    "RGB channels first, small": RNG.integers(0, 256, (3, 3, 6, 5), dtype=np.uint8),
    "float in [0, 1], one image": RNG.random((37, 23, 3)),
    "the encoder's own size": RNG.integers(0, 256, (6, 1, 8, 8), dtype=np.uint8),
    "a torch tensor": torch.randint(0, 256, (3, 3, 30, 11), dtype=torch.uint8),
}
SENTENCES = [
    *CORPUS,
    "a",
    "the cat sits on the mat while two dogs run through a field and children play football",
]


def onnx_export(run: Path, out: Path) -> Path:
    """The run's encoder exported to ONNX (the exporter of `selfsup export --format onnx`)."""
    return selfsup.export_encoder(run, "onnx", out)


@pytest.fixture(scope="module")
def image_export(digits_run, tmp_path_factory):
    return onnx_export(digits_run, tmp_path_factory.mktemp("image") / "onnx") / "model.onnx"


@pytest.fixture(scope="module")
def wide_encoder(tmp_path_factory):
    """An RGB encoder of non-square (20, 16) images: the resize's cover-and-crop matters."""
    torch.manual_seed(0)
    spec = ImageEncoderSpec("convnet", 3, (20, 16), False, (0.5, 0.4, 0.3), (0.2, 0.25, 0.3))
    folder = tmp_path_factory.mktemp("wide")
    save_encoder(ImageEncoder(spec).eval(), folder / "encoder")
    return folder / "encoder", onnx_export(folder / "encoder", folder / "onnx")


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), dropout=0.0)


@pytest.fixture(scope="module")
def text_export(tiny_bert, tmp_path_factory):
    """A text encoder folder (as a run exports it; unit rows by default, cut at 8 tokens)."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("text")
    spec = TextEncoderSpec(str(tiny_bert), max_length=8, normalize=True)
    save_encoder(TextEncoder(spec).eval(), folder / "encoder")
    return folder / "encoder", onnx_export(folder / "encoder", folder / "onnx")


@pytest.fixture(scope="module")
def series_export(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("series")
    save_encoder(SeriesEncoder(series_spec(2, 50)).eval(), folder / "encoder")
    return folder / "encoder", onnx_export(folder / "encoder", folder / "onnx")


@pytest.mark.parametrize("case", list(RAW_IMAGES))
def test_image_run_preprocessing_and_embeddings_equal_torchs(digits_run, image_export, case):
    raw = RAW_IMAGES[case]
    encoder, served = selfsup.load(digits_run), selfsup.load(image_export)
    assert served.modality == "image" and served.out_dim == encoder.out_dim
    pixels = served.preprocess(raw)["pixels"]
    np.testing.assert_array_equal(pixels, encoder.preprocess(raw).numpy())  # pixel for pixel
    expected = selfsup.embed(digits_run, raw)
    np.testing.assert_allclose(selfsup.embed(image_export, raw), expected, atol=1e-4, rtol=0)
    got = selfsup.embed(served, raw, batch_size=2, normalize=True)
    np.testing.assert_allclose(got, selfsup.embed(encoder, raw, normalize=True), atol=1e-4, rtol=0)


@pytest.mark.parametrize("case", list(RAW_IMAGES))
def test_non_square_encoder_resizes_as_torch_does(wide_encoder, case):
    folder, export = wide_encoder
    encoder, served = selfsup.load(folder), selfsup.load(export)
    raw = RAW_IMAGES[case]
    np.testing.assert_array_equal(served.preprocess(raw)["pixels"], encoder.preprocess(raw).numpy())
    assert served.preprocess(raw)["pixels"].shape[-2:] == (20, 16)
    np.testing.assert_allclose(
        selfsup.embed(served, raw, batch_size=3), selfsup.embed(encoder, raw), atol=1e-4, rtol=0
    )


def test_text_export_tokenizes_and_embeds_as_the_torch_encoder(text_export):
    folder, export = text_export
    encoder, served = selfsup.load(folder), selfsup.load(export)
    tokens, expected_tokens = served.preprocess(SENTENCES), encoder.preprocess(SENTENCES)
    assert set(tokens) == {"input_ids", "attention_mask"}
    for name, value in tokens.items():  # same truncation at 8 tokens, same padding
        np.testing.assert_array_equal(value, expected_tokens[name].numpy())
    assert tokens["input_ids"].shape[1] == 8
    expected = selfsup.embed(encoder, SENTENCES)
    got = selfsup.embed(served, SENTENCES, batch_size=3)
    np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)  # spec.normalize
    np.testing.assert_allclose(
        selfsup.embed(served, "a dog runs", normalize=False),
        selfsup.embed(encoder, "a dog runs", normalize=False),
        atol=1e-4,
        rtol=0,
    )


def test_a_scratch_text_tower_tokenizes_and_embeds_as_torch(tmp_path):
    """selfsup's own word tokenizer as the export rebuilds it (tokenizer.json, its pad token
    named in tokenizer_config.json): the same ids (truncation, unknown and empty text) and
    embeddings through `selfsup.embed`. The byte tower takes the same path (one case here: its
    export goes through torch.export, several seconds)."""
    from selfsup.models.captioner import WordTextSpec, build_vocabulary
    from selfsup.models.registry import build_encoder

    torch.manual_seed(0)
    vocab = build_vocabulary(["a red circle", "two blue squares", "it's one three"])
    spec = WordTextSpec(width=16, layers=2, heads=2, context=8, vocab=vocab)
    encoder = build_encoder(spec).eval()
    save_encoder(encoder, tmp_path / "encoder")
    served = selfsup.load(onnx_export(tmp_path / "encoder", tmp_path / "onnx"))
    probes = ["a red circle", "Zwei Würfel, ünïcödé ✓", "", SENTENCES[-1], "a"]
    tokens, expected = served.preprocess(probes), encoder.preprocess(probes)
    for name, value in tokens.items():
        np.testing.assert_array_equal(value, expected[name].numpy())
    np.testing.assert_allclose(
        selfsup.embed(served, probes, batch_size=2),
        selfsup.embed(encoder, probes),
        atol=1e-4,
        rtol=0,
    )


def test_series_export_embeds_as_the_torch_encoder(series_export):
    folder, export = series_export
    encoder, served = selfsup.load(folder), selfsup.load(export)
    raw = RNG.standard_normal((7, 2, 83))
    np.testing.assert_array_equal(served.preprocess(raw)["series"], encoder.preprocess(raw))
    np.testing.assert_allclose(
        selfsup.embed(served, raw, batch_size=3), selfsup.embed(encoder, raw), atol=1e-4, rtol=0
    )
    with pytest.raises(SelfsupError, match=r"series must be \(N, 2, T\)"):
        selfsup.embed(served, raw[:, 0])
    with pytest.raises(SelfsupError, match="shorter than the encoder's receptive field"):
        selfsup.embed(served, raw[:, :, :3])


def test_clip_export_embeds_strings_and_images_in_its_towers(tiny_bert, tmp_path):
    torch.manual_seed(0)
    image = ImageEncoderSpec("convnet", 1, 8, True, (0.5,), (0.2,))
    clip = ClipEncoder(ClipEncoderSpec(image, TextEncoderSpec(str(tiny_bert)), 16)).eval()
    save_encoder(clip, tmp_path / "clip")
    folder = onnx_export(tmp_path / "clip", tmp_path / "onnx")
    served = selfsup.load(folder)  # image.onnx + text.onnx
    images = RAW_IMAGES["grey stack, wide"]
    np.testing.assert_allclose(
        selfsup.embed(served, SENTENCES), selfsup.embed(clip, SENTENCES), atol=1e-4, rtol=0
    )
    np.testing.assert_allclose(
        selfsup.embed(served, images), selfsup.embed(clip, images), atol=1e-4, rtol=0
    )


def test_the_options_work_through_an_onnx_encoder(image_export, capfd):
    raw = RAW_IMAGES["grey stack, wide"]
    served = selfsup.load(image_export)
    array = selfsup.embed(served, raw, batch_size=2, show_progress_bar=True)
    assert "Batches" in capfd.readouterr().err
    tensor = selfsup.embed(served, raw, convert_to="torch", device="cpu")
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float32
    np.testing.assert_allclose(tensor.numpy(), array, atol=1e-6, rtol=0)
    unit = selfsup.embed(served, raw, normalize=True)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)
    with pytest.raises(SelfsupError, match="convert_to must be one of"):
        selfsup.embed(served, raw, convert_to="list")
    import onnxruntime

    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        with pytest.raises(SelfsupError, match="needs onnxruntime's CUDA provider"):
            selfsup.embed(served, raw, device="cuda")
    with pytest.raises(SelfsupError, match="unknown device 'tpu'"):
        selfsup.embed(served, raw, device="tpu")


NO_TORCH = """
import json, sys
sys.modules["torch"] = None  # any `import torch` now fails
import numpy as np
import selfsup
assert sys.modules["torch"] is None
image = selfsup.load(sys.argv[1])
text = selfsup.load(sys.argv[2])
images = np.load(sys.argv[3])
sentences = json.loads(sys.argv[4])
np.save(sys.argv[5], selfsup.embed(image, images, batch_size=2))
np.save(sys.argv[6], selfsup.embed(text, sentences, batch_size=2, normalize=False))
try:
    selfsup.embed(image, images, convert_to="torch")
except selfsup.SelfsupError as error:
    print("convert_to torch:", error)
assert sys.modules["torch"] is None
heavy = sorted(m for m in ("transformers", "torchvision", "timm", "sklearn") if m in sys.modules)
print("imported:", heavy)
"""


def test_serving_an_onnx_export_needs_no_torch(digits_run, image_export, text_export, tmp_path):
    images = RAW_IMAGES["RGB channels last, tall"]
    np.save(tmp_path / "images.npy", images)
    src = Path(selfsup.__file__).parents[1]  # the selfsup under test
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]),
    }
    args = [image_export, text_export[1], tmp_path / "images.npy", json.dumps(SENTENCES)]
    outs = [tmp_path / "image.npy", tmp_path / "text.npy"]
    done = subprocess.run(
        [sys.executable, "-c", NO_TORCH, *map(str, args), *map(str, outs)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "convert_to torch: convert_to='torch' needs torch" in done.stdout
    assert "imported: []" in done.stdout
    np.testing.assert_allclose(
        np.load(outs[0]), selfsup.embed(digits_run, images), atol=1e-4, rtol=0
    )
    np.testing.assert_allclose(
        np.load(outs[1]),
        selfsup.embed(text_export[0], SENTENCES, normalize=False),
        atol=1e-4,
        rtol=0,
    )


def test_import_selfsup_imports_no_torch():
    done = subprocess.run(
        [sys.executable, "-c", "import sys, selfsup; print(sorted({'torch'} & set(sys.modules)))"],
        env={**os.environ, "PYTHONPATH": str(Path(selfsup.__file__).parents[1])},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "[]", done.stderr


def test_a_missing_or_corrupt_onnx_file_is_one_clear_error(tmp_path):
    with pytest.raises(SelfsupError, match="does not exist"):
        selfsup.load(tmp_path / "absent.onnx")
    corrupt = tmp_path / "model.onnx"
    corrupt.write_bytes(b"this is not a protobuf graph")
    with pytest.raises(SelfsupError, match="is not a readable ONNX graph"):
        selfsup.load(corrupt)
    with pytest.raises(SelfsupError, match="is not a readable ONNX graph"):
        selfsup.embed(tmp_path, np.zeros((1, 8, 8), np.uint8))  # the folder holding it


def test_what_needs_the_torch_encoder_says_an_onnx_export_is_not_one(image_export):
    from selfsup.export import load

    with pytest.raises(SelfsupError, match=r"is an ONNX export, which `selfsup\.load`"):
        load(image_export)
    with pytest.raises(SelfsupError, match="is an ONNX export"):
        load(image_export.parent)


def test_an_onnx_graph_that_selfsup_did_not_write_is_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Identity", ["pixels"], ["embedding"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [None, 4])],
    )
    onnx.save(helper.make_model(graph), tmp_path / "other.onnx")
    with pytest.raises(SelfsupError, match="not a selfsup export"):
        selfsup.load(tmp_path / "other.onnx")


def test_text_given_to_an_image_graph_and_images_to_a_text_graph_are_refused(
    image_export, text_export
):
    with pytest.raises(SelfsupError, match="this is an image encoder; pass images"):
        selfsup.embed(image_export, ["a sentence"])
    with pytest.raises(SelfsupError, match="this is a text encoder; pass a list of strings"):
        selfsup.embed(text_export[1], RAW_IMAGES["grey stack, wide"])
    with pytest.raises(SelfsupError, match="images must be uint8 or float"):
        selfsup.embed(image_export, np.zeros((2, 8, 8), np.int64))
    with pytest.raises(SelfsupError, match=r"float images must hold values in \[0, 1\]"):
        selfsup.embed(image_export, np.full((2, 8, 8), 2.0))
    with pytest.raises(SelfsupError, match="no samples to embed"):
        selfsup.embed(image_export, np.zeros((0, 8, 8), np.uint8))
    with pytest.raises(SelfsupError, match="no sentences to embed"):
        selfsup.embed(text_export[1], [])
