"""A CLIP run as a new user sees it (issue 19): search returns image paths with their captions
beside (item 8), and accepts the query as a positional argument."""

import argparse
import json

import pytest
from pair_fixtures import TINY_CLIP, write_class_folders

import selfsup
from selfsup.search import add_cli, build_index, load_index

CLIP = TINY_CLIP | {
    "train.batch_size": 8,
    "train.epochs": 2,
    "train.progress": False,
    "train.eval_every": 1,
    "eval.knn_k": 3,
}


@pytest.fixture(scope="module")
def clip_run(tmp_path_factory):
    """CLIP with the scratch text tower on 24 captioned shapes (template captions: many are
    identical), 2 epochs, evaluated every epoch, with its report."""
    tmp = tmp_path_factory.mktemp("clip")
    root = write_class_folders(tmp / "cc", 6, 3)
    cfg = selfsup.make_config(**(CLIP | {"data.source": f"cifar-captions:{root}"}))
    selfsup.pretrain(cfg, tmp / "run")
    return tmp / "run", root


def test_search_names_images_with_their_captions(clip_run, capsys, monkeypatch):
    run, root = clip_run
    monkeypatch.setenv("COLUMNS", "160")
    build_index(run, overwrite=True)
    hits = load_index(run).search("a photo of a red.", k=50)
    ids = [i for i, _ in hits]
    assert len(ids) == len(set(ids)) == 24 + 12  # every image once, told apart by its path
    assert all(i.startswith(str(root)) and i.endswith(".png") for i in ids)
    index = load_index(run)
    meta = json.loads((run / "index_ids.json").read_text())
    assert meta["texts"][: len(meta["ids"])] and index.text_of(ids[0]).endswith(".")
    parser = argparse.ArgumentParser()
    add_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["search", str(run), "a photo of a red.", "-k", "3"])  # positional
    assert args.handler(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["rank", "id", "score", "label", "caption"] and len(lines) == 4
    first = lines[1]
    assert ids[0] in first and first.rstrip().endswith(".")  # the image, then its caption
    monkeypatch.setenv("COLUMNS", "50")  # a narrow terminal: the path keeps its file name
    assert args.handler(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert all(len(line) <= 50 for line in lines) and "….png" not in lines[1]
    assert lines[1].split()[1].startswith("…") and ".png" in lines[1]
    with pytest.raises(selfsup.SelfsupError, match="give one query"):
        args = parser.parse_args(["search", str(run), "x", "--query", "y"])
        args.handler(args)


def test_the_clip_report_shows_its_evaluation_curves_and_retrieval_examples(clip_run):
    """Item 9: the eval lines are plotted (no "no evaluation lines" note), zero-shot and
    retrieval figures have panels, and retrieval examples show captions with their images and
    images with their captions."""
    from selfsup.metrics import read_metrics
    from selfsup.report import curve_panels

    run, _ = clip_run
    page = (run / "report.html").read_text()
    assert "no evaluation lines" not in page
    panels = {p.title: p.keys for p in curve_panels(read_metrics(run / "metrics.jsonl"))}
    assert panels["online i2t r@k (%)"] == ("i2t_r@1", "i2t_r@5", "i2t_r@10")
    assert panels["online t2i r@k (%)"] == ("t2i_r@1", "t2i_r@5", "t2i_r@10")
    assert panels["online zeroshot top-1 (%)"] == ("zeroshot_top1",)
    assert '<section id="retrieval"><h2>Retrieval examples</h2>' in page
    assert "Caption to images" in page and "Image to captions" in page
    assert page.count("own image&#x27;s rank") + page.count("own image's rank") == 1
    # item 10: one unit rule; recall@k is a percentage like top-1, the column says so
    table = page[page.index('<section id="evaluation">') :]
    assert "zeroshot_top1 (%)" in table and "i2t_r@1 (%)" in table and "t2i_r@10 (%)" in table
    assert "Accuracies (…top1) in %" not in page
