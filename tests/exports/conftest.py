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
