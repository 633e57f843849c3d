"""Momentum-teacher helpers: a frozen copy, an EMA update, BYOL's cosine momentum schedule."""

import math

import torch
from torch import nn

from selfsup.models import cosine_momentum, ema_update, momentum_teacher


def net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))


def test_teacher_is_a_frozen_copy():
    student = net()
    teacher = momentum_teacher(student)
    for (n, s), t in zip(student.named_parameters(), teacher.parameters(), strict=True):
        assert torch.equal(s, t) and not t.requires_grad, n
        assert s.data_ptr() != t.data_ptr()


def test_ema_update_matches_the_formula_for_parameters_and_buffers():
    student = net()
    teacher = momentum_teacher(student)
    student(torch.randn(16, 4))  # moves BatchNorm running statistics
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    ema_update(teacher, student, 0.9)
    after, now = teacher.state_dict(), student.state_dict()
    for key, old in before.items():
        if old.is_floating_point():
            assert torch.allclose(after[key], 0.9 * old + 0.1 * now[key], atol=1e-6), key
        else:
            assert torch.equal(after[key], now[key]), key


def test_cosine_momentum_schedule():
    assert math.isclose(cosine_momentum(0.0, 0.99), 0.99)
    assert math.isclose(cosine_momentum(1.0, 0.99), 1.0)
    assert math.isclose(cosine_momentum(0.5, 0.99), 0.995)
    values = [cosine_momentum(p / 10, 0.996) for p in range(11)]
    assert values == sorted(values)
