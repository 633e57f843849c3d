"""Generated data's known factors of variation (`Split.factors`) reach the protocols that need
them, only on held-out queries, and are carried through every subset."""

import pytest
import torch

from selfsup.data.heldout import carve_heldout
from selfsup.data.images import ImageData
from selfsup.data.split import DataSplits, FactorLabels
from selfsup.evaluate import registry
from selfsup.evaluate.registry import Protocol
from selfsup.evaluate.suite import evaluate_with_baselines, evaluation_data
from selfsup.modalities import get_modality
from selfsup.models import ImageEncoderSpec, build_encoder

SEEN = {}


def factor_protocol(features):
    SEEN["bank"], SEEN["queries"] = features.bank_factors, features.query_factors
    return {"factor_rows": float(len(features.query_factors))}


def generated(n: int = 60) -> ImageData:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=g)
    values = torch.stack([torch.arange(n) % 3, torch.arange(n) % 5], dim=1)
    return ImageData(images, None, None, "generated", factors=FactorLabels(values, ("a", "b")))


def test_factor_labels_check_their_shape():
    with pytest.raises(ValueError, match="int64"):
        FactorLabels(torch.zeros(4, 2), ("a", "b"))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        FactorLabels(torch.zeros(4, 2, dtype=torch.long), ("a", "b", "c"))


def test_factors_are_held_out_and_reach_the_protocol(monkeypatch):
    monkeypatch.setitem(
        registry.PROTOCOLS,
        "factor_test",
        Protocol("factor_test", frozenset({"factors"}), "test", factor_protocol),
    )
    data = generated()
    assert "factors" in data.serves
    splits, record = carve_heldout(DataSplits(data, None))
    assert record is not None, "data with known factors gets held-out queries"
    train, test = splits.train, splits.test
    assert len(train) + len(test) == len(data) and len(test.factors) == len(test)
    # each row keeps its own factors through the split
    pairs = zip(data.images, data.factors.values, strict=True)
    rows = {tuple(image.flatten().tolist()): f.tolist() for image, f in pairs}
    for image, f in zip(test.images, test.factors.values, strict=True):
        assert rows[tuple(image.flatten().tolist())] == f.tolist()
    spec = ImageEncoderSpec("convnet", 1, 8, True, (0.5,), (0.5,))
    encoder = build_encoder(spec)
    from selfsup.config import Config

    cfg = Config()
    result = evaluate_with_baselines(
        encoder, get_modality("image"), evaluation_data(splits, "generated"), cfg, ("factor_test",)
    )
    assert result["selfsup"]["factor_rows"] == len(test)
    assert torch.equal(SEEN["queries"].values, test.factors.values)
    assert torch.equal(SEEN["bank"].values, train.factors.values)


def test_factors_are_withheld_when_the_queries_are_the_bank():
    data = evaluation_data(DataSplits(generated(), None), "generated", own=True)
    assert "factors" in data.withheld and "factors" not in data.available()
