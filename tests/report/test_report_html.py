"""The HTML report of a real digits run: its sections, its degradation, and Chromium's view."""

import argparse
import importlib.util
import json
import re
import shutil

import numpy as np
import pytest
from browser import chromium, chromium_or_skip, console_lines

from selfsup.errors import SelfsupError
from selfsup.report import add_cli, write_report

# The map is UMAP where umap-learn is installed, else t-SNE (report._map_2d).
MAP = "UMAP" if importlib.util.find_spec("umap") else "t-SNE"
SECTIONS = ("curves", "map", "neighbours", "evaluation", "config", "environment")


@pytest.fixture(scope="module")
def report(run):
    return write_report(run, max_points=300)


def _external_references(page: str) -> list[str]:
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", page)
    return [r for r in refs if not r.startswith(("data:", "#"))]


def test_report_has_every_section_and_is_self_contained(run, report):
    assert report == run / "report.html"
    page = report.read_text()
    for section in SECTIONS:
        assert f'<section id="{section}">' in page, section
    assert page.count("data:image/png;base64,") >= 2 + 3 * 6  # curves, map, 6 grid rows
    assert _external_references(page) == []
    assert "<script" not in page
    assert f"{MAP} of 300 test embeddings" in page
    assert "Same-label neighbours" in page
    assert "knn_top1" in page and "random encoder" in page and "raw pixels" in page
    assert "train.batch_size" in page and "world_size" in page
    assert 'class="note"' not in page  # nothing missing in a complete run


def _partial_run(run, dest):
    dest.mkdir()
    for name in ("config.json", "encoder.json", "encoder.safetensors"):
        shutil.copy(run / name, dest / name)
    return dest


def test_missing_pieces_are_noted_and_text_is_escaped(run, tmp_path):
    part = _partial_run(run, tmp_path / "part")
    (part / "encoder.safetensors").unlink()
    tree = json.loads((part / "config.json").read_text())
    tree["config"]["method"]["params"]["note"] = "<script>alert('x')</script>"
    (part / "config.json").write_text(json.dumps(tree))
    train_lines = [r for r in (run / "metrics.jsonl").read_text().splitlines() if '"train"' in r]
    (part / "metrics.jsonl").write_text("\n".join(train_lines) + "\n")
    page = write_report(part).read_text()
    assert "no eval.json in this run" in page
    assert "no evaluation lines in metrics.jsonl" in page
    assert "no environment.json" in page
    assert "no embeddings to show" in page and "has no exported encoder" in page
    assert "<script>alert" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)" in page


def test_unlabelled_data_gives_an_uncoloured_map(run, tmp_path):
    part = _partial_run(run, tmp_path / "unlabelled")
    images = np.random.default_rng(0).integers(0, 256, (80, 16, 16, 3), dtype=np.uint8)
    np.save(tmp_path / "pictures.npy", images)  # RGB 16 px for a grey 8 px encoder
    tree = json.loads((part / "config.json").read_text())
    tree["config"]["data"]["source"] = f"npy:{tmp_path / 'pictures.npy'}"
    (part / "config.json").write_text(json.dumps(tree))
    page = write_report(part).read_text()
    assert f"{MAP} of 80 test embeddings" in page
    assert "the data has no labels: points are not coloured" in page
    assert "neighbours are not marked right or wrong" in page
    assert "no metrics.jsonl records" in page


def test_not_a_run_is_one_clear_error(tmp_path):
    with pytest.raises(SelfsupError, match="not a run directory"):
        write_report(tmp_path)


def test_cli_writes_the_report(run, capsys):
    parser = argparse.ArgumentParser()
    add_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["report", str(run), "--max-points", "50"])
    assert args.handler(args) == 0
    assert "report written to" in capsys.readouterr().out


def test_report_renders_in_headless_chromium(report, tmp_path):
    browser = chromium_or_skip()
    import matplotlib.image

    shot = tmp_path / "shot.png"
    url = report.resolve().as_uri()
    proc = chromium(browser, tmp_path, f"--screenshot={shot}", "--window-size=1200,2000", url)
    assert shot.is_file(), proc.stderr[-2000:]
    assert console_lines(proc) == [], console_lines(proc)
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (2000, 1200)
    colours = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 100 and pixels.std() > 0.05  # plots and images, not a blank page
    dom = chromium(browser, tmp_path, "--dump-dom", url)
    for section in SECTIONS:
        assert f'<section id="{section}">' in dom.stdout, section
    assert console_lines(dom) == []
