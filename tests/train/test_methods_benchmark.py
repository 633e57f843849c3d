"""benchmarks/methods.py on digits for a few seconds per method: one markdown table, one row
per method (in its own subprocess) beside the random encoder and raw pixels."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_methods_benchmark_smoke_on_digits(tmp_path):
    env = os.environ | {"PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, str(ROOT / "benchmarks" / "methods.py"), "--data", "digits"]
    cmd += ["--seconds", "4", "--methods", "triplet,supcon", "--batch-size", "128"]
    cmd += ["--out", str(tmp_path), "--set", "method.proj_hidden_dim=64"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = (tmp_path / "table.md").read_text()
    assert table.strip() in proc.stdout
    lines = [line for line in table.splitlines() if line.startswith("|")]
    head = (
        "| method | backbone | optimiser (lr per 256) | augmentation | kNN top-1 (%) | epochs "
        "| images/s | peak RSS (MiB) |"
    )
    assert lines[0] == head
    rows = {line.split(" | ")[0].lstrip("| "): line.strip("| ").split(" | ") for line in lines[2:]}
    assert set(rows) == {
        "triplet",
        "supcon (supervised: trained with labels)",
        "random encoder",
        "raw pixels",
    }
    # Each method's own optimiser and augmentation family, named in the table
    assert rows["triplet"][2:4] == ["lars 0.4", "digits"]
    assert rows["supcon (supervised: trained with labels)"][2:4] == ["sgd 0.125", "digits"]
    for name in ("triplet", "supcon (supervised: trained with labels)"):
        assert rows[name][1] == "convnet"
        knn, epochs, speed, rss = (float(c) for c in rows[name][4:])
        assert 0 < knn <= 100 and epochs > 0 and speed > 0
        assert 50 < rss < 20000  # MiB: a real, per-process figure
    assert 0 < float(rows["random encoder"][4]) <= 100
    assert 0 < float(rows["raw pixels"][4]) <= 100
    assert (tmp_path / "triplet" / "encoder.safetensors").is_file()
    assert "Budget 0.0666667 min per method, data digits; kNN k=200 T=0.1" in table
    # The same folder again: both methods are kept, nothing trains, the table is the same.
    again = subprocess.run([*cmd, "--table-only"], env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "triplet: finished earlier" in again.stdout and "training" not in again.stdout
    assert (tmp_path / "table.md").read_text() == table
