"""Queries are never the bank (issue 18, item 1) and evaluations on other data are kept beside
eval.json (issue 19, item 4).

The issue's case: a run on a folder of noise images in 4 classes (chance 25 %), then
`selfsup evaluate RUN --data folder:noise --protocol knn` reported raw pixels 100 %, the random
encoder 70.83 % and the learned one 55.00 %: every query found itself in the bank.
"""

import json

import pytest
import torch
from PIL import Image

import selfsup
from selfsup.cli import main
from selfsup.data import load_data
from selfsup.errors import SelfsupError
from selfsup.evaluate.suite import evaluation_data

RUN = {
    "train.epochs": 1,
    "train.batch_size": 16,
    "train.progress": False,
    "train.eval_every": 0,
    "train.report": False,
    "method.proj_hidden_dim": 32,
    "method.proj_dim": 16,
    "eval.protocols": "knn",
}


def noise_folder(root, per_class, seed=0, classes=4):
    gen = torch.Generator().manual_seed(seed)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True)
        for i in range(per_class):
            pixels = torch.randint(0, 256, (8, 8, 3), dtype=torch.uint8, generator=gen)
            Image.fromarray(pixels.numpy()).save(root / f"class{c}" / f"{i}.png")
    return root


def test_other_labelled_data_is_split_so_no_query_is_in_the_bank():
    splits = load_data("digits")  # has a test split: use train alone, labelled, no test
    splits.test = None
    data = evaluation_data(splits, "digits-train", own=False)
    assert "label" in data.available()
    assert len(data.bank) + len(data.queries) == len(splits.train)
    assert "held out" in data.queries_from and "bank is the other" in data.queries_from
    bank = {tuple(x.flatten().tolist()) for x in data.bank.images}
    queries = [tuple(x.flatten().tolist()) for x in data.queries.images]
    assert sum(q in bank for q in queries) < 0.05 * len(queries)  # digits holds a few repeats
    # stratified: each class keeps its share
    share = torch.bincount(data.queries.labels) / torch.bincount(splits.train.labels)
    assert share.min() > 0.15 and share.max() < 0.25


def test_evaluate_on_data_the_run_trained_on_uses_its_held_out_queries(tmp_path):
    noise = noise_folder(tmp_path / "noise", per_class=30)
    run = tmp_path / "run"
    selfsup.pretrain(selfsup.make_config(**RUN, **{"data.source": f"folder:{noise}"}), run)
    own = json.loads((run / "eval.json").read_text())
    got = selfsup.evaluate(run, "knn", data=f"folder:{noise}")
    assert "24 samples held out of train before training (heldout.json)" in got["queries"]
    for row in ("selfsup", "random", "raw_pixels"):
        assert got[row]["knn_top1"] < 0.6, (row, got[row])  # chance 25 %; was 100 % raw pixels
        assert got[row]["knn_top1"] == own[row]["knn_top1"]  # exactly the run's own queries
    # issue 19, item 4: written beside eval.json, named after the source; eval.json kept
    from selfsup.evaluate.store import other_evaluations

    assert json.loads((run / "eval.json").read_text()) == own
    saved = other_evaluations(run)
    assert list(saved) == [f"folder:{noise}"] and saved[f"folder:{noise}"] == got
    assert (run / "evaluations").is_dir() and len(list((run / "evaluations").iterdir())) == 1


def test_eval_data_without_a_test_split_is_split_before_scoring(tmp_path):
    noise = noise_folder(tmp_path / "noise", per_class=30)
    other = noise_folder(tmp_path / "other", per_class=30, seed=1)
    cfg = selfsup.make_config(
        **RUN, **{"data.source": f"folder:{noise}", "eval.data": f"folder:{other}"}
    )
    result = selfsup.pretrain(cfg, tmp_path / "run")
    assert "24 of its 120 samples held out" in result.evaluation["queries"]
    assert result.evaluation["raw_pixels"]["knn_top1"] < 0.6


def test_too_few_labelled_samples_refuse_label_protocols_with_the_reason(tmp_path, capsys):
    noise = noise_folder(tmp_path / "noise", per_class=30)
    tiny = noise_folder(tmp_path / "tiny", per_class=2)
    run = tmp_path / "run"
    selfsup.pretrain(selfsup.make_config(**RUN, **{"data.source": f"folder:{noise}"}), run)
    with pytest.raises(SelfsupError, match=r"'knn' cannot run.*find itself.*8 samples, too few"):
        selfsup.evaluate(run, "knn", data=f"folder:{tiny}")
    got = selfsup.evaluate(run, "knn,geometry", data=None)  # the run's own: fine
    assert "knn_top1" in got["selfsup"]
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", f"folder:{tiny}"]) == 0  # the run's protocols
    out = capsys.readouterr().out
    assert "skipped: knn not run: with no held-out queries each query would find itself" in out
    assert "evaluations" in out and "knn_top1" not in out


def test_a_run_without_its_heldout_record_refuses_label_protocols(tmp_path):
    noise = noise_folder(tmp_path / "noise", per_class=30)
    run = tmp_path / "run"
    selfsup.pretrain(selfsup.make_config(**RUN, **{"data.source": f"folder:{noise}"}), run)
    (run / "heldout.json").unlink()  # as a run made before held-out splits existed
    with pytest.raises(SelfsupError, match=r"training data and the run recorded no held-out"):
        selfsup.evaluate(run, "knn")


def test_the_report_shows_evaluations_on_other_data_and_what_was_not_computed(tmp_path):
    from selfsup.report import write_report

    noise = noise_folder(tmp_path / "noise", per_class=30)
    tiny = noise_folder(tmp_path / "tiny", per_class=2)
    run = tmp_path / "run"
    selfsup.pretrain(selfsup.make_config(**RUN, **{"data.source": f"folder:{noise}"}), run)
    assert main(["evaluate", str(run), "--data", f"folder:{tiny}", "--protocol", "geometry"]) == 0
    assert main(["evaluate", str(run), "--data", f"folder:{tiny}"]) == 0  # knn skipped, said
    page = write_report(run).read_text()
    assert "Evaluation on folder:" in page and "tiny" in page  # beside the run's own
    assert "Not computed: knn not run" in page
    assert "knn_top1 (%)" in page  # the run's own table is still there
