"""`selfsup export RUN --format onnx`: every encoder kind's graph gives torch's embeddings under
onnxruntime (1e-4 in fp32, FP16 below in fp16) at other batch sizes (and lengths) than the one
traced, with the contract's metadata; kinds ONNX cannot take get one clear error.

Encoders are built from their specs (random weights, BatchNorm statistics set away from their
defaults so that eval-mode normalisation is exercised) and saved as a run folder."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from selfsup.cli import main  # noqa: E402
from selfsup.errors import SelfsupError  # noqa: E402
from selfsup.export import load, save_encoder  # noqa: E402
from selfsup.exports.export import export  # noqa: E402
from selfsup.models.registry import build_encoder  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "text"))
from text_fixtures import make_tiny_bert  # noqa: E402

FP32 = 1e-4
FP16 = 2e-2  # of the embeddings' largest magnitude (measured: docs/export.md)


def _run(encoder, folder: Path) -> Path:
    """A folder that looks like a finished run holding `encoder`."""
    torch.manual_seed(1)
    for module in encoder.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    save_encoder(encoder, folder)
    return folder


def _session(path: Path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _props(path: Path) -> dict:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def _embed(session, feeds: dict) -> np.ndarray:
    return session.run(["embedding"], {k: v.numpy() for k, v in feeds.items()})[0]


def _torch(encoder, x) -> np.ndarray:
    with torch.no_grad():
        return encoder(x).float().numpy()


def _assert_close(got: np.ndarray, want: np.ndarray, fp16: bool = False) -> None:
    assert got.shape == want.shape and got.dtype == np.float32
    limit = FP16 * max(1.0, float(np.abs(want).max())) if fp16 else FP32
    assert float(np.abs(got - want).max()) <= limit


def _check_images(run: Path, out: Path, kind: str, fp16: bool = False) -> dict:
    """Export, then compare onnxruntime with torch on 1 and 5 images; returns the metadata."""
    folder = export(run, "onnx", out, fp16=fp16)
    graph = folder / "model.onnx"
    encoder = load(run)
    props = _props(graph)
    pre = json.loads(props["selfsup.preprocess"])
    assert props["selfsup.format"] == "selfsup-onnx/1" and props["selfsup.kind"] == kind
    assert props["selfsup.modality"] == "image" and pre["input"] == "pixels"
    assert props["selfsup.out_dim"] == str(encoder.out_dim)
    assert json.loads(props["selfsup.spec"]) == json.loads(json.dumps(encoder.spec.to_dict()))
    assert pre["range"] == [0, 1] and pre["resize"] == "shorter side, centre crop"
    assert len(pre["mean"]) == len(pre["std"])
    session = _session(graph)
    h, w = pre["image_size"]
    generator = torch.Generator().manual_seed(7)
    for n in (1, 5):
        pixels = torch.rand(n, pre["channels"], h, w, generator=generator)
        _assert_close(_embed(session, {"pixels": pixels}), _torch(encoder, pixels), fp16)
    return props


def _image_spec(backbone: str, channels: int = 3, size: int = 32, **kw):
    from selfsup.models.encoder import ImageEncoderSpec

    mean, std = (0.4,) * channels, (0.25,) * channels
    return ImageEncoderSpec(backbone, channels, size, True, mean, std, **kw)


@pytest.mark.parametrize(
    "backbone,channels,size",
    [
        ("convnet", 1, 8),
        ("resnet18", 3, 32),
        ("vit-mini-p8", 3, 32),
        ("vae-conv", 1, 28),
        ("vqvae", 3, 32),
        ("dcgan", 3, 32),
    ],
)
def test_image_backbones_match_torch(tmp_path, backbone, channels, size):
    encoder = build_encoder(_image_spec(backbone, channels, size))
    props = _check_images(_run(encoder, tmp_path / "run"), tmp_path / "onnx", "image")
    pre = json.loads(props["selfsup.preprocess"])
    assert pre["image_size"] == [size, size] and pre["mean"] == [0.4] * channels


def test_image_encoder_with_head_layers_and_lightness_input(tmp_path):
    spec = _image_spec("convnet", 3, 16, head_dims=(24,), lightness=True)
    spec = type(spec)(**{**spec.__dict__, "mean": (0.5,), "std": (0.3,)})
    props = _check_images(_run(build_encoder(spec), tmp_path / "r"), tmp_path / "o", "image")
    assert props["selfsup.out_dim"] == "24"


def test_multiview_lab_encoder(tmp_path):
    from selfsup.models.multiview import MultiViewEncoderSpec

    spec = MultiViewEncoderSpec.from_image_spec(_image_spec("convnet", 3, 16), "lab")
    props = _check_images(_run(build_encoder(spec), tmp_path / "r"), tmp_path / "o", "multiview")
    assert "Lab" in json.loads(props["selfsup.preprocess"])["colour"]


def test_cyclegan_encoder(tmp_path):
    from selfsup.models.cyclegan import CycleGANEncoderSpec

    base = _image_spec("convnet", 3, 16)
    spec = CycleGANEncoderSpec(**base.__dict__, width=8, down=2, blocks=1)
    props = _check_images(_run(build_encoder(spec), tmp_path / "r"), tmp_path / "o", "cyclegan")
    assert json.loads(props["selfsup.preprocess"])["mean"] == [0.5] * 3


@pytest.mark.parametrize("kind", ["rbm", "nade"])
def test_binary_density_encoders(tmp_path, kind):
    from selfsup.models.registry import spec_class

    spec = spec_class(kind).from_dict({"image_size": [8, 8], "hidden": 16})
    encoder = build_encoder(spec)
    with torch.no_grad():
        for p in encoder.parameters():
            p.normal_(0, 0.5)
    props = _check_images(_run(encoder, tmp_path / "r"), tmp_path / "o", kind)
    assert "binarise" in json.loads(props["selfsup.preprocess"])


def test_mahalanobis_on_pixels(tmp_path):
    from selfsup.models.mahalanobis import MahalanobisSpec

    spec = MahalanobisSpec(1, (8, 8), (0.3,), (0.2,), 5)
    _check_images(_run(build_encoder(spec), tmp_path / "r"), tmp_path / "o", "mahalanobis")


def test_mahalanobis_on_a_frozen_image_encoder(tmp_path):
    from selfsup.models.mahalanobis import MahalanobisSpec

    base = _run(build_encoder(_image_spec("convnet", 3, 16)), tmp_path / "base")
    spec = MahalanobisSpec(3, (16, 16), (0.4,) * 3, (0.25,) * 3, 6, features=str(base))
    props = _check_images(_run(build_encoder(spec), tmp_path / "r"), tmp_path / "o", "mahalanobis")
    assert json.loads(props["selfsup.preprocess"])["mean"] == [0.4] * 3


def test_cswm_world_model_states(tmp_path):
    from selfsup.models.cswm import CswmSpec

    spec = CswmSpec(3, (20, 20), num_actions=8, num_objects=2, embedding_dim=3, hidden_dim=16)
    _check_images(_run(build_encoder(spec), tmp_path / "r"), tmp_path / "o", "cswm")


def test_adain_image_content_encoder(tmp_path):
    from selfsup.models.adain import AdainSpec

    spec = AdainSpec("image", "content", 1, 16, width=8, blocks=2, content_channels=4)
    _check_images(_run(build_encoder(spec), tmp_path / "r"), tmp_path / "o", "adain")


def _series_specs():
    from selfsup.models.adain import AdainSpec
    from selfsup.models.series import series_spec
    from selfsup.models.ts2vec import Ts2VecSpec
    from selfsup.models.tstcc import TSTCCEncoderSpec

    return {
        "series": series_spec(2, 200),
        "ts2vec": Ts2VecSpec(2, hidden_dims=8, output_dims=16, depth=3),
        "tstcc": TSTCCEncoderSpec(2, channels=16),
        "adain": AdainSpec("series", "style", 2, width=8, blocks=2, style_dim=6),
    }


@pytest.mark.parametrize("kind", ["series", "ts2vec", "tstcc", "adain"])
def test_series_encoders_match_torch_at_any_batch_and_length(tmp_path, kind):
    encoder = build_encoder(_series_specs()[kind])
    folder = export(_run(encoder, tmp_path / "r"), "onnx", tmp_path / "o")
    encoder = load(tmp_path / "r")
    props = _props(folder / "model.onnx")
    pre = json.loads(props["selfsup.preprocess"])
    assert props["selfsup.modality"] == "series" and pre == {
        "input": "series",
        "channels": 2,
        "min_steps": pre["min_steps"],
    }
    session = _session(folder / "model.onnx")
    generator = torch.Generator().manual_seed(3)
    for n, steps in ((1, 50), (6, 131)):
        series = torch.randn(n, 2, steps, generator=generator) * 3 + 1
        _assert_close(_embed(session, {"series": series}), _torch(encoder, series))


def test_ts2vec_graph_reads_nan_as_missing_steps(tmp_path):
    encoder = build_encoder(_series_specs()["ts2vec"])
    folder = export(_run(encoder, tmp_path / "r"), "onnx", tmp_path / "o")
    series = torch.randn(3, 2, 40)
    series[1, :, 30:] = float("nan")  # a shorter series padded with NaN
    got = _embed(_session(folder / "model.onnx"), {"series": series})
    _assert_close(got, _torch(load(tmp_path / "r"), series))


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("bert"), dropout=0.1)


SENTENCES = [
    ["a dog runs"],
    ["the stock market fell sharply today in the park", "a cat", "two dogs are running"],
]


def _check_text(session, tokenizer_dir: Path, reference, fp16: bool = False) -> None:
    """onnxruntime on ids from the saved tokenizer (read by `tokenizers` alone) vs torch."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    widths = set()
    for sentences in SENTENCES:
        rows = tokenizer.encode_batch(sentences)
        batch = {
            "input_ids": torch.tensor([r.ids for r in rows]),
            "attention_mask": torch.tensor([r.attention_mask for r in rows]),
        }
        widths.add(batch["input_ids"].shape[1])
        _assert_close(_embed(session, batch), reference(batch), fp16)
    assert len(widths) == 2  # two lengths, as two batch sizes


