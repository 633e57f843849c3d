"""Joint-embedding losses without negatives: BYOL, SimSiam, Barlow Twins, VICReg.

Each function is pure (tensors in, a scalar out). A method that trains under DDP gathers the
embeddings of every rank (`selfsup.distributed.gather_with_grad`) before calling the
batch-statistics losses (Barlow Twins, VICReg), so that they see the global batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _check_pair(name: str, a: torch.Tensor, b: torch.Tensor, min_rows: int = 1) -> None:
    if a.shape != b.shape or a.dim() != 2:
        raise ValueError(
            f"{name} expects two (N, D) tensors of equal shape, got {a.shape} and {b.shape}"
        )
    if a.shape[0] < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} rows (samples), got {a.shape[0]}")


def normalized_mse(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """BYOL's regression loss (Grill et al., 2020, eq. 2): the mean squared error between the
    L2-normalised prediction p and target z, i.e. mean_i [2 - 2 cos(p_i, z_i)].

    Gradients flow into both arguments; BYOL passes a target made without gradient.
    """
    _check_pair("normalized_mse", p, z)
    with torch.autocast(p.device.type, enabled=False):
        cos = F.cosine_similarity(_upcast(p), _upcast(z), dim=1)
    return (2 - 2 * cos).mean()


def negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """SimSiam's D(p, z) = -mean_i cos(p_i, z_i) (Chen & He, 2021, eq. 1).

    The stop-gradient of SimSiam (D(p, stopgrad(z))) is the method's: it passes `z.detach()`.
    """
    _check_pair("negative_cosine", p, z)
    with torch.autocast(p.device.type, enabled=False):
        return -F.cosine_similarity(_upcast(p), _upcast(z), dim=1).mean()


def _upcast(x: torch.Tensor) -> torch.Tensor:
    """fp32 for half-precision inputs (batch statistics need the mantissa); others unchanged."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _standardise(z: torch.Tensor, eps: float) -> torch.Tensor:
    """Per-dimension batch standardisation, as BatchNorm1d(affine=False) in training mode."""
    return (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + eps)


def barlow_twins_loss(
    z1: torch.Tensor, z2: torch.Tensor, lambd: float = 5e-3, eps: float = 1e-5
) -> torch.Tensor:
    """Barlow Twins (Zbontar et al., 2021, eq. 1-2): with z1, z2 (N, D) standardised over the
    batch (mean 0, biased std 1 per dimension, as BatchNorm without affine), the
    cross-correlation C = z1^T z2 / N (D, D) is pushed to the identity:

        loss = sum_i (1 - C_ii)^2 + lambd * sum_{i != j} C_ij^2

    N must be the global batch: a method gathers the embeddings of every rank first.
    """
    _check_pair("barlow_twins_loss", z1, z2, min_rows=2)
    with torch.autocast(z1.device.type, enabled=False):
        a, b = _standardise(_upcast(z1), eps), _standardise(_upcast(z2), eps)
        c = a.T @ b / a.shape[0]
    diag = torch.diagonal(c)
    on = (1 - diag).pow(2).sum()
    off = c.pow(2).sum() - diag.pow(2).sum()
    return on + lambd * off


def vicreg_terms(
    z1: torch.Tensor, z2: torch.Tensor, eps: float = 1e-4
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """VICReg's three terms (Bardes et al., 2022, sec. 2), over a batch of N embeddings (N, D):

    - invariance: mean squared error mean_{i,k} (z1_ik - z2_ik)^2;
    - variance: for each branch, mean_k max(0, 1 - sqrt(Var(z_k) + eps)) (unbiased variance),
      averaged over the two branches (as facebookresearch/vicreg and lightly: the published
      25 / 25 / 1 coefficients were tuned on the average, not the sum);
    - covariance: for each branch, sum_{k != l} Cov(z)_kl^2 / D with Cov = (z - mean)^T
      (z - mean) / (N - 1), summed over the two branches.
    """
    _check_pair("vicreg_terms", z1, z2, min_rows=2)
    with torch.autocast(z1.device.type, enabled=False):
        z1, z2 = _upcast(z1), _upcast(z2)
        invariance = F.mse_loss(z1, z2)
        variance = z1.new_zeros(())
        covariance = z1.new_zeros(())
        n, d = z1.shape
        for z in (z1, z2):
            z = z - z.mean(0)
            std = torch.sqrt(z.var(0) + eps)
            variance = variance + F.relu(1 - std).mean() / 2
            cov = z.T @ z / (n - 1)
            covariance = covariance + (cov.pow(2).sum() - torch.diagonal(cov).pow(2).sum()) / d
    return invariance, variance, covariance


def vicreg_loss(
    z1: torch.Tensor,
    z2: torch.Tensor,
    sim_weight: float = 25.0,
    var_weight: float = 25.0,
    cov_weight: float = 1.0,
    eps: float = 1e-4,
) -> torch.Tensor:
    """VICReg (Bardes et al., 2022, eq. 6): sim_weight * invariance + var_weight * variance +
    cov_weight * covariance, the terms of `vicreg_terms` (paper: 25, 25, 1). N must be the
    global batch: a method gathers the embeddings of every rank first."""
    inv, var, cov = vicreg_terms(z1, z2, eps)
    return sim_weight * inv + var_weight * var + cov_weight * cov
