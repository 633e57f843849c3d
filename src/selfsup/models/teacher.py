"""Momentum teachers (BYOL, MoCo, DINO): a frozen copy of a network, moved towards it by EMA.

One place for the three pieces every momentum method needs, so that no method writes them again:
`momentum_teacher` copies, `ema_update` moves, `cosine_momentum` schedules. A teacher is a
submodule of the method (so it is saved in checkpoints and restored on resume) whose parameters
do not require gradients and are left out of the method's `param_groups()`.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.optim.swa_utils import get_ema_multi_avg_fn


def momentum_teacher(student: nn.Module) -> nn.Module:
    """A deep copy of `student` with gradients off: the teacher starts equal to the student."""
    teacher = copy.deepcopy(student)
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float) -> None:
    """teacher <- momentum * teacher + (1 - momentum) * student, parameters and float buffers.

    Buffers (BatchNorm running statistics) follow the same average; integer buffers
    (num_batches_tracked) are copied.
    """
    t_params = [p for p in teacher.parameters()]
    s_params = [p.detach() for p in student.parameters()]
    if len(t_params) != len(s_params):
        raise ValueError("teacher and student have different parameter lists")
    # One fused (foreach) lerp of every parameter tensor, through torch's public EMA helper.
    get_ema_multi_avg_fn(momentum)(t_params, s_params, None)
    for t, s in zip(teacher.buffers(), student.buffers(), strict=True):
        if t.is_floating_point():
            t.lerp_(s, 1.0 - momentum)
        else:
            t.copy_(s)


def cosine_momentum(progress: float, base: float = 0.99, final: float = 1.0) -> float:
    """BYOL's schedule: base at progress 0, rising to final at progress 1 along a half cosine.

    tau = final - (final - base) * (cos(pi * progress) + 1) / 2  (Grill et al. 2020, sec. 3.2).
    """
    progress = min(max(progress, 0.0), 1.0)
    return final - (final - base) * (math.cos(math.pi * progress) + 1) / 2