@pytest.mark.parametrize(
    "pooling,causal", [("mean", False), ("cls", False), ("first-last-avg", False), ("mean", True)]
)
def test_text_encoder_with_its_tokenizer(tmp_path, bert, pooling, causal):
    from selfsup.models.text import TextEncoderSpec

    spec = TextEncoderSpec(str(bert), pooling=pooling, max_length=24, causal=causal)
    encoder = build_encoder(spec)
    folder = export(_run(encoder, tmp_path / "r"), "onnx", tmp_path / "o")
    encoder = load(tmp_path / "r")
    props = _props(folder / "model.onnx")
    assert props["selfsup.modality"] == "text" and props["selfsup.normalize"] == "false"
    pre = json.loads(props["selfsup.preprocess"])
    assert pre["tokenizer"] == "tokenizer" and pre["max_length"] == 24
    assert (folder / "tokenizer" / "tokenizer.json").is_file()
    session = _session(folder / "model.onnx")
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask"]
    _check_text(session, folder / "tokenizer", lambda b: _torch(encoder, b))


def _clip(bert, text_kind: str = "text"):
    from selfsup.models.clip import ClipEncoderSpec
    from selfsup.models.text import TextEncoderSpec
    from selfsup.models.text_scratch import ScratchTextSpec

    text = (
        TextEncoderSpec(str(bert))
        if text_kind == "text"
        else ScratchTextSpec(width=16, layers=1, heads=2, context=16)
    )
    return build_encoder(ClipEncoderSpec(_image_spec("convnet", 3, 16), text, embed_dim=12))


