"""Every source returns Splits whose `serves` says what they hold, evaluation picks its
protocols from `serves`, and the data settings have one home (config.DataConfig)."""

import dataclasses
import inspect

import numpy as np
import torch

from selfsup.config import DataConfig
from selfsup.data import DataSplits, ImageData, Split, load_data
from selfsup.data.pairs import PairData
from selfsup.data.registry import SOURCES, Source
from selfsup.evaluate.registry import PROTOCOLS, usable
from selfsup.evaluate.suite import EvalData

ALL = tuple(PROTOCOLS)


def _sts(path):
    rows = [("main-news", 4.0, "a cat sits", "a cat is sitting"), ("main-news", 1.0, "x", "y")]
    path.write_text(
        "".join(f"{g}\tf\t2012\t{i}\t{s}\t{a}\t{b}\n" for i, (g, s, a, b) in enumerate(rows))
    )
    return path


def _pairs(n=12, labels=True):
    return PairData(
        images=torch.zeros(n, 3, 4, 4, dtype=torch.uint8),
        captions=[f"a photo of a {i % 2}." for i in range(n)],
        labels=torch.arange(n) % 2 if labels else None,
        classes=["zero", "one"] if labels else None,
        name="pairs",
    )


def _splits(tmp_path):
    """One split of each modality and annotation, as its source loads it."""
    text = tmp_path / "lines.txt"
    text.write_text("one sentence\nanother sentence\n")
    retrieval = tmp_path / "qd.tsv"
    retrieval.write_text("query\tdocument\nq one\td one\nq two\td two\n")
    series = tmp_path / "series.npz"
    rng = np.random.default_rng(0)
    np.savez(series, series=rng.normal(size=(6, 2, 9)), labels=np.arange(6) % 2)
    return {
        "digits": (load_data("digits").train, {"label"}),
        "text": (load_data(f"text:{text}").train, set()),
        "sts": (load_data(f"sts:{_sts(tmp_path / 'sts.csv')}").train, {"pairs"}),
        "retrieval": (load_data(f"retrieval:{retrieval}").train, {"retrieval"}),
        "series": (load_data(f"series:{series}").train, {"label"}),
        "pairs": (_pairs(), {"label", "captions"}),
        "unlabelled pairs": (_pairs(labels=False), {"captions"}),
    }


def test_every_source_returns_a_split_that_serves_what_it_holds(tmp_path):
    for name, (split, want) in _splits(tmp_path).items():
        assert isinstance(split, Split), name
        assert split.serves == want, name
        assert (split.labels is not None) == ("label" in split.serves), name


def test_a_subset_serves_what_it_kept(tmp_path):
    sts = load_data(f"sts:{_sts(tmp_path / 'sts.csv')}").train  # a cat sits, a cat is sitting, x, y
    assert sts.subset(torch.tensor([0, 1])).serves == {"pairs"}
    assert sts.subset(torch.tensor([0, 2])).serves == set()  # no pair kept whole


WORD_TABLE = {"word_similarity", "analogy"}


def test_the_suite_picks_protocols_from_serves(tmp_path):
    splits = _splits(tmp_path)

    def picked(name):
        split = splits[name][0]
        found = set(usable(ALL, EvalData(split, split, "test").available()))
        # the word-vector protocols read the word table, nothing of the data: usable on any
        assert WORD_TABLE <= found
        return found - WORD_TABLE

    assert picked("text") == {"geometry"}  # no pairs: no STS
    assert picked("sts") == {"geometry", "sts"}
    assert picked("retrieval") == {"geometry", "retrieval"}
    assert picked("pairs") == {
        "geometry",
        "knn",
        "linear",
        "svm",
        "finetune",
        "zeroshot",
        "image_text_retrieval",
    }
    assert picked("unlabelled pairs") == {"geometry", "image_text_retrieval"}
    # labels on the queries alone are not enough: the bank must be labelled too
    digits = splits["digits"][0]
    unlabelled = dataclasses.replace(digits, labels=None, classes=None)
    found = set(usable(ALL, EvalData(unlabelled, digits, "test").available()))
    assert found - WORD_TABLE == {"geometry"}


def test_data_settings_have_one_home(monkeypatch):
    """load_data declares no setting or default of its own: every loader receives a DataConfig,
    with DataConfig's defaults, or the settings of the DataConfig it was given."""
    seen = []
    tiny = ImageData(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), None, None, "probe")

    def probe(path, options):
        seen.append(options)
        return DataSplits(tiny, None)

    monkeypatch.setitem(SOURCES, "probe", Source(probe, "none", ""))
    params = inspect.signature(load_data).parameters.values()
    assert all(p.default is inspect.Parameter.empty for p in params)
    load_data("probe")
    assert seen[-1] == DataConfig(source="probe")
    load_data("probe", sample_rate=8000)
    assert seen[-1] == DataConfig(source="probe", sample_rate=8000)
    chosen = DataConfig(source="probe", sample_rate=8000, series_lengths="crop", image_size=8)
    assert load_data(chosen).train.images.shape == (2, 1, 8, 8)
    assert seen[-1] is chosen
