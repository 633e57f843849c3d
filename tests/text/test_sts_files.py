"""Several STS files evaluated together ("all") and each apart, per genre within each."""

import pytest
import torch
from scipy.stats import spearmanr

from selfsup.data import load_data
from selfsup.evaluate.context import Features
from selfsup.evaluate.registry import PROTOCOLS


def _write(path, rows):
    path.write_text(
        "".join(f"{g}\tf\t2012\t{i}\t{s}\t{a}\t{b}\n" for i, (g, s, a, b) in enumerate(rows))
    )
    return path


def test_several_files_report_all_per_file_and_per_genre(tmp_path):
    one = _write(
        tmp_path / "one.csv",
        [("news", k, f"s{k}", f"t{k}") for k in range(4)] + [("forum", 2.0, "u", "v")] * 3,
    )
    two = _write(tmp_path / "two.csv", [("news", k, f"s{k}", f"w{k}") for k in range(5)])
    data = load_data(f"sts:{one},{two}").train
    assert len(data.pairs) == 12 and data.pairs.files.count("two.csv") == 5
    assert data.sentences.count("s1") == 1  # a sentence shared by the files is stored once
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(len(data.sentences), 6, generator=g)
    got = PROTOCOLS["sts"].run(Features(queries=emb, pairs=data.pairs))
    p = data.pairs
    cos = torch.nn.functional.cosine_similarity(emb[p.first], emb[p.second])
    assert got["sts_spearman"] == pytest.approx(spearmanr(cos, p.scores).statistic, abs=1e-6)
    two_rows = slice(7, 12)
    assert got["sts_spearman@two.csv"] == pytest.approx(
        spearmanr(cos[two_rows], p.scores[two_rows]).statistic, abs=1e-6
    )
    assert "sts_spearman@one.csv/news" in got and "sts_spearman@one.csv/forum" in got
    assert "sts_spearman/news" in got  # genres over every file too


def test_real_stsb_test_file_has_three_genres():
    from shared_data import stsb

    path = stsb() / "sts-test.csv"
    data = load_data(f"sts:{path}").train
    assert set(data.pairs.genres) == {"main-captions", "main-forums", "main-news"}


def test_a_run_reports_each_sts_file(tmp_path, tiny_bert):
    from text_fixtures import CORPUS, write_sts

    import selfsup

    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(CORPUS) + "\n")
    sts = write_sts(tmp_path / "sts")
    cfg = selfsup.make_config(
        **{
            "data.source": f"text:{corpus}",
            "method.name": "simcse",
            "model.path": str(tiny_bert),
            "train.batch_size": 5,
            "train.epochs": 1,
            "train.progress": False,
            "train.eval_every": 0,
            "train.report": False,
            "eval.data": f"sts:{sts / 'sts-train.csv'},{sts / 'sts-test.csv'}",
            "eval.protocols": "sts",
        }
    )
    ev = selfsup.pretrain(cfg, tmp_path / "run").evaluation["selfsup"]
    assert {"sts_spearman", "sts_spearman@sts-train.csv", "sts_spearman@sts-test.csv"} <= set(ev)
    assert "sts_spearman@sts-test.csv/main-news" in ev
