"""Label-free measures of an embedding's shape: alignment, uniformity, and collapse."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from selfsup.errors import SelfsupError
from selfsup.evaluate.context import Features


def _check_2d(name: str, z: Tensor, min_rows: int = 1) -> None:
    if z.ndim != 2 or len(z) < min_rows:
        raise SelfsupError(
            f"{name} expects (N, D) embeddings with N >= {min_rows}, got {tuple(z.shape)}"
        )


def alignment(z1: Tensor, z2: Tensor, alpha: float = 2) -> float:
    """Mean ||f(x) - f(y)||^alpha over positive pairs of L2-normalised embeddings (lower is better).

    Wang & Isola 2020, "Understanding Contrastive Representation Learning through Alignment and
    Uniformity on the Hypersphere"; row i of z1 and row i of z2 are two views of one sample.
    """
    _check_2d("alignment", z1)
    if z1.shape != z2.shape:
        raise SelfsupError(
            f"alignment needs two views of one shape, got {tuple(z1.shape)} and {tuple(z2.shape)}"
        )
    diff = F.normalize(z1.float(), dim=1) - F.normalize(z2.float(), dim=1)
    return diff.norm(dim=1).pow(alpha).mean().item()


def uniformity(z: Tensor, t: float = 2, *, max_samples: int = 5000, seed: int = 0) -> float:
    """log mean exp(-t ||zi - zj||^2) over distinct pairs of L2-normalised embeddings (lower is
    better). Wang & Isola 2020; at most max_samples rows, drawn with a seeded generator."""
    _check_2d("uniformity", z, min_rows=2)
    if len(z) > max_samples:
        idx = torch.randperm(len(z), generator=torch.Generator().manual_seed(seed))[:max_samples]
        z = z[idx.to(z.device)]
    sq_dists = torch.pdist(F.normalize(z.float(), dim=1), p=2).pow(2)
    return (torch.logsumexp(-t * sq_dists, dim=0) - math.log(len(sq_dists))).item()


def coincide(*embeddings: Tensor, tol: float = 1e-6) -> bool:
    """Whether every row of every tensor is one point on the sphere after L2 normalisation
    (all-zero rows count as the same point): a collapsed encoder."""
    z = F.normalize(torch.cat([e.float() for e in embeddings]), dim=1)
    return bool((z - z[:1]).abs().max() <= tol) if len(z) else True


def effective_rank(z: Tensor) -> float:
    """RankMe (Garrido et al. 2023): exp of the entropy of the normalised singular values of z.

    Ranges from 1 (every embedding on one line) to D (singular values all equal).
    """
    _check_2d("effective_rank", z)
    s = torch.linalg.svdvals(z.double())
    p = s / s.sum().clamp_min(1e-12) + 1e-7
    return math.exp(-(p * p.log()).sum().item())


def collapse_stats(z: Tensor) -> dict[str, float]:
    """Collapse monitor: mean per-dimension std of L2-normalised embeddings (about 1/sqrt(D) when
    healthy, 0 when collapsed; SimSiam, Chen & He 2021) and RankMe effective rank."""
    _check_2d("collapse_stats", z, min_rows=2)
    dim = z.shape[1]
    return {
        "std": F.normalize(z.float(), dim=1).std(dim=0).mean().item(),
        "std_reference": 1.0 / math.sqrt(dim),
        "effective_rank": effective_rank(z),
        "dim": dim,
    }


def geometry_protocol(features: Features) -> dict[str, float]:
    """The `geometry` protocol on the exported (backbone) features of the queries.

    alignment (when two augmented views were embedded) and uniformity (Wang & Isola 2020), and
    the backbone's feature std and effective rank. The std reference 1/sqrt(d) holds for
    normalised projector outputs, where training monitors collapse (`proj_std` in metrics);
    backbone features after a ReLU are non-negative and sit below it even when healthy.

    A collapsed encoder (every view one point, or all zero) gets no alignment: two views of one
    point are trivially aligned, so the figure would be perfect and mean nothing. Its other
    figures say what it is: uniformity 0 (the worst value), std 0, effective rank 1.
    """
    results: dict[str, float] = {}
    if features.views is not None and not coincide(*features.views):
        results["alignment"] = alignment(*features.views)
    results["uniformity"] = uniformity(features.queries)
    stats = collapse_stats(features.queries)
    results["backbone_std"] = stats["std"]
    results["backbone_effective_rank"] = stats["effective_rank"]
    return results
