import pytest
import torch

from selfsup.errors import SelfsupError
from selfsup.evaluate import linear_probe
from selfsup.evaluate.linear import WEIGHT_DECAYS


def blobs(n, dim, classes, spread, seed):
    gen = torch.Generator().manual_seed(seed)
    centers = torch.randn(classes, dim, generator=torch.Generator().manual_seed(99)) * spread
    labels = torch.randint(0, classes, (n,), generator=gen)
    # an offset and per-dimension scale that standardization must undo
    feats = (centers[labels] + torch.randn(n, dim, generator=gen)) * 50 + 7
    return feats, labels


def test_separable_data_is_learned():
    x_train, y_train = blobs(800, 32, 6, spread=1.5, seed=0)
    x_test, y_test = blobs(300, 32, 6, spread=1.5, seed=1)
    result = linear_probe(x_train, y_train, x_test, y_test)
    assert result["accuracy"] > 0.95
    assert result["weight_decay"] in WEIGHT_DECAYS
    assert 0.0 <= result["val_accuracy"] <= 1.0


def test_random_labels_stay_near_chance():
    gen = torch.Generator().manual_seed(2)
    x_train, x_test = torch.randn(1000, 32, generator=gen), torch.randn(1000, 32, generator=gen)
    y_train = torch.randint(0, 10, (1000,), generator=gen)
    y_test = torch.randint(0, 10, (1000,), generator=gen)
    assert linear_probe(x_train, y_train, x_test, y_test)["accuracy"] < 0.16


def test_same_seed_same_result_and_custom_grid():
    x_train, y_train = blobs(300, 8, 3, spread=0.5, seed=3)
    x_test, y_test = blobs(100, 8, 3, spread=0.5, seed=4)
    first = linear_probe(x_train, y_train, x_test, y_test, seed=5, weight_decays=(0.1, 1e-4))
    again = linear_probe(x_train, y_train, x_test, y_test, seed=5, weight_decays=(0.1, 1e-4))
    assert first == again
    assert first["weight_decay"] in (0.1, 1e-4)


def test_probe_runs_under_no_grad():
    x_train, y_train = blobs(200, 8, 3, spread=2.0, seed=6)
    with torch.no_grad():
        assert linear_probe(x_train, y_train, x_train, y_train)["accuracy"] > 0.9


def test_bad_inputs_give_clear_errors():
    x, y = blobs(50, 8, 3, spread=1.0, seed=7)
    with pytest.raises(SelfsupError, match="equal width"):
        linear_probe(x, y, x[:, :4], y)
    with pytest.raises(SelfsupError, match="one label per feature"):
        linear_probe(x, y[:10], x, y)
    with pytest.raises(SelfsupError, match="class indices >= 0"):
        linear_probe(x, y - 1, x, y)
