"""Losses of self-distillation and online clustering: DINO's cross-entropy between a centred,
sharpened teacher and a student, Sinkhorn-Knopp's equipartitioned codes and SwAV's swapped
prediction.

Pure functions of tensors: a method keeps the centre, the queue and the prototypes, and gathers
scores across processes before calling `sinkhorn_knopp` (so its sums run over the global batch).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def _check_views(name: str, student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor]):
    if not teacher or len(student) < len(teacher):
        raise ValueError(
            f"{name} needs at least one teacher view and no more teacher views than student "
            f"views; got {len(teacher)} teacher and {len(student)} student views"
        )
    shape = teacher[0].shape
    if len(shape) != 2 or any(t.shape != shape for t in [*student, *teacher]):
        raise ValueError(
            f"{name} expects (B, K) tensors of one shape, got "
            f"{[tuple(t.shape) for t in student]} and {[tuple(t.shape) for t in teacher]}"
        )


def dino_loss(
    student: Sequence[torch.Tensor],
    teacher: Sequence[torch.Tensor],
    center: torch.Tensor,
    student_temperature: float = 0.1,
    teacher_temperature: float = 0.04,
) -> torch.Tensor:
    """DINO's self-distillation loss (Caron et al. 2021, "Emerging Properties in
    Self-Supervised Vision Transformers", eq. 3 and sec. 3.1).

    `student[v]` (B, K) are the student head's logits for every view (global views first),
    `teacher[i]` (B, K) the teacher's for the global views only, `center` (K,) the running
    mean of teacher logits. With P_t^i = softmax((teacher[i] - center) / teacher_temperature)
    (centring and sharpening; no gradient through it) and log P_s^v =
    log_softmax(student[v] / student_temperature):

        loss = 1 / #pairs  sum_{i in teacher views} sum_{v != i}  mean_b [ -P_t^i . log P_s^v ]

    the pairs (i, v) skipping each global view compared with itself.
    """
    _check_views("dino_loss", student, teacher)
    with torch.autocast(teacher[0].device.type, enabled=False):
        targets = [
            F.softmax((t.float() - center.float()) / teacher_temperature, dim=1).detach()
            for t in teacher
        ]
        log_probs = [F.log_softmax(s.float() / student_temperature, dim=1) for s in student]
        total, pairs = teacher[0].new_zeros((), dtype=torch.float32), 0
        for i, target in enumerate(targets):
            for v, log_p in enumerate(log_probs):
                if v == i:
                    continue
                total = total + (-(target * log_p).sum(dim=1)).mean()
                pairs += 1
    if pairs == 0:
        raise ValueError("dino_loss needs at least two views")
    return total / pairs


@torch.no_grad()
def sinkhorn_knopp(
    scores: torch.Tensor, epsilon: float = 0.05, iterations: int = 3
) -> torch.Tensor:
    """Soft codes of SwAV (Caron et al. 2020, "Unsupervised Learning of Visual Features by
    Contrasting Cluster Assignments", sec. 3.1 and algorithm 1): the transport plan of
    Q = exp(scores / epsilon), alternately normalised so that the K prototypes share the B
    samples equally (each row of Q^T sums to 1/K) and each sample has total mass 1/B; after
    `iterations` rounds the columns are rescaled to sum to 1, so each returned row is a
    distribution over prototypes.

    `scores` (B, K): the cosine similarities of every sample of the GLOBAL batch (gather them
    first under DDP) with the prototypes. Returns (B, K) codes without gradient.
    """
    if scores.dim() != 2:
        raise ValueError(f"sinkhorn_knopp expects (B, K) scores, got {tuple(scores.shape)}")
    if epsilon <= 0 or iterations < 1:
        raise ValueError("sinkhorn_knopp needs epsilon > 0 and at least one iteration")
    with torch.autocast(scores.device.type, enabled=False):
        logits = scores.float() / epsilon
        # Each prototype's row of Q is normalised first, so subtracting that row's maximum
        # changes nothing in the result and keeps exp finite (and every row sum positive).
        q = torch.exp(logits - logits.max(dim=0, keepdim=True).values).T  # (K, B)
        k, b = q.shape
        q = q / q.sum()
        for _ in range(iterations):
            q = q / q.sum(dim=1, keepdim=True) / k  # each prototype: mass 1/K
            q = q / q.sum(dim=0, keepdim=True) / b  # each sample: mass 1/B
        return (q * b).T


def swav_loss(
    scores: Sequence[torch.Tensor],
    codes: Sequence[torch.Tensor],
    temperature: float = 0.1,
) -> torch.Tensor:
    """SwAV's swapped prediction (Caron et al. 2020, eq. 1 and 2): the code of one view is
    predicted from every other view.

    `scores[v]` (B, K): cosine similarities of view v's normalised features with the normalised
    prototypes, every view (the code views first); `codes[i]` (B, K): Sinkhorn codes of view i
    (the global views). With log p_v = log_softmax(scores[v] / temperature):

        loss = 1 / #pairs  sum_i sum_{v != i}  mean_b [ -codes[i] . log p_v ]
    """
    _check_views("swav_loss", scores, codes)
    with torch.autocast(scores[0].device.type, enabled=False):
        log_probs = [F.log_softmax(s.float() / temperature, dim=1) for s in scores]
        total, pairs = scores[0].new_zeros((), dtype=torch.float32), 0
        for i, q in enumerate(codes):
            q = q.float().detach()
            for v, log_p in enumerate(log_probs):
                if v == i:
                    continue
                total = total + (-(q * log_p).sum(dim=1)).mean()
                pairs += 1
    if pairs == 0:
        raise ValueError("swav_loss needs at least two views")
    return total / pairs
