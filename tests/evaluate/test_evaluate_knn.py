import math

import pytest
import torch

from selfsup.errors import SelfsupError
from selfsup.evaluate import knn_accuracy, knn_predict


def reference_knn(train, labels, queries, k, temperature, num_classes):
    """Weighted kNN written plainly: full similarity list per query, sort, vote."""
    train = [t / t.norm() for t in train.double()]
    preds = []
    for q in queries.double():
        q = q / q.norm()
        sims = [float(q @ t) for t in train]
        nearest = sorted(range(len(train)), key=lambda i: -sims[i])[:k]
        scores = [0.0] * num_classes
        for i in nearest:
            scores[int(labels[i])] += math.exp(sims[i] / temperature)
        preds.append(max(range(num_classes), key=lambda c: scores[c]))
    return torch.tensor(preds)


@pytest.fixture
def data():
    gen = torch.Generator().manual_seed(0)
    train = torch.randn(120, 16, generator=gen)
    labels = torch.randint(0, 5, (120,), generator=gen)
    queries = torch.randn(37, 16, generator=gen)
    return train, labels, queries


@pytest.mark.parametrize("k", [1, 10, 50, 120, 500])
@pytest.mark.parametrize("temperature", [0.07, 0.5])
def test_knn_predict_matches_reference(data, k, temperature):
    train, labels, queries = data
    expected = reference_knn(train, labels, queries, min(k, len(train)), temperature, 5)
    got = knn_predict(train, labels, queries, k=k, temperature=temperature, num_classes=5)
    assert torch.equal(got, expected)


@pytest.mark.parametrize("chunk_size", [1, 5, 8, 36, 37, 1000])
def test_chunked_equals_unchunked(data, chunk_size):
    train, labels, queries = data
    whole = knn_predict(train, labels, queries, k=20, chunk_size=len(queries))
    assert torch.equal(knn_predict(train, labels, queries, k=20, chunk_size=chunk_size), whole)


def test_k_larger_than_bank_votes_with_whole_bank(data):
    train, labels, queries = data
    small_train, small_labels = train[:7], labels[:7]
    expected = reference_knn(small_train, small_labels, queries, 7, 0.1, 5)
    assert torch.equal(knn_predict(small_train, small_labels, queries, k=200), expected)


def test_nearest_neighbour_is_scale_invariant(data):
    train, labels, _ = data
    preds = knn_predict(train, labels, 3.0 * train, k=1)
    assert torch.equal(preds, labels)


def test_knn_accuracy_on_clusters_and_range(data):
    gen = torch.Generator().manual_seed(1)
    centers = torch.randn(4, 32, generator=gen) * 3
    y_train = torch.randint(0, 4, (400,), generator=gen)
    y_test = torch.randint(0, 4, (100,), generator=gen)
    x_train = centers[y_train] + torch.randn(400, 32, generator=gen)
    x_test = centers[y_test] + torch.randn(100, 32, generator=gen)
    assert knn_accuracy(x_train, y_train, x_test, y_test, k=20) > 0.95
    acc = knn_accuracy(x_train, y_train, x_test, torch.randint(0, 4, (100,), generator=gen))
    assert 0.0 <= acc < 0.5


def test_labels_above_bank_classes_are_counted_as_wrong(data):
    train, labels, queries = data
    wrong = torch.full((len(queries),), 9)
    assert knn_accuracy(train, labels, queries, wrong) == 0.0


def test_bad_inputs_give_clear_errors(data):
    train, labels, queries = data
    with pytest.raises(SelfsupError, match="feature sizes differ"):
        knn_predict(train, labels, queries[:, :8])
    with pytest.raises(SelfsupError, match="one label per bank feature"):
        knn_predict(train, labels[:5], queries)
    with pytest.raises(SelfsupError, match="at least one training feature"):
        knn_predict(train[:0], labels[:0], queries)
    with pytest.raises(SelfsupError, match="class indices >= 0"):
        knn_predict(train, labels - 1, queries)
    with pytest.raises(SelfsupError, match="2 features but 3 labels"):
        knn_accuracy(train, labels, queries[:2], labels[:3])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(data):
    train, labels, queries = data
    cpu = knn_predict(train, labels, queries, k=20)
    gpu = knn_predict(train.cuda(), labels.cuda(), queries.cuda(), k=20, chunk_size=8)
    assert gpu.is_cuda and torch.equal(gpu.cpu(), cpu)
