"""MoCo v1 / v2 (He et al. 2020; Chen, Fan, Girshick & He 2020): a query encoder, a momentum
key encoder and a queue of past keys as negatives.

The query q = g(f(v1)) must match the key k = g'(f'(v2)) of the momentum encoder against the K
keys of earlier batches kept in a queue (`moco_infonce`). v1 has a linear head and T 0.07; v2
an MLP head (Linear-ReLU-Linear) and T 0.2 (its stronger augmentation is the recipe's).

State: the key encoder (a frozen submodule, moved by EMA after each step), the queue (K, D)
and its pointer, persistent buffers saved in checkpoints. Keys are gathered from every rank
before they are enqueued, so all ranks hold the same queue; a batch that crosses the end of
the queue wraps around to its start (no key is dropped). With `symmetric`, both view orders
use the queue as it was at the start of the step; their keys are enqueued after both.

BatchNorm shortcut: a key encoder whose BN statistics come from the same samples as the
query's lets the model cheat through them. Under DDP the key images are shuffled across ranks
(gather, one permutation shared by every rank, each rank encodes its slice, gather, unshuffle);
on one process the shuffled batch runs through the key encoder in `bn_splits` sub-batches, each
with its own BN statistics (MoCo's split-batch BN for one GPU).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.distributed as torch_dist
import torch.nn.functional as F
from torch import nn

from selfsup.distributed import gather_without_grad, rank, world_size
from selfsup.errors import SelfsupError
from selfsup.losses import moco_infonce
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models import cosine_momentum, ema_update, momentum_teacher
from selfsup.models.queue import Queue, load_old_checkpoints, ring_upgrade


@dataclass
class MoCoConfig:
    """Defaults: MoCo's CIFAR-10 settings (K 4096, m 0.99, as in the authors' CIFAR demo);
    the papers' ImageNet values (K 65536, m 0.999) are the "imagenet" preset."""

    version: int = 2  # 1: linear head, T 0.07; 2: MLP head, T 0.2
    temperature: float | None = None  # None: 0.07 for v1, 0.2 for v2
    queue_size: int = 4096  # K
    momentum: float = 0.99  # m of the key encoder's EMA
    momentum_schedule: bool = False  # True: m rises to 1 on a half cosine (not in v1/v2)
    proj_dim: int = 128
    proj_hidden_dim: int = 2048  # v2's MLP head (the backbone's width in the paper)
    symmetric: bool = False  # loss of both view orders, averaged
    bn_splits: int = 8  # one process: the key encoder's BN over this many sub-batches
    shuffle_bn: bool = True  # False: no shuffle / split (to measure the shortcut)

    def __post_init__(self) -> None:
        if self.version not in (1, 2):
            raise ValueError(f"version must be 1 or 2, got {self.version}")
        if self.temperature is None:
            self.temperature = 0.07 if self.version == 1 else 0.2
        if self.temperature <= 0:
            raise ValueError("temperature must be positive")
        if self.queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        if not 0.0 <= self.momentum <= 1.0:
            raise ValueError("momentum must lie in [0, 1]")
        if self.bn_splits < 1:
            raise ValueError("bn_splits must be at least 1")


def moco_head(in_dim: int, hidden_dim: int, out_dim: int, version: int) -> nn.Module:
    """v1: a linear layer; v2: Linear-ReLU-Linear (MoCo v2, sec. 3; no BatchNorm)."""
    if version == 1:
        return nn.Linear(in_dim, out_dim)
    return nn.Sequential(
        nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim)
    )


def shared_permutation(n: int, device: torch.device) -> torch.Tensor:
    """A random permutation of n, the same on every rank (drawn on rank 0, broadcast)."""
    perm = torch.randperm(n, device=device)
    if world_size() > 1:
        torch_dist.broadcast(perm, src=0)
    return perm


