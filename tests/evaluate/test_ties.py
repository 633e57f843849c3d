"""Ties never count as hits: a classification protocol scores a query correct only when the
true class beats every other class strictly (top-k: fewer than k classes score at least as high).

Each case below is an encoder that knows nothing (one output for every input) on queries that
all belong to class 0: the lowest class index wins every argmax / topk tie, so before the rule
each scored 100 %. The linear probe and fine-tuning score by the same rule (`label_hits`).
"""

import torch

from selfsup.evaluate import knn_accuracy
from selfsup.evaluate.ties import label_hits
from selfsup.evaluate.zeroshot import zeroshot_accuracy

BANK_LABELS = torch.arange(40) % 4  # balanced: every class's vote ties


def test_label_hits_count_ties_against_the_true_class():
    scores = torch.tensor([[1.0, 1.0, 0.0], [2.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    labels = torch.tensor([0, 0, 2])
    assert label_hits(scores, labels).tolist() == [False, True, False]
    assert label_hits(scores, labels, k=2).tolist() == [True, True, True]
    assert label_hits(torch.ones(1, 5), torch.tensor([0]), k=4).tolist() == [False]


def test_knn_on_constant_features_is_not_a_perfect_score():
    bank, queries = torch.ones(40, 8), torch.ones(10, 8)
    assert knn_accuracy(bank, BANK_LABELS, queries, torch.zeros(10, dtype=torch.long), k=40) == 0


def test_zeroshot_with_constant_class_prompts_is_not_a_perfect_score():
    images, classes = torch.randn(10, 8), torch.ones(6, 8)
    labels = torch.zeros(10, dtype=torch.long)
    assert zeroshot_accuracy(images, classes, labels) == 0
    assert zeroshot_accuracy(images, classes, labels, top=5) == 0
