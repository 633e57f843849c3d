"""Losses with negatives (or positives) from a memory: a queue (MoCo), in-batch keys of a
momentum encoder (MoCo v3), a memory bank (InstDisc) and a support set (NNCLR).

Pure functions of tensors: the queue, bank or support set is an argument, never state here,
and a method gathers keys across processes before the call.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _check_2d(name: str, *tensors: torch.Tensor) -> None:
    for t in tensors:
        if t.dim() != 2:
            raise ValueError(f"{name} expects 2-d (N, D) tensors, got shape {tuple(t.shape)}")


def moco_infonce(
    q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor, temperature: float = 0.2
) -> torch.Tensor:
    """MoCo's InfoNCE against a queue of negatives (He et al. 2020, eq. 1; Chen et al. 2020b).

    Query q_i (N, D) has one positive, key k_i (N, D), and the K rows of `queue` (K, D) as
    negatives. All three are L2-normalised here; with l_pos = q_i . k_i and l_neg_j = q_i . c_j:

        loss = mean_i [ -l_pos / T + log( exp(l_pos / T) + sum_j exp(l_neg_j / T) ) ]

    `k` and `queue` carry no gradient in MoCo (the caller detaches them); q does.
    """
    _check_2d("moco_infonce", q, k, queue)
    if q.shape != k.shape or queue.shape[1] != q.shape[1]:
        raise ValueError(
            f"moco_infonce: q {tuple(q.shape)}, k {tuple(k.shape)} and queue "
            f"{tuple(queue.shape)} must share the feature size (and q, k their shape)"
        )
    with torch.autocast(q.device.type, enabled=False):
        q = F.normalize(q.float(), dim=1)
        k = F.normalize(k.float(), dim=1)
        queue = F.normalize(queue.float(), dim=1)
        l_pos = (q * k).sum(dim=1, keepdim=True)
        l_neg = q @ queue.T
        logits = torch.cat([l_pos, l_neg], dim=1) / temperature
    targets = torch.zeros(len(q), dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, targets)


def mocov3_contrastive(
    q: torch.Tensor, k: torch.Tensor, temperature: float = 0.2, offset: int = 0
) -> torch.Tensor:
    """MoCo v3's contrastive loss over in-batch keys (Chen, Xie & He 2021, Algorithm 1).

    q (N, D): this process's queries (predictor outputs); k (M, D): the keys of the whole
    (global) batch from the momentum encoder, M >= N. Query i's positive is k[offset + i]
    (offset = rank * N under DDP), every other key is a negative. On cosine similarity:

        loss = 2 T * mean_i CE( q_i . k^T / T, offset + i )

    The factor 2T is the paper's (it makes the gradient's scale independent of T). MoCo v3
    sums the loss of both view orders: ctr(q1, k2) + ctr(q2, k1).
    """
    _check_2d("mocov3_contrastive", q, k)
    if q.shape[1] != k.shape[1] or offset < 0 or offset + len(q) > len(k):
        raise ValueError(
            f"mocov3_contrastive: q {tuple(q.shape)} does not fit keys {tuple(k.shape)} at "
            f"offset {offset}"
        )
    with torch.autocast(q.device.type, enabled=False):
        logits = F.normalize(q.float(), dim=1) @ F.normalize(k.float(), dim=1).T / temperature
    targets = torch.arange(offset, offset + len(q), device=q.device)
    return 2 * temperature * F.cross_entropy(logits, targets)


def instdisc_nce(
    f: torch.Tensor,
    positive: torch.Tensor,
    negatives: torch.Tensor,
    num_samples: int,
    z: float | torch.Tensor,
    temperature: float = 0.07,
) -> torch.Tensor:
    """Noise-contrastive estimation of InstDisc (Wu et al. 2018, sec. 3.2, eqs. 5-7).

    f (B, D): L2-normalised embeddings of the batch; positive (B, D): each sample's own entry
    v_i of the memory bank; negatives (B, m, D): m entries drawn uniformly from the bank (the
    noise distribution P_n = 1 / n, n = num_samples). With P(i | v) = exp(v . f_i / T) / Z and
    h(i, v) = P(i | v) / (P(i | v) + m P_n):

        loss = mean_b [ -log h(i, v_i) - sum_{k=1..m} log(1 - h(i, v_k)) ]

    Z is the normalising constant, estimated once by Monte Carlo (see `instdisc_z`) and then held
    fixed, as in the paper. Computed in log space: log h = s - logaddexp(s, log(m / n)) and
    log(1 - h) = log(m / n) - logaddexp(s, log(m / n)), s = log P.
    """
    _check_2d("instdisc_nce", f, positive)
    if negatives.dim() != 3 or negatives.shape[0] != f.shape[0] or f.shape != positive.shape:
        raise ValueError(
            f"instdisc_nce: f {tuple(f.shape)}, positive {tuple(positive.shape)} and negatives "
            f"{tuple(negatives.shape)} must be (B, D), (B, D) and (B, m, D)"
        )
    m = negatives.shape[1]
    z = torch.as_tensor(z, dtype=torch.float32, device=f.device)
    log_noise = math.log(m / num_samples)
    with torch.autocast(f.device.type, enabled=False):
        f = f.float()
        s_pos = (f * positive.float()).sum(dim=1) / temperature - torch.log(z)
        s_neg = torch.einsum("bd,bmd->bm", f, negatives.float()) / temperature - torch.log(z)
        noise = torch.full_like(s_pos, log_noise)
        log_h_pos = s_pos - torch.logaddexp(s_pos, noise)
        log_1m_h_neg = log_noise - torch.logaddexp(s_neg, noise[:, None])
    return -(log_h_pos + log_1m_h_neg.sum(dim=1)).mean()


def instdisc_z(
    f: torch.Tensor, negatives: torch.Tensor, num_samples: int, temperature: float = 0.07
) -> torch.Tensor:
    """InstDisc's Monte-Carlo estimate of the partition function (Wu et al. 2018, eq. 8):

    Z ~= n E_j[exp(v_j . f_i / T)] ~= n / m * sum_k exp(v_k . f_i / T), averaged over i.
    """
    with torch.no_grad(), torch.autocast(f.device.type, enabled=False):
        s = torch.einsum("bd,bmd->bm", f.float(), negatives.float()) / temperature
        return num_samples * s.exp().mean()


def instdisc_softmax(
    f: torch.Tensor, bank: torch.Tensor, index: torch.Tensor, temperature: float = 0.07
) -> torch.Tensor:
    """InstDisc's non-parametric softmax over the whole memory bank (Wu et al. 2018, eq. 2),
    for banks small enough to score in full:

        loss = mean_b [ -log( exp(v_{i_b} . f_b / T) / sum_j exp(v_j . f_b / T) ) ]

    f (B, D) normalised embeddings, bank (n, D), index (B,) each sample's row of the bank.
    """
    _check_2d("instdisc_softmax", f, bank)
    with torch.autocast(f.device.type, enabled=False):
        logits = f.float() @ bank.float().T / temperature
    return F.cross_entropy(logits, index.long())


def nearest_neighbour(z: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """NNCLR's NN(z, Q) (Dwibedi et al. 2021, eq. 2): for each row of z (N, D), the row of the
    support set Q (S, D) of highest cosine similarity, L2-normalised and without gradient."""
    _check_2d("nearest_neighbour", z, support)
    with torch.no_grad():
        support = F.normalize(support.float(), dim=1)
        idx = (F.normalize(z.float(), dim=1) @ support.T).argmax(dim=1)
        return support[idx]
