"""`selfsup export`: every bad input is one clear error, nothing is replaced unasked, and the
selfsup format loads back to the same embeddings."""

import json
import shutil

import numpy as np
import pytest
from sklearn.datasets import load_digits

import selfsup
from selfsup.cli import main
from selfsup.errors import SelfsupError
from selfsup.exports.export import MARKER, export


def _digits(n=16):
    return (load_digits().images[:n] * 255 / 16).astype(np.uint8)


def test_the_selfsup_format_loads_back_to_the_same_embeddings(digits_run, tmp_path):
    folder = export(digits_run, "selfsup", tmp_path / "enc")
    images = _digits()
    np.testing.assert_array_equal(
        selfsup.embed(str(folder), images), selfsup.embed(str(digits_run), images)
    )
    record = json.loads((folder / MARKER).read_text())
    assert record["format"] == "selfsup" and "encoder.safetensors" in record["files"]


def test_default_out_is_inside_the_run_and_the_cli_says_where(digits_run, capsys):
    target = digits_run / "exports" / "selfsup"
    shutil.rmtree(target, ignore_errors=True)
    assert main(["export", str(digits_run), "--format", "selfsup"]) == 0
    assert str(target) in capsys.readouterr().out
    assert (target / "encoder.json").is_file()


def test_an_existing_output_is_refused_without_overwrite_and_replaced_with_it(digits_run, tmp_path):
    out = tmp_path / "enc"
    export(digits_run, "selfsup", out)
    (out / "stale.txt").write_text("left by an earlier export")
    with pytest.raises(SelfsupError, match="already exists; pass --overwrite"):
        export(digits_run, "selfsup", out)
    export(digits_run, "selfsup", out, overwrite=True)
    assert not (out / "stale.txt").exists() and (out / "encoder.json").is_file()


def test_overwrite_never_empties_a_folder_no_export_wrote(digits_run, tmp_path):
    mine = tmp_path / "my-notes"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(SelfsupError, match="no selfsup export wrote"):
        export(digits_run, "selfsup", mine, overwrite=True)
    assert (mine / "thesis.tex").read_text() == "years of work"


def test_an_empty_folder_is_used_as_it_is(digits_run, tmp_path):
    (tmp_path / "empty").mkdir()
    assert (export(digits_run, "selfsup", tmp_path / "empty") / "encoder.json").is_file()


def test_unknown_format_is_one_error_naming_the_formats(digits_run, tmp_path):
    with pytest.raises(
        SelfsupError, match=r"unknown export format 'keras'; choose one of: .*selfsup"
    ):
        export(digits_run, "keras", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_a_run_interrupted_before_its_encoder_was_exported(tmp_path):
    run = tmp_path / "half"
    run.mkdir()
    (run / "config.json").write_text("{}")
    with pytest.raises(SelfsupError, match="stopped before it exported one; finish it with"):
        export(run, "selfsup")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SelfsupError, match="holds no run"):
        export(tmp_path / "empty", "selfsup")
    with pytest.raises(SelfsupError, match="is not a run directory"):
        export(tmp_path / "missing", "selfsup")


def test_onnx_options_are_refused_for_other_formats(digits_run, tmp_path):
    with pytest.raises(SelfsupError, match="--fp16 applies to --format onnx only"):
        export(digits_run, "selfsup", tmp_path / "x", fp16=True)
    with pytest.raises(SelfsupError, match="names an ONNX file"):
        export(digits_run, "selfsup", tmp_path / "x.onnx")


def test_the_cli_prints_one_line_for_a_bad_input(digits_run, tmp_path, capsys):
    assert main(["export", str(digits_run), "--format", "nope", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("selfsup: error: unknown export format") and err.count("\n") == 1
