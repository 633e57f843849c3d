"""Content/style disentanglement's loss (AdaIN-VC, Chou et al. 2019): reconstruction alone,
with the content code a VAE's (a KL term toward N(0, I))."""

from __future__ import annotations

import torch

from selfsup.errors import SelfsupError
from selfsup.losses.variational import gaussian_kl


def mean_gaussian_kl(mu: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(log_var)) || N(0, 1)) averaged over every element (not summed per sample
    as a VAE's): 0.5 * mean(exp(log_var) + mu^2 - 1 - log_var), the reference's `loss_kl`
    (solver.py)."""
    return gaussian_kl(mu, log_var).sum() / mu.numel()


def disentangle_loss(
    reconstruction: torch.Tensor,
    target: torch.Tensor,
    mu: torch.Tensor,
    log_var: torch.Tensor,
    lambda_rec: float = 10.0,
    lambda_kl: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, L1 reconstruction, KL): lambda_rec * mean|reconstruction - target| + lambda_kl *
    `mean_gaussian_kl(mu, log_var)`, AdaIN-VC's objective (solver.py's `ae_step`; lambda_kl is
    annealed by the caller)."""
    if reconstruction.shape != target.shape:
        raise SelfsupError(
            f"reconstruction {tuple(reconstruction.shape)} and target {tuple(target.shape)} differ"
        )
    rec = (reconstruction - target).abs().mean()
    kl = mean_gaussian_kl(mu, log_var)
    return lambda_rec * rec + lambda_kl * kl, rec, kl
