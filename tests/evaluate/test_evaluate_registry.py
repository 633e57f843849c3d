"""The protocol registry: names, needs, stable flat keys; the suite beside its baselines."""

import pytest
import torch
from torch import nn

from selfsup.config import Config
from selfsup.data import ImageData
from selfsup.errors import SelfsupError
from selfsup.evaluate import (
    PROTOCOLS,
    Features,
    parse_protocols,
    run_protocols,
)
from selfsup.evaluate.registry import check_needs, usable
from selfsup.evaluate.suite import EvalData, evaluate_with_baselines, format_table
from selfsup.modalities.raw import raw_pixel_features

GEOMETRY_KEYS = {"uniformity", "backbone_std", "backbone_effective_rank"}


def clustered(n, seed, dim=16, classes=4):
    gen = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, dim, generator=torch.Generator().manual_seed(0)) * 3
    labels = torch.randint(0, classes, (n,), generator=gen)
    return centers[labels] + torch.randn(n, dim, generator=gen), labels


def test_image_protocols_give_stable_flat_keys():
    x_train, y_train = clustered(300, 1)
    x_test, y_test = clustered(100, 2)
    views = (x_test, x_test + 0.1 * torch.randn_like(x_test))
    features = Features(x_test, x_train, y_train, y_test, views=views)
    results = run_protocols(features, ("knn", "linear", "geometry"))
    assert set(results) == {"knn_top1", "linear_top1", "linear_weight_decay", "alignment"} | (
        GEOMETRY_KEYS
    )
    assert results["knn_top1"] > 0.9 and results["linear_top1"] > 0.9
    assert all(isinstance(v, float) for v in results.values())


def test_protocol_names_parse_and_dedupe():
    assert parse_protocols("knn, knn,geometry") == ("knn", "geometry")
    assert parse_protocols("") == ()
    assert set(PROTOCOLS) >= {"knn", "linear", "geometry", "sts"}


def test_unknown_protocol_lists_valid_ones():
    with pytest.raises(
        SelfsupError, match=r"unknown evaluation protocol.*nope.*knn, linear, svm, geometry"
    ):
        parse_protocols(["knn", "nope"])


def test_needs_are_checked_and_name_what_works():
    assert usable(("knn", "geometry", "sts"), set()) == ("geometry",)
    assert usable(("knn", "sts"), {"label"}) == ("knn",)
    with pytest.raises(SelfsupError, match=r"'linear' needs label.*work on it: geometry"):
        check_needs(("geometry", "linear"), set(), "the training samples")
    with pytest.raises(SelfsupError, match=r"'sts' needs pairs"):
        check_needs(("sts",), {"label"}, "digits")


def test_geometry_needs_no_labels():
    x_test, _ = clustered(100, 2)
    assert set(run_protocols(Features(x_test), ["geometry"])) == GEOMETRY_KEYS


class MeanColour(nn.Module):
    """Pooled per-channel mean plus a fixed random projection: enough to separate colours."""

    kind = "image"

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(3, 8)

    def forward(self, x):
        return self.proj(x.float().mean(dim=(2, 3)))

    def preprocess(self, raw):
        return raw


def coloured_images(n, seed):
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=gen)
    base = torch.full((n, 3, 6, 6), 40.0)
    base[torch.arange(n), labels] = 200.0
    noise = torch.randint(-30, 30, base.shape, generator=gen)
    images = (base + noise).clamp(0, 255).to(torch.uint8)
    return ImageData(images, labels, ["r", "g", "b"], "colours")


def test_suite_runs_the_protocols_on_held_out_queries():
    from selfsup.modalities import get_modality

    torch.manual_seed(0)
    encoder = MeanColour().train()
    data = EvalData(coloured_images(200, 1), coloured_images(60, 2), "colours: test split")
    cfg = Config()
    cfg.eval.baselines = False

    def augment(batch):
        return (batch.float() / 255 + 0.05 * torch.randn(batch.shape)).clamp(0, 1)

    names = ("knn", "linear", "geometry")
    results = evaluate_with_baselines(
        encoder, get_modality("image"), data, cfg, names, "cpu", augment
    )
    assert results["queries"] == "colours: test split"
    assert results["selfsup"]["knn_top1"] > 0.95 and results["selfsup"]["linear_top1"] > 0.95
    assert 0.0 < results["selfsup"]["alignment"] < 1.0
    assert encoder.training
    assert "queries: colours: test split" in format_table(results)


def test_raw_pixel_features_are_standardized_without_touching_input():
    images = torch.rand(50, 3, 4, 4) * 255
    images[:, 0, 0, 0] = 7.0  # a constant pixel position
    before = images.clone()
    feats = raw_pixel_features(images)
    assert feats.shape == (50, 48) and feats.dtype == torch.float32
    torch.testing.assert_close(feats.mean(dim=0), torch.zeros(48), atol=1e-5, rtol=0)
    torch.testing.assert_close(feats[:, 1:].std(dim=0, correction=0), torch.ones(47))
    assert torch.all(feats[:, 0] == 0)
    assert torch.equal(images, before)
    assert raw_pixel_features(images.to(torch.uint8)).shape == (50, 48)


def test_raw_pixel_features_take_statistics_from_the_reference():
    bank = torch.randint(0, 256, (50, 1, 4, 4), dtype=torch.uint8)
    queries = torch.randint(100, 156, (10, 1, 4, 4), dtype=torch.uint8)
    own = raw_pixel_features(queries)
    referenced = raw_pixel_features(queries, reference=bank)
    flat = bank.flatten(1).float()
    expected = (queries.flatten(1).float() - flat.mean(0)) / flat.std(0, correction=0)
    assert torch.allclose(referenced, expected, atol=1e-5)
    assert not torch.allclose(own, referenced)


def test_a_pixel_constant_in_the_bank_is_centred_not_blown_up():
    """Digits has pixels that are blank in every training image; a test image with ink there
    must not get a feature of ~1e7 that decides its neighbours (StandardScaler's scale of 1)."""
    from selfsup.modalities.raw import standardised_pixels

    bank = torch.randint(0, 17, (40, 1, 2, 2), dtype=torch.uint8)
    bank[:, 0, 0, 0] = 0
    queries = torch.zeros(3, 1, 2, 2, dtype=torch.uint8)
    queries[:, 0, 0, 0] = 5
    for feats in (
        raw_pixel_features(queries, reference=bank),
        standardised_pixels(bank, queries)[1],
    ):
        assert torch.equal(feats[:, 0], torch.full((3,), 5.0))
        assert feats.abs().max() < 100


def test_knn_summary_names_the_settings_it_runs_with():
    from selfsup.config import EvalConfig

    features = Features(queries=torch.zeros(1, 1))
    eval_cfg = EvalConfig()
    assert (features.knn_k, features.knn_t) == (eval_cfg.knn_k, eval_cfg.knn_t)
    assert f"k={eval_cfg.knn_k}, T={eval_cfg.knn_t}" in PROTOCOLS["knn"].summary
