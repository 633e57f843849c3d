"""NNCLR (Dwibedi et al. 2021): the positive of a view is the nearest neighbour of its
embedding in a support set of past embeddings, not the other view itself.

z = g(f(v)) (projection), p = h(z) (predictor). With NN(z, Q) the support-set row closest to z
(`nearest_neighbour`), the loss is InfoNCE between NN(z1) and the predictions p2 of the other
view over the (global) batch, made symmetric (paper eq. 3 and sec. 3.2):

    loss = ( info_nce(NN(z1), p2) + info_nce(NN(z2), p1) ) / 2,   T 0.1

The support set Q is a queue (a persistent buffer, with its pointer) of the normalised
projections z1 of past batches, gathered across ranks before they are enqueued: every rank
holds the same support set (solo-learn's per-GPU support sets diverged at 16 GPUs). The
nearest neighbours and the predictions are gathered too, so the loss is the global batch's on
every rank.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from selfsup.distributed import gather_with_grad, gather_without_grad
from selfsup.losses import info_nce, nearest_neighbour
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models import projection_head
from selfsup.models.queue import Queue, load_old_checkpoints, ring_upgrade


@dataclass
class NNCLRConfig:
    """The paper's values except the support set: 98304 in the paper (ImageNet; the "imagenet"
    preset); 16384 here for CIFAR-size data (a third of CIFAR-10's 50000 images, so the
    neighbours are at most a third of an epoch old). Use fewer on tiny sets (digits: 1024)."""

    temperature: float = 0.1
    queue_size: int = 16384  # the support set Q
    proj_hidden_dim: int = 2048
    proj_dim: int = 256
    proj_layers: int = 3
    pred_hidden_dim: int = 4096

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError("temperature must be positive")
        if self.queue_size < 1:
            raise ValueError("queue_size must be at least 1")


@register
class NNCLR(Method):
    """Projection g, predictor h, a support-set queue; nearest neighbours as positives."""

    name = "nnclr"
    family = "contrastive, queue or memory"
    paper = "Dwibedi et al. 2021, NNCLR"
    summary = "a view's positive is its nearest neighbour in a queue of past embeddings"
    Config = NNCLRConfig
    optimiser: ClassVar[dict[str, Any]] = {"name": "lars", "lr": 0.4, "weight_decay": 1e-5}
    optimiser_reference = (
        "solo-learn's CIFAR NNCLR (the paper's ImageNet: LARS 0.3 x batch/256, wd 1e-6)"
    )
    inputs = frozenset({"image"})
    modalities = frozenset({"image"})
    augment_family = "byol"
    # Every rank enqueues the same gathered rows: DDP need not broadcast them each step.
    unsynced_buffers = ("support",)
    presets: ClassVar[dict[str, dict[str, Any]]] = {"imagenet": {"queue_size": 98304}}

    def __init__(self, spec: Any, cfg: NNCLRConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        self.projector = projection_head(
            self.encoder.out_dim, cfg.proj_hidden_dim, cfg.proj_dim, cfg.proj_layers
        )
        self.predictor = projection_head(cfg.proj_dim, cfg.pred_hidden_dim, cfg.proj_dim, 2)
        start = F.normalize(torch.randn(cfg.queue_size, cfg.proj_dim), dim=1)
        self.support = Queue(cfg.queue_size, cfg.proj_dim, start)
        load_old_checkpoints(self, ring_upgrade("support", "support_ptr", "support"))

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z1, z2 = (self.projector(self.encoder(v)) for v in views[:2])
        p1, p2 = self.predictor(z1), self.predictor(z2)
        self.watch(F.normalize(z1, dim=1))
        nn1 = gather_without_grad(nearest_neighbour(z1, self.support.rows))
        nn2 = gather_without_grad(nearest_neighbour(z2, self.support.rows))
        p1, p2 = gather_with_grad(p1), gather_with_grad(p2)
        t = self.cfg.temperature
        loss = 0.5 * (info_nce(nn1, p2, t) + info_nce(nn2, p1, t))
        new = gather_without_grad(F.normalize(z1.detach(), dim=1))
        self.support.push(new)
        return loss, {}
