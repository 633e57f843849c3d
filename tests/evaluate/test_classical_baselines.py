"""Classical embeddings of the raw input as baseline rows (`eval.baselines=pca,mds,isomap,lle`):
each fitted on the bank, the queries placed out of sample, scored by the protocols the other
rows get; true / false keep their meaning; bad names are one error before any data is read."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch

import selfsup
from selfsup.cli import main
from selfsup.config import Config, apply_overrides, config_from_dict
from selfsup.data import load_data
from selfsup.data.images import ImageData
from selfsup.errors import SelfsupError
from selfsup.evaluate.classical import (
    CLASSICAL,
    TITLES,
    embed_raw,
    place_out_of_sample,
)
from selfsup.evaluate.suite import EvalData, evaluate_with_baselines, format_table
from selfsup.modalities import get_modality
from selfsup.models import build_encoder
from selfsup.report import _evaluation_html

NAMES = tuple(CLASSICAL)
PROTOCOLS = ("knn", "geometry")  # the linear probe: the slow test and the run below


def small_digits(bank: int = 400, queries: int = 100) -> EvalData:
    """A seeded part of the digits' train and test splits (keeps the fast suite fast)."""
    splits = load_data(Config().data)
    gen = torch.Generator().manual_seed(0)
    b = torch.randperm(len(splits.train), generator=gen)[:bank].sort().values
    q = torch.randperm(len(splits.test), generator=gen)[:queries].sort().values
    return EvalData(splits.train.subset(b), splits.test.subset(q), "digits: its test split")


def cfg_with(baselines, **eval_keys) -> Config:
    keys = {"eval.baselines": baselines, "eval.baseline_fit_samples": 150} | {
        f"eval.{k}": v for k, v in eval_keys.items()
    }
    return apply_overrides(Config(), keys)


def random_encoder(cfg: Config, data: EvalData):
    torch.manual_seed(0)
    return build_encoder(get_modality("image").encoder_spec(cfg, data.bank))


def test_each_classical_name_is_a_row_scored_by_the_same_protocols():
    data = small_digits()
    cfg = cfg_with(",".join(NAMES))
    results = evaluate_with_baselines(
        random_encoder(cfg, data), get_modality("image"), data, cfg, PROTOCOLS
    )
    assert list(results)[:4] == ["queries", "selfsup", "random", "raw_pixels"]
    for name in NAMES:
        # the random row's figures (no augmentation here: no alignment in either)
        assert set(results[name]) == set(results["random"]), name
        assert results[name]["knn_top1"] > 0.8, (name, results[name])  # digits: raw is ~0.95
    line = results["classical"]
    # width: the learned encoder's (256) capped at the 59 pixels varying on this bank; the O(n^2)
    # methods on a seeded sample of eval.baseline_fit_samples bank rows, the rest placed
    assert "pca: 59 dims (the learned encoder's width 256, capped" in line
    assert "fitted on the 400 bank rows" in line
    for name in ("mds", "isomap", "lle"):
        assert f"{name}: 59 dims" in line
    assert line.count("a seeded sample of 150 of the 400 bank rows") == 3
    table = format_table(results)
    assert "classical: pca: 59 dims" in table and "\nisomap " in table
    html = _evaluation_html(results, {"data": {"source": "digits"}})
    assert all(TITLES[name] in html for name in NAMES)
    assert "Classical embeddings: pca: 59 dims" in html


def test_baseline_dim_sets_the_width():
    data = small_digits()
    cfg = cfg_with("pca,isomap", baseline_dim=8)
    results = evaluate_with_baselines(
        random_encoder(cfg, data), get_modality("image"), data, cfg, ("geometry",)
    )
    assert "pca: 8 dims (eval.baseline_dim)" in results["classical"]
    assert results["pca"]["backbone_effective_rank"] <= 8


def test_true_and_false_keep_their_meaning():
    data = small_digits(200, 60)
    assert Config().eval.baselines is True
    for setting, rows in (
        (True, {"selfsup", "random", "raw_pixels"}),
        (False, {"selfsup"}),
    ):
        cfg = cfg_with(setting)
        results = evaluate_with_baselines(
            random_encoder(cfg, data), get_modality("image"), data, cfg, ("knn",)
        )
        assert {k for k, v in results.items() if isinstance(v, dict)} == rows
        assert "classical" not in results