def test_clip_exports_two_graphs_in_one_space(tmp_path, bert):
    folder = export(_run(_clip(bert), tmp_path / "r"), "onnx", tmp_path / "o")
    encoder = load(tmp_path / "r")
    assert {p.name for p in folder.iterdir()} >= {"image.onnx", "text.onnx", "tokenizer"}
    image, text = _props(folder / "image.onnx"), _props(folder / "text.onnx")
    assert (image["selfsup.modality"], text["selfsup.modality"]) == ("image", "text")
    assert image["selfsup.out_dim"] == text["selfsup.out_dim"] == "12"
    pixels = torch.rand(3, 3, 16, 16)
    got = _embed(_session(folder / "image.onnx"), {"pixels": pixels})
    _assert_close(got, _torch(encoder.encode_image, pixels))
    _check_text(_session(folder / "text.onnx"), folder / "tokenizer", lambda b: _torch(encoder, b))


def test_fp16_graphs_stay_float32_outside_and_close_inside(tmp_path, bert):
    from selfsup.models.text import TextEncoderSpec

    run = _run(build_encoder(_image_spec("resnet18", 3, 32)), tmp_path / "image")
    props = _check_images(run, tmp_path / "image-onnx", "image", fp16=True)
    assert props["selfsup.precision"] == "fp16"
    weights = onnx.load(str(tmp_path / "image-onnx" / "model.onnx")).graph.initializer
    assert any(w.data_type == onnx.TensorProto.FLOAT16 for w in weights)
    encoder = build_encoder(TextEncoderSpec(str(bert)))
    folder = export(_run(encoder, tmp_path / "text"), "onnx", tmp_path / "text-onnx", fp16=True)
    encoder = load(tmp_path / "text")
    session = _session(folder / "model.onnx")
    _check_text(session, folder / "tokenizer", lambda b: _torch(encoder, b), fp16=True)


def test_fp16_scratch_text_tower(tmp_path):
    """A float16 Gelu after an Add crashed onnxruntime's session (a segfault): Gelu stays fp32."""
    folder = export(
        _run(_scratch("text-scratch"), tmp_path / "r"), "onnx", tmp_path / "o", fp16=True
    )
    encoder = load(tmp_path / "r")
    batch = encoder.preprocess(PROBES)
    _assert_close(_embed(_session(folder / "model.onnx"), batch), _torch(encoder, batch), True)