@torch.no_grad()
def shuffled_keys(key_net: nn.Module, x: torch.Tensor, bn_splits: int) -> torch.Tensor:
    """Keys of `x` from `key_net` with BatchNorm statistics that never pair a key with its own
    query's batch: shuffled across ranks under DDP, split into sub-batches on one process.

    Returns this rank's keys in the order of `x`.
    """
    if world_size() > 1:
        local = len(x)
        everything = gather_without_grad(x)
        perm = shared_permutation(len(everything), x.device)
        mine = perm[rank() * local : (rank() + 1) * local]
        keys = gather_without_grad(key_net(everything[mine]))
        unshuffled = torch.empty_like(keys)
        unshuffled[perm] = keys
        return unshuffled[rank() * local : (rank() + 1) * local]
    if bn_splits > len(x):
        raise SelfsupError(
            f"method.bn_splits {bn_splits} exceeds the batch of {len(x)}; lower it or the batch"
        )
    perm = torch.randperm(len(x), device=x.device)
    keys = torch.cat([key_net(chunk) for chunk in x[perm].chunk(bn_splits)])
    unshuffled = torch.empty_like(keys)
    unshuffled[perm] = keys
    return unshuffled


@register
class MoCo(Method):
    """Query net g(f(.)), key net = EMA copy of it, queue of K normalised keys (MoCo v1/v2)."""

    name = "moco"
    family = "contrastive, queue or memory"
    paper = "He et al. 2020; Chen et al. 2020, MoCo v1/v2"
    summary = "queries match momentum-encoder keys against a queue of past keys"
    Config = MoCoConfig
    optimiser: ClassVar[dict[str, Any]] = {
        "name": "sgd",
        "lr": 0.03,
        "weight_decay": 5e-4,
        "momentum": 0.9,
    }
    optimiser_reference = (
        "the authors' CIFAR-10 demo (SGD 0.06 at batch 512, wd 5e-4; MoCo v2 ImageNet: 0.03 "
        "at 256, wd 1e-4)"
    )
    inputs = frozenset({"image"})
    modalities = frozenset({"image"})
    augment_family = "simclr"
    # Every rank enqueues the same gathered keys: DDP need not broadcast the queue each step.
    unsynced_buffers = ("queue",)
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "imagenet": {"queue_size": 65536, "momentum": 0.999}
    }

    def __init__(self, spec: Any, cfg: MoCoConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        self.head = moco_head(self.encoder.out_dim, cfg.proj_hidden_dim, cfg.proj_dim, cfg.version)
        self.key_encoder = momentum_teacher(self.encoder)
        self.key_head = momentum_teacher(self.head)
        start = F.normalize(torch.randn(cfg.queue_size, cfg.proj_dim), dim=1)
        self.queue = Queue(cfg.queue_size, cfg.proj_dim, start)
        load_old_checkpoints(self, ring_upgrade("queue", "queue_ptr", "queue"))

    def keys(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised keys of the momentum encoder, BN shortcut stopped (see module doc)."""

        def key_net(v: torch.Tensor) -> torch.Tensor:
            return F.normalize(self.key_head(self.key_encoder(v)), dim=1)

        if not self.cfg.shuffle_bn:
            with torch.no_grad():
                return key_net(x)
        return shuffled_keys(key_net, x, self.cfg.bn_splits)

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        v1, v2 = views[0], views[1]
        q1 = F.normalize(self.head(self.encoder(v1)), dim=1)
        self.watch(q1)
        # The negatives of this step: the queue as it was before any of this step's keys.
        negatives = self.queue.rows.clone()
        k2 = self.keys(v2)
        loss = moco_infonce(q1, k2, negatives, self.cfg.temperature)
        new_keys = [k2]
        if self.cfg.symmetric:
            q2 = F.normalize(self.head(self.encoder(v2)), dim=1)
            k1 = self.keys(v1)
            loss = 0.5 * (loss + moco_infonce(q2, k1, negatives, self.cfg.temperature))
            new_keys.append(k1)
        with torch.no_grad():
            accuracy = ((q1 * k2).sum(1, keepdim=True) > q1 @ negatives.T).all(1).float().mean()
        for k in new_keys:
            self.queue.push(gather_without_grad(k))
        return loss, {"pos_top1": accuracy}

    def after_step(self, progress: float) -> None:
        m = self.cfg.momentum
        if self.cfg.momentum_schedule:
            m = cosine_momentum(progress, m)
        ema_update(self.key_encoder, self.encoder, m)
        ema_update(self.key_head, self.head, m)
