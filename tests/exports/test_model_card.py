"""The model card beside every export: Hugging Face front matter, the method and its paper, the
data, the command, time and hardware, every figure of eval.json, how to load, no licence set."""

import json
import shutil
import sys

import pytest

from selfsup.errors import SelfsupError
from selfsup.exports.export import export
from selfsup.units import column, format_figure

yaml = pytest.importorskip("yaml")


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    head, _, _ = card[4:].partition("\n---\n")
    return yaml.safe_load(head)


def section(card: str, title: str) -> str:
    assert f"\n## {title}\n" in card, title
    return card.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


@pytest.fixture(scope="module")
def digits_card(digits_run, tmp_path_factory):
    folder = export(digits_run, "selfsup", tmp_path_factory.mktemp("card") / "enc")
    return (folder / "README.md").read_text()


def test_front_matter_is_hugging_face_yaml_with_the_licence_left_empty(digits_card):
    meta = front_matter(digits_card)
    assert meta["library_name"] == "selfsup"
    assert {"self-supervised", "simclr", "image"} <= set(meta["tags"])
    assert meta["datasets"] == ["digits"] and meta["pipeline_tag"] == "feature-extraction"
    assert "license" in meta and meta["license"] is None  # the user's to fill in
    assert "left for you" in digits_card.split("\n---\n")[0]


def test_method_data_training_sections_say_what_the_run_recorded(digits_run, digits_card):
    method = section(digits_card, "Method")
    assert "Chen et al. 2020" in method and "simclr" in method
    env = json.loads((digits_run / "environment.json").read_text())
    data = section(digits_card, "Data")
    assert "`digits`" in data and f"Training samples: {env['train_samples']:,}" in data
    assert "test split" in data  # digits' queries: its own test split, nothing carved
    training = section(digits_card, "Training")
    assert env["command"] in training  # made through the Python API: it says so
    assert "Python API" in env["command"]
    assert "in training steps" in training and env["cpu"] in training
    assert "not recorded" not in digits_card


def test_every_eval_row_and_figure_is_in_the_table_as_the_console_shows_it(digits_run, digits_card):
    results = json.loads((digits_run / "eval.json").read_text())
    table = section(digits_card, "Evaluation")
    lines = [line for line in table.splitlines() if line.startswith("| `")]
    rows = {name: row for name, row in results.items() if isinstance(row, dict)}
    assert {"selfsup", "random", "raw_pixels"} <= set(rows)
    assert len(lines) == len(rows)
    keys = list(dict.fromkeys(k for row in rows.values() for k in row))
    assert "| encoder | " + " | ".join(column(k) for k in keys) + " |" in table
    for line, (name, row) in zip(lines, rows.items(), strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0].startswith(f"`{name}`")
        assert cells[1:] == [format_figure(k, row.get(k)) for k in keys]
    assert "learned encoder" in table and results["queries"] in table


def test_an_old_run_without_the_records_says_not_recorded(digits_run, tmp_path):
    old = tmp_path / "old-run"
    old.mkdir()
    for name in ("encoder.json", "encoder.safetensors"):
        shutil.copy(digits_run / name, old / name)
    card = (export(old, "selfsup", tmp_path / "enc") / "README.md").read_text()
    assert "```\nnot recorded\n```" in section(card, "Training")  # the command
    assert "Training time: not recorded" in card and "Training samples: not recorded" in card
    assert "not recorded: the run has no eval.json" in section(card, "Evaluation")
    assert front_matter(card)["tags"][:2] == ["self-supervised", "selfsup"]


def test_the_command_line_is_recorded_when_run_from_the_cli(monkeypatch):
    from selfsup import run

    monkeypatch.setattr(sys, "argv", ["/venv/bin/selfsup", "pretrain", "--out", "runs/my run"])
    assert run._command() == "selfsup pretrain --out 'runs/my run'"
    monkeypatch.setattr(sys, "argv", ["/src/selfsup/__main__.py", "pretrain", "--epochs", "1"])
    assert run._command() == "selfsup pretrain --epochs 1"
    monkeypatch.setattr(sys, "argv", ["train_mine.py"])
    assert "Python API" in run._command()


def test_each_format_card_says_how_to_load_it(text_encoder_dir, tmp_path):
    folder = export(text_encoder_dir, "sentence-transformers", tmp_path / "st")
    card = (folder / "README.md").read_text()
    assert front_matter(card)["library_name"] == "sentence-transformers"
    loading = section(card, "How to load this export")
    assert f'SentenceTransformer("{folder}"' in loading and "mean pooling" in loading
    assert "normalisation to unit length" in loading
    record = json.loads((folder / "selfsup_export.json").read_text())
    assert "README.md" in record["files"]


def test_a_readme_no_export_wrote_is_never_replaced(digits_run, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "README.md").write_text("# my project")
    for overwrite in (False, True):
        with pytest.raises(SelfsupError, match=r"README\.md exists and no selfsup export"):
            export(digits_run, "selfsup", project, overwrite=overwrite)
    assert (project / "README.md").read_text() == "# my project"


def test_an_export_replaces_its_own_card_only_when_asked(digits_run, tmp_path):
    folder = export(digits_run, "selfsup", tmp_path / "enc")
    with pytest.raises(SelfsupError, match="pass --overwrite"):
        export(digits_run, "selfsup", folder)
    (folder / "README.md").write_text("edited")
    export(digits_run, "selfsup", folder, overwrite=True)
    assert (folder / "README.md").read_text().startswith("---\n")
