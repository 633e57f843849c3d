"""The command line: errors print one line without a traceback; commands chain on a real run."""

import subprocess
import sys

import numpy as np
import pytest

from selfsup.cli import main

FAST = [
    "--set",
    "train.report=false",
    "--epochs",
    "1",
    "--batch-size",
    "128",
    "--no-progress",
    "--eval-every",
    "0",
    "--set",
    "method.proj_hidden_dim=64",
    "--set",
    "method.proj_dim=32",
]


def test_errors_are_one_line_without_traceback(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "selfsup",
            "pretrain",
            "--data",
            "folder:/no/such/dir",
            "--out",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("selfsup: error:") and "/no/such/dir" in lines[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["pretrain", "--method", "nope"], "unknown method"),
        (["pretrain", "--set", "train.nope=1"], "unknown config key"),
        (["pretrain", "--set", "novalue"], "KEY=VALUE"),
        (["evaluate", "/no/run"], "not a run directory"),
    ],
)
def test_bad_arguments(capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_pretrain_evaluate_embed_chain(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["pretrain", *FAST, "--protocols", "knn", "--out", str(run)]) == 0
    out = capsys.readouterr().out
    assert "selfsup" in out and "random" in out and "raw_pixels" in out
    assert main(["evaluate", str(run), "--protocol", "knn,geometry"]) == 0
    assert "backbone_effective_rank" in capsys.readouterr().out
    emb = tmp_path / "emb.npy"
    assert main(["embed", str(run), "--out", str(emb)]) == 0
    x, y = np.load(emb), np.load(tmp_path / "emb_labels.npy")
    assert x.shape == (1797, 256) and y.shape == (1797,)
    assert main(["embed", str(run), "--out", str(emb)]) == 2  # exists: not overwritten
    assert "already exists" in capsys.readouterr().err
    assert main(["pretrain", *FAST, "--out", str(run)]) == 2
    assert "already exists" in capsys.readouterr().err
    for listing in ("methods", "backbones", "datasets"):
        assert main([listing]) == 0
    listed = capsys.readouterr().out
    assert "simclr" in listed and "ts2vec, tstcc" in listed  # the series backbones too
