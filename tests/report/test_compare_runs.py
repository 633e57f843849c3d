"""`selfsup compare`: the differing config keys and the figures of several runs, as Markdown."""

import argparse
import json

import pytest

from selfsup.compare import add_cli, compare_runs
from selfsup.config import Config, apply_overrides
from selfsup.errors import SelfsupError


def make_run(path, overrides, evaluation=None):
    """A run directory as `selfsup pretrain` leaves it, as far as compare reads it."""
    cfg = apply_overrides(Config(), overrides)
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"config": cfg.to_dict()}, indent=2))
    if evaluation is not None:
        (path / "eval.json").write_text(json.dumps(evaluation))
    return path


def figures(knn, linear=None):
    selfsup = {"knn_top1": knn} | ({"linear_top1": linear} if linear is not None else {})
    return {"selfsup": selfsup, "random": {"knn_top1": 0.3}, "raw_pixels": {"knn_top1": 0.4}}


@pytest.fixture
def runs(tmp_path):
    return [
        make_run(tmp_path / "a", {"optim.lr": 0.4}, figures(0.58, 0.61)),
        make_run(tmp_path / "b", {"optim.lr": 0.2, "method.temperature": 0.5}, figures(0.56)),
        make_run(tmp_path / "c", {"optim.lr": 0.4, "train.epochs": 5}),
    ]


def test_table_has_differing_keys_and_figures(runs):
    table = compare_runs(runs)
    lines = table.splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == [
        "run",
        "method.params.temperature",
        "optim.lr",
        "train.epochs",
        "knn_top1 (%)",
        "linear_top1 (%)",
        "random knn_top1 (%)",
        "raw_pixels knn_top1 (%)",
    ]
    assert "data.source" not in table and "optim.weight_decay" not in table
    rows = {
        line.split("|")[1].strip(): [c.strip() for c in line.split("|")[1:-1]] for line in lines[2:]
    }
    assert set(rows) == {"a", "b", "c"}
    a, b, c = (dict(zip(header, rows[n], strict=True)) for n in "abc")
    assert a["knn_top1 (%)"] == "58.00" and a["linear_top1 (%)"] == "61.00"
    assert b["linear_top1 (%)"] == "-" and b["method.params.temperature"] == "0.5"
    assert a["method.params.temperature"] == "-" and c["train.epochs"] == "5"
    assert c["knn_top1 (%)"] == "-" and a["random knn_top1 (%)"] == "30.00"
    assert len({len(line) for line in lines}) == 1  # aligned columns
    assert lines[1].startswith("| ---")


def test_cli_prints_and_writes_markdown(runs, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    parser = argparse.ArgumentParser()
    add_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["compare", *map(str, runs)])
    assert args.handler(args) == 0
    written = (tmp_path / "compare.md").read_text()
    assert written == compare_runs(runs) and written in capsys.readouterr().out
    with pytest.raises(SelfsupError, match=r"compare\.md already exists"):
        args.handler(args)
    args = parser.parse_args(["compare", *map(str, runs), "--out", "x/y.md", "--overwrite"])
    assert args.handler(args) == 0 and (tmp_path / "x" / "y.md").read_text() == written


def test_runs_with_one_name_are_told_apart_by_path(tmp_path):
    one = make_run(tmp_path / "1" / "run", {"train.seed": 1})
    two = make_run(tmp_path / "2" / "run", {"train.seed": 2})
    table = compare_runs([one, two])
    assert str(one) in table and str(two) in table and "train.seed" in table


def test_a_path_that_is_not_a_run_is_one_clear_error(runs, tmp_path):
    with pytest.raises(SelfsupError, match="is not a run directory"):
        compare_runs([runs[0], tmp_path])
    with pytest.raises(SelfsupError, match="does not exist"):
        compare_runs([tmp_path / "missing"])
    with pytest.raises(SelfsupError, match="at least one run"):
        compare_runs([])
