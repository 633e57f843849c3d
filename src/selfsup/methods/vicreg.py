"""VICReg (Bardes et al., 2022): variance-invariance-covariance regularisation of two views'
embeddings; no negatives, no asymmetry, no normalisation of the embeddings.

Encoder f, expander g (3 layers); with z = g(f(v)) the loss is sim_weight * MSE(z1, z2) +
var_weight * hinge on each dimension's std + cov_weight * off-diagonal covariance, the batch
statistics over the GLOBAL batch under DDP (embeddings gathered with their gradient first).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from selfsup.losses import vicreg_terms
from selfsup.methods._joint_common import TwoViewJointMethod, check_projector
from selfsup.methods.base import Batch
from selfsup.methods.registry import register


@dataclass
class VICRegConfig:
    # Paper: lambda = mu = 25, nu = 1, eps 1e-4, expander 8192-8192-8192 at ImageNet (the
    # imagenet preset); at CIFAR size we use 2048-2048-2048 (as solo-learn's CIFAR recipe).
    sim_weight: float = 25.0
    var_weight: float = 25.0
    cov_weight: float = 1.0
    proj_hidden_dim: int = 2048
    proj_dim: int = 2048
    proj_layers: int = 3

    def __post_init__(self) -> None:
        if min(self.sim_weight, self.var_weight, self.cov_weight) < 0:
            raise ValueError("the loss weights must be >= 0")
        check_projector(self, "expander")


@register
class VICReg(TwoViewJointMethod):
    """Encoder f, expander g; loss 25 invariance + 25 variance + 1 covariance (global batch)."""

    name = "vicreg"
    paper = "Bardes, Ponce & LeCun 2022, VICReg"
    summary = "invariance between views, variance and decorrelation of each branch"
    Config = VICRegConfig
    optimiser: ClassVar[dict[str, Any]] = {"name": "lars", "lr": 0.3, "weight_decay": 1e-4}
    optimiser_reference = (
        "solo-learn's CIFAR VICReg (the paper's ImageNet: LARS 0.2 x batch/256, wd 1e-6)"
    )

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z1, z2 = self.embed_pair(views)
        inv, var, cov = vicreg_terms(z1, z2)
        c = self.cfg
        loss = c.sim_weight * inv + c.var_weight * var + c.cov_weight * cov
        terms = {"invariance": inv, "variance": var, "covariance": cov}
        return loss, {k: v.detach() for k, v in terms.items()}
