import pytest
import torch
from torch import nn

from selfsup.errors import SelfsupError
from selfsup.evaluate import PROTOCOLS, evaluate_encoder, evaluate_features, raw_pixel_features

GEOMETRY_KEYS = {"uniformity", "embedding_std", "embedding_std_reference", "effective_rank"}


def clustered(n, seed, dim=16, classes=4):
    gen = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, dim, generator=torch.Generator().manual_seed(0)) * 3
    labels = torch.randint(0, classes, (n,), generator=gen)
    return centers[labels] + torch.randn(n, dim, generator=gen), labels


def test_all_protocols_give_stable_flat_keys():
    x_train, y_train = clustered(300, 1)
    x_test, y_test = clustered(100, 2)
    views = (x_test, x_test + 0.1 * torch.randn_like(x_test))
    results = evaluate_features(x_train, y_train, x_test, y_test, PROTOCOLS, views=views)
    assert set(results) == {"knn_top1", "linear_top1", "linear_weight_decay", "alignment"} | (
        GEOMETRY_KEYS
    )
    assert results["knn_top1"] > 0.9 and results["linear_top1"] > 0.9
    assert all(isinstance(v, float) for v in results.values())


def test_protocols_as_comma_string_and_subset():
    x_train, y_train = clustered(100, 1)
    results = evaluate_features(x_train, y_train, x_train, y_train, "knn, knn", knn_k=5)
    assert set(results) == {"knn_top1"}


def test_geometry_needs_no_labels():
    x_test, _ = clustered(100, 2)
    results = evaluate_features(None, None, x_test, None, ["geometry"])
    assert set(results) == GEOMETRY_KEYS


def test_unknown_protocol_lists_valid_ones():
    x, y = clustered(20, 1)
    with pytest.raises(SelfsupError, match=r"unknown evaluation protocol.*knn, linear, geometry"):
        evaluate_features(x, y, x, y, ["knn", "svm"])
    with pytest.raises(SelfsupError, match="no protocol"):
        evaluate_features(x, y, x, y, [])


def test_missing_labels_say_geometry_works_without():
    x, _ = clustered(20, 1)
    with pytest.raises(SelfsupError, match=r"no labels.*linear.*'geometry'"):
        evaluate_features(x, None, x, None, ["geometry", "linear"])


class MeanColour(nn.Module):
    """Pooled per-channel mean plus a fixed random projection: enough to separate colours."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(3, 8)

    def forward(self, x):
        return self.proj(x.mean(dim=(2, 3)))


def coloured_images(n, seed):
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 3, (n,), generator=gen)
    base = torch.full((n, 3, 6, 6), 40.0)
    base[torch.arange(n), labels] = 200.0
    noise = torch.randint(-30, 30, base.shape, generator=gen)
    return (base + noise).clamp(0, 255).to(torch.uint8), labels


def test_evaluate_encoder_end_to_end():
    torch.manual_seed(0)
    encoder = MeanColour().train()
    train_images, train_labels = coloured_images(200, 1)
    test_images, test_labels = coloured_images(60, 2)

    def augment(batch):
        return (batch.float() / 255 + 0.05 * torch.randn(batch.shape)).clamp(0, 1)

    results = evaluate_encoder(
        encoder,
        train_images,
        train_labels,
        test_images,
        test_labels,
        PROTOCOLS,
        augment=augment,
        batch_size=32,
        knn_k=10,
    )
    assert results["knn_top1"] > 0.95 and results["linear_top1"] > 0.95
    assert 0.0 < results["alignment"] < 1.0
    assert encoder.training


def test_evaluate_encoder_geometry_without_labels_or_train_set():
    images, _ = coloured_images(30, 3)
    results = evaluate_encoder(MeanColour(), None, None, images, None, "geometry")
    assert set(results) == GEOMETRY_KEYS
    with pytest.raises(SelfsupError, match="no labels"):
        evaluate_encoder(MeanColour(), None, None, images, None, "knn")


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
