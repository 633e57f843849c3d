"""One small real digits run per test session, shared by the report and search tests."""

import pytest

import selfsup

FAST = {
    "train.epochs": 2,
    "train.batch_size": 128,
    "train.progress": False,
    "train.eval_every": 1,
    "train.log_every": 2,
    "train.report": False,
    "eval.protocols": "knn",
    "method.proj_hidden_dim": 64,
    "method.proj_dim": 32,
}


@pytest.fixture(scope="session")
def run(tmp_path_factory):
    """A finished run directory (eval.json, metrics with eval lines, exported encoder)."""
    path = tmp_path_factory.getbasetemp() / "selfsup-digits-run"
    selfsup.pretrain(selfsup.make_config(**FAST), path)
    return path