def test_an_unknown_name_is_one_error_naming_the_valid_ones():
    with pytest.raises(SelfsupError) as err:
        apply_overrides(Config(), {"eval.baselines": "pca,tsne"})
    message = str(err.value)
    assert "'tsne'" in message and "pca, mds, isomap, lle" in message
    assert "true, false" in message
    for bad in ("", [], 5):
        with pytest.raises(SelfsupError, match=r"eval\.baselines"):
            apply_overrides(Config(), {"eval.baselines": bad})


def test_an_unknown_name_stops_pretrain_and_evaluate_before_any_data_is_read(
    tmp_path, monkeypatch, capsys
):
    def no_data(*args, **kwargs):
        raise AssertionError("data was read")

    monkeypatch.setattr("selfsup.run.load_data", no_data, raising=False)
    monkeypatch.setattr("selfsup.run_data.load_data", no_data)
    assert main(["pretrain", "--out", str(tmp_path / "r"), "--set", "eval.baselines=tsne"]) == 2
    assert "eval.baselines (unknown 'tsne')" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    run = tmp_path / "run"  # a run directory with only its config: nothing else may be read
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"config": Config().to_dict()}))
    assert main(["evaluate", str(run), "--baselines", "pca,umap"]) == 2
    assert "eval.baselines (unknown 'umap')" in capsys.readouterr().err


def test_text_is_refused_clearly(tmp_path, monkeypatch):
    def no_decoding(*args, **kwargs):
        raise AssertionError("data was loaded before the refusal")

    monkeypatch.setattr("selfsup.run.load_run_splits", no_decoding)
    with pytest.raises(SelfsupError, match=r"fixed-width raw input .* text data.*tfidf"):
        selfsup.pretrain(
            out=tmp_path / "run",
            data__source="wordnet",
            eval__baselines="pca",
            method__name="simcse",
        )
    assert not (tmp_path / "run").exists()
    apply_overrides(Config(), {"data.source": "wordnet", "eval.baselines": True})


def test_old_run_configs_still_load_and_a_list_round_trips():
    saved = Config().to_dict()
    for old in (True, False):
        tree = copy.deepcopy(saved)
        tree["eval"]["baselines"] = old
        for key in ("baseline_dim", "baseline_fit_samples", "baseline_neighbors"):
            del tree["eval"][key]  # runs written before these settings
        assert config_from_dict(json.loads(json.dumps(tree))).eval.baselines is old
    cfg = apply_overrides(Config(), {"eval.baselines": "isomap,pca"})
    again = config_from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again.eval.baselines == ("isomap", "pca")


