"""One small real digits run per test session, shared by the export tests."""

import pytest

import selfsup

FAST = {
    "train.epochs": 1,
    "train.batch_size": 128,
    "train.progress": False,
    "train.report": False,
    "eval.protocols": "knn",
    "method.proj_hidden_dim": 64,
    "method.proj_dim": 32,
}


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    """A finished digits run directory (exported encoder, eval.json)."""
    path = tmp_path_factory.getbasetemp() / "export-digits-run"
    selfsup.pretrain(selfsup.make_config(**FAST), path)
    return path


@pytest.fixture(scope="session")
def text_encoder_dir(tmp_path_factory):
    """A folder holding an exported text encoder (tiny BERT, mean pooling, unit-length
    embeddings) and nothing else of a run: what an export reads, built in about a second."""
    from text.text_fixtures import make_tiny_bert

    from selfsup.export import save_encoder
    from selfsup.models.text import TextEncoder, TextEncoderSpec

    bert = make_tiny_bert(tmp_path_factory.mktemp("export-tiny-bert"), dropout=0.0)
    spec = TextEncoderSpec(model=str(bert), pooling="mean", max_length=12, normalize=True)
    path = tmp_path_factory.getbasetemp() / "export-text-encoder"
    save_encoder(TextEncoder(spec), path)
    return path
