"""`torchrun -m selfsup pretrain` on 2 gloo processes: the documented multi-process launch."""

import json
import shutil
import subprocess

import pytest


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_torchrun_two_processes(tmp_path):
    torchrun = shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun not on PATH")
    run = tmp_path / "run"
    cmd = [
        torchrun,
        "--nproc_per_node",
        "2",
        "-m",
        "selfsup",
        "pretrain",
        "--epochs",
        "1",
        "--batch-size",
        "128",
        "--no-progress",
        "--protocols",
        "knn",
        "--out",
        str(run),
        "--set",
        "method.proj_hidden_dim=64",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (run / "encoder.safetensors").is_file()
    env = json.loads((run / "environment.json").read_text())
    assert env["world_size"] == 2
    assert json.loads((run / "eval.json").read_text())["selfsup"]["knn_top1"] > 0.5
    # Rank zero alone writes: one line per logged step, no duplicates from rank one.
    steps = [
        json.loads(x)["step"]
        for x in (run / "metrics.jsonl").read_text().splitlines()
        if json.loads(x)["kind"] == "train"
    ]
    assert len(steps) == len(set(steps))