def test_opset_is_written_and_one_outside_the_range_refused(tmp_path):
    run = _run(build_encoder(_image_spec("convnet", 1, 8)), tmp_path / "r")
    folder = export(run, "onnx", tmp_path / "o", opset=14)
    model = onnx.load(str(folder / "model.onnx"))
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [14]
    with pytest.raises(SelfsupError, match="--opset 99 is outside"):
        export(run, "onnx", tmp_path / "o2", opset=99)
    assert not (tmp_path / "o2").exists()


def test_cli_out_names_the_graph_file(tmp_path, capsys):
    run = _run(build_encoder(_image_spec("convnet", 1, 8)), tmp_path / "r")
    out = tmp_path / "deploy" / "digits.onnx"
    assert main(["export", str(run), "--format", "onnx", "--out", str(out)]) == 0
    assert out.is_file() and not (out.parent / "model.onnx").exists()
    assert _props(out)["selfsup.kind"] == "image"


def test_clip_refuses_a_graph_file_name(tmp_path, bert):
    run = _run(_clip(bert), tmp_path / "r")
    with pytest.raises(SelfsupError, match=r"two graphs.*give --out a folder"):
        export(run, "onnx", tmp_path / "x.onnx")


PROBES = [
    "A red circle.",
    "a red circle",
    "Ünïcödé ☃ 日本語 text, with Punctuation!! and it's fine",
    "",
    "   spaces\tand\nnewlines   ",
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen",
]


def _scratch(kind: str):
    from selfsup.models.captioner import WordTextSpec, build_vocabulary
    from selfsup.models.text_scratch import ScratchTextSpec

    if kind == "text-scratch":
        return build_encoder(ScratchTextSpec(width=16, layers=2, heads=2, context=16))
    vocab = build_vocabulary(["a red circle", "two blue squares", "it's one three"])
    return build_encoder(WordTextSpec(width=16, layers=2, heads=2, context=8, vocab=vocab))


@pytest.mark.parametrize("kind", ["text-scratch", "text-words"])
def test_scratch_text_towers_with_a_rebuilt_tokenizer(tmp_path, kind):
    """selfsup's own byte and word tokenizers, saved as tokenizer.json, give the ids that
    `encoder.preprocess` gives (truncation and non-ASCII text included), and the graph the
    embeddings of torch."""
    from tokenizers import Tokenizer

    folder = export(_run(_scratch(kind), tmp_path / "r"), "onnx", tmp_path / "o")
    encoder = load(tmp_path / "r")
    pre = json.loads(_props(folder / "model.onnx")["selfsup.preprocess"])
    assert pre["max_length"] == encoder.spec.context and pre["pooling"] == "last"
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer" / "tokenizer.json"))
    tokenizer.enable_truncation(pre["max_length"])
    for probe in PROBES:
        want = encoder.preprocess([probe])["input_ids"][0].tolist()
        assert tokenizer.encode(probe).ids == want, probe
    session = _session(folder / "model.onnx")
    for sentences in (PROBES[:1], PROBES):
        batch = encoder.preprocess(sentences)
        _assert_close(_embed(session, batch), _torch(encoder, batch))


def test_clip_with_a_scratch_text_tower(tmp_path, bert):
    folder = export(_run(_clip(bert, "text-scratch"), tmp_path / "r"), "onnx", tmp_path / "o")
    encoder = load(tmp_path / "r")
    assert _props(folder / "text.onnx")["selfsup.tower"] == "text"
    batch = encoder.preprocess(PROBES)
    got = _embed(_session(folder / "text.onnx"), batch)
    _assert_close(got, _torch(encoder, batch))


def test_word_vectors_are_refused_naming_the_formats_that_take_them(tmp_path):
    from selfsup.data.words import Vocabulary
    from selfsup.models.word_vectors import WordVectorsSpec

    vocab = Vocabulary(("the", "cat", "sat"), (5, 3, 2))
    run = _run(build_encoder(WordVectorsSpec(dim=4, vocabulary=vocab)), tmp_path / "r")
    with pytest.raises(SelfsupError, match=r"'word-vectors'.*lookup table.*--format selfsup"):
        export(run, "onnx", tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_a_graph_that_does_not_run_as_torch_at_other_shapes_is_not_kept(tmp_path, monkeypatch):
    """The trace of the scratch tower freezes nn.MultiheadAttention's shapes: without the
    torch.export fallback the check on other shapes refuses it, and nothing is left behind."""
    from selfsup.exports import onnx_graph

    def no_dynamo(graph, options):
        raise RuntimeError("dynamo exporter disabled by the test")

    monkeypatch.setattr(onnx_graph, "_dynamo", no_dynamo)
    run = _run(_scratch("text-scratch"), tmp_path / "r")
    with pytest.raises(SelfsupError, match=r"traced: onnxruntime failed.*nothing was kept"):
        export(run, "onnx", tmp_path / "o")
    assert not any((tmp_path / "o").iterdir())