@pytest.mark.parametrize("name", NAMES)
def test_queries_take_no_part_in_the_fit(name):
    """Whatever the queries are, the bank's embedding is the same, and each query's place
    depends on that query alone: no query was fitted on (or moved another one)."""
    gen = torch.Generator().manual_seed(1)
    bank = torch.randn(300, 12, generator=gen)
    queries = torch.randn(40, 12, generator=gen)
    other = queries.clone()
    other[20:] = 50 * torch.randn(20, 12, generator=gen)  # wildly different later queries
    kw = {"dim": 4, "fit_samples": 120, "neighbors": 8, "seed": 0}
    z_bank, z_queries, _ = embed_raw(name, bank, queries, **kw)
    z_bank2, z_other, _ = embed_raw(name, bank, other, **kw)
    torch.testing.assert_close(z_bank, z_bank2, rtol=0, atol=0)
    torch.testing.assert_close(z_queries[:20], z_other[:20], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(z_queries[20:], z_other[20:])


def test_pca_is_fitted_on_the_bank_rows_only(monkeypatch):
    from sklearn.decomposition import PCA

    seen = []
    fit = PCA.fit

    def recording(self, x, y=None):
        seen.append(np.array(x))
        return fit(self, x, y)

    monkeypatch.setattr(PCA, "fit", recording)
    bank = torch.randn(50, 6, generator=torch.Generator().manual_seed(0))
    queries = bank[:10] + 100.0
    embed_raw("pca", bank, queries, dim=3, fit_samples=10, neighbors=3, seed=0)
    assert len(seen) == 1 and seen[0].shape == (50, 6)
    np.testing.assert_allclose(seen[0], bank.double().numpy())


def test_mds_places_new_rows_by_their_distances_to_the_landmarks():
    gen = torch.Generator().manual_seed(0)
    plane = torch.randn(5, 2, generator=gen)  # 2-D points in 5-D: an exact 2-D layout exists
    landmarks = (torch.randn(60, 2, generator=gen) @ plane.T).double().numpy()
    new = (torch.randn(15, 2, generator=gen) @ plane.T).double().numpy()
    z_bank, z_new, _ = embed_raw(
        "mds",
        torch.from_numpy(landmarks),
        torch.from_numpy(new),
        dim=2,
        fit_samples=100,
        neighbors=5,
        seed=0,
    )
    z_bank, z_new = z_bank.double().numpy(), z_new.double().numpy()
    want = np.linalg.norm(new[:, None] - landmarks[None], axis=2)
    got = np.linalg.norm(z_new[:, None] - z_bank[None], axis=2)
    assert np.abs(got - want).max() < 1e-2 * want.max()
    # a landmark placed again lands on its own coordinates
    again = place_out_of_sample(landmarks[:3], landmarks, z_bank.astype(np.float64))
    np.testing.assert_allclose(again, z_bank[:3], atol=1e-3 * np.abs(z_bank).max())


@pytest.mark.parametrize("kind", ["equal", "zero", "noise"])
def test_degenerate_raw_input_is_never_scored_above_chance(kind):
    """Images that say nothing about their (independent) labels: each classical row is either
    left out with the reason, or scores within chance + 4 standard deviations."""
    gen = torch.Generator().manual_seed(0)
    classes, n_bank, n_queries = 8, 240, 240

    def images(n: int) -> ImageData:
        if kind == "equal":
            x = torch.full((n, 1, 6, 6), 77, dtype=torch.uint8)
        elif kind == "zero":
            x = torch.zeros(n, 1, 6, 6, dtype=torch.uint8)
        else:
            x = torch.randint(0, 256, (n, 1, 6, 6), generator=gen, dtype=torch.uint8)
        labels = torch.randint(0, classes, (n,), generator=gen)
        return ImageData(x, labels, [str(c) for c in range(classes)], kind)

    data = EvalData(images(n_bank), images(n_queries), f"{kind} images")
    cfg = cfg_with(",".join(NAMES), baseline_dim=8)
    results = evaluate_with_baselines(
        random_encoder(cfg, data), get_modality("image"), data, cfg, ("knn",)
    )
    chance = 1 / classes
    margin = max(0.05, 4 * math.sqrt(chance * (1 - chance) / n_queries))
    for name in NAMES:
        if kind != "noise":
            assert name not in results
            assert (
                f"{name}: not scored, the raw input is the same for every bank row"
                in (results["classical"])
            )
            continue
        assert results[name]["knn_top1"] <= chance + margin, (name, results[name])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("classical") / "run"
    keys = {
        "train.epochs": 1,
        "train.batch_size": 128,
        "train.progress": False,
        "train.eval_every": 0,
        "train.report": False,
        "eval.protocols": "knn",
        "eval.baselines": "pca",
        "eval.baseline_fit_samples": 300,
        "method.proj_hidden_dim": 64,
        "method.proj_dim": 32,
    }
    result = selfsup.pretrain(selfsup.make_config(**keys), path)
    return path, result.evaluation


@pytest.mark.slow  # a real run (about a minute on a shared CPU); the pieces are tested above
def test_a_run_writes_the_rows_and_the_report_titles_them(tiny_run):
    from selfsup.report import write_report

    path, evaluation = tiny_run
    saved = json.loads((path / "eval.json").read_text())
    assert saved == json.loads(json.dumps(evaluation))
    assert {"selfsup", "random", "raw_pixels", "pca"} <= set(saved)
    assert saved["classical"].startswith("pca: 60 dims")
    page = write_report(path).read_text()
    assert TITLES["pca"] in page and "Classical embeddings: pca: 60 dims" in page


@pytest.mark.slow
def test_selfsup_evaluate_takes_the_classical_names(tiny_run, capsys):
    path, _ = tiny_run
    assert main(["evaluate", str(path), "--baselines", "isomap"]) == 0
    out = capsys.readouterr().out
    assert "\nisomap " in out and "classical: isomap: 60 dims" in out
    assert "a seeded sample of 300 of the 1,437 bank rows" in out
    saved = json.loads((path / "eval.json").read_text())
    assert "isomap" in saved and "pca" not in saved
    assert main(["evaluate", str(path)]) == 0  # the run's own setting again
    assert "pca" in json.loads((path / "eval.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["pca", "isomap"])
def test_digits_knn_matches_sklearns_own_pipeline(name):
    """The whole digits split: our row's kNN figure equals a plain scikit-learn pipeline's
    (zero-variance pixels out, standardised, PCA / Isomap fitted on the bank, the queries
    transformed) scored by a weighted cosine kNN written with KNeighborsClassifier."""
    from sklearn.decomposition import PCA
    from sklearn.feature_selection import VarianceThreshold
    from sklearn.manifold import Isomap
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    splits = load_data(Config().data)
    data = EvalData(splits.train, splits.test, "digits: its test split")
    cfg = cfg_with(name, baseline_fit_samples=2000)
    results = evaluate_with_baselines(
        random_encoder(cfg, data), get_modality("image"), data, cfg, ("knn", "linear")
    )
    assert set(results[name]) == set(results["raw_pixels"])  # the same protocols
    bank = splits.train.images.flatten(1).double().numpy()
    queries = splits.test.images.flatten(1).double().numpy()
    reducer = PCA(n_components=60) if name == "pca" else Isomap(n_neighbors=10, n_components=60)
    pipe = make_pipeline(VarianceThreshold(0.0), StandardScaler(), reducer).fit(bank)
    k, t = cfg.eval.knn_k, cfg.eval.knn_t
    knn = KNeighborsClassifier(
        n_neighbors=k, metric="cosine", algorithm="brute", weights=lambda d: np.exp((1 - d) / t)
    ).fit(pipe.transform(bank), splits.train.labels.numpy())
    theirs = (knn.predict(pipe.transform(queries)) == splits.test.labels.numpy()).mean()
    assert abs(results[name]["knn_top1"] - theirs) <= 1 / len(queries) + 1e-9, (
        results[name]["knn_top1"],
        theirs,
    )


def test_series_get_the_rows_too():
    """Series (z-normalised, flattened: the raw_signal row's features) are a fixed-width input;
    bumps against dips, which every classical row separates."""
    from selfsup.data.series import SeriesData
    from selfsup.models.series import series_spec

    gen = torch.Generator().manual_seed(2)
    t = torch.arange(40, dtype=torch.float32)
    centres = torch.randint(5, 35, (120,), generator=gen)
    x = torch.exp(-0.5 * ((t[None] - centres[:, None]) / 1.5) ** 2)[:, None]
    x[1::2] *= -1
    labels = torch.tensor([0, 1] * 60)

    def part(rows: slice) -> SeriesData:
        return SeriesData(x[rows], None, labels[rows], ["bump", "dip"], "bumps")

    data = EvalData(part(slice(0, 80)), part(slice(80, 120)), "bumps: test split")
    cfg = cfg_with(",".join(NAMES), dtw_limit=0, knn_k=5, baseline_fit_samples=50)
    results = evaluate_with_baselines(
        build_encoder(series_spec(1, 40)), get_modality("series"), data, cfg, ("knn",)
    )
    assert {"random", "raw_signal", *NAMES} <= set(results)
    for name in NAMES:
        assert results[name]["knn_top1"] >= 0.9, (name, results[name])
    assert "a seeded sample of 50 of the 80 bank rows" in results["classical"]
