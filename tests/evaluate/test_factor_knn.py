"""factor_knn: per known factor, kNN top-1 with that factor's levels as classes, beside chance;
refused with one clear error on data without factors."""

import pytest
import torch

import selfsup
from selfsup.data.split import FactorLabels
from selfsup.errors import SelfsupError
from selfsup.evaluate.context import Features
from selfsup.evaluate.factors import factor_knn_protocol, majority_share
from selfsup.evaluate.registry import PROTOCOLS, check_needs


def _features(n: int = 300, seed: int = 0) -> Features:
    """Embeddings that encode factor "shape" (one-hot + noise) and nothing of "colour"."""
    g = torch.Generator().manual_seed(seed)
    values = torch.stack([torch.arange(2 * n) % 5, torch.randint(0, 4, (2 * n,), generator=g)], 1)
    emb = torch.nn.functional.one_hot(values[:, 0], 5).float()
    emb = emb + 0.3 * torch.randn(2 * n, 5, generator=g)
    names = ("shape", "colour")
    return Features(
        queries=emb[n:],
        bank=emb[:n],
        bank_factors=FactorLabels(values[:n], names),
        query_factors=FactorLabels(values[n:], names),
        knn_k=20,
    )


def test_each_factor_is_scored_beside_chance():
    out = factor_knn_protocol(_features())
    assert set(out) == {
        "factor_knn/shape_top1",
        "factor_chance/shape_top1",
        "factor_knn/colour_top1",
        "factor_chance/colour_top1",
    }
    assert out["factor_knn/shape_top1"] > 0.95
    assert abs(out["factor_knn/colour_top1"] - 0.25) < 0.1  # the embedding knows no colour
    assert out["factor_chance/shape_top1"] == pytest.approx(0.2)
    assert majority_share(torch.tensor([0, 0, 1, 2])) == 0.5


def test_factor_knn_is_registered_as_needing_factors():
    assert PROTOCOLS["factor_knn"].needs == frozenset({"factors"})


def test_features_without_factors_are_one_error():
    f = _features()
    f.bank_factors = None
    with pytest.raises(SelfsupError, match="factor_knn needs known factors"):
        factor_knn_protocol(f)


def test_data_without_factors_is_refused_naming_the_need():
    with pytest.raises(SelfsupError, match=r"'factor_knn' needs factors.*protocols that work"):
        check_needs(["factor_knn"], {"label"}, "digits: its test split")


def test_a_run_on_data_without_factors_is_refused_before_training(tmp_path):
    cfg = selfsup.make_config(
        **{
            "method.name": "disentangle",
            "data.source": "digits",
            "eval.protocols": "factor_knn",
            "train.epochs": 1,
            "train.progress": False,
        }
    )
    with pytest.raises(SelfsupError, match="needs factors"):
        selfsup.pretrain(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_every_row_scores_the_factors_when_factor_knn_runs_alone():
    """The raw-input row reads the bank for a factors protocol too (it read it for label
    protocols only: factor_knn alone then failed on the raw row)."""
    from selfsup.config import Config
    from selfsup.data.heldout import carve_heldout
    from selfsup.data.images import ImageData
    from selfsup.data.split import DataSplits
    from selfsup.evaluate.suite import evaluate_with_baselines, evaluation_data
    from selfsup.modalities import get_modality
    from selfsup.models import ImageEncoderSpec, build_encoder

    g = torch.Generator().manual_seed(0)
    n = 60
    images = torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=g)
    values = torch.stack([torch.arange(n) % 3, torch.arange(n) % 5], dim=1)
    data = ImageData(images, None, None, "gen", factors=FactorLabels(values, ("a", "b")))
    splits, _ = carve_heldout(DataSplits(data, None))
    encoder = build_encoder(ImageEncoderSpec("convnet", 1, 8, True, (0.5,), (0.5,)))
    result = evaluate_with_baselines(
        encoder, get_modality("image"), evaluation_data(splits, "gen"), Config(), ("factor_knn",)
    )
    for row in ("selfsup", "random", "raw_pixels"):
        assert {"factor_knn/a_top1", "factor_knn/b_top1"} <= set(result[row]), row
