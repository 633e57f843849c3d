"""SwAV (Caron et al. 2020, "Unsupervised Learning of Visual Features by Contrasting Cluster
Assignments"): online clustering with swapped prediction. Features of every view are compared
with K learnable prototypes; the codes of the two global views come from Sinkhorn-Knopp
(equipartitioned over the global batch, and over a queue of past features when batches are
small), and each view predicts the code of the other views.

Under DDP the prototype scores are gathered (without gradient) so that Sinkhorn's sums run over
the global batch; each process keeps the codes of its own samples. Gathering the (B, K) scores is
equivalent to all-reducing Sinkhorn's sums, and keeps `sinkhorn_knopp` a pure function. The
queue holds the projections of the global batch (gathered before they are enqueued), so every
process holds the same queue, its length counts samples of the global batch (as the reference's
`queue_length`, split there over processes), and a checkpoint from rank 0 restores it exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from selfsup.distributed import gather_without_grad, rank, world_size
from selfsup.errors import SelfsupError
from selfsup.losses import sinkhorn_knopp, swav_loss
from selfsup.methods._multicrop import GLOBAL_VIEWS, by_size, local_crop_count
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models import projection_head
from selfsup.models.queue import Queue, load_old_checkpoints


def _upgrade_queue(state: dict, prefix: str) -> None:
    """A checkpoint from before models/queue.py: the (2, L, D) queue, newest row first, and its
    fill count become one Queue per view that reads them back in that order."""
    if prefix + "queue_filled" in state:
        old, filled = state.pop(prefix + "queue"), state.pop(prefix + "queue_filled")
        for v, rows in enumerate(old):
            state[f"{prefix}queue.{v}.rows"] = rows.flip(0)
            state[f"{prefix}queue.{v}.pointer"] = torch.zeros((), dtype=torch.long)
            state[f"{prefix}queue.{v}.filled"] = filled.clone()


@dataclass
class SwAVConfig:
    # CIFAR-size defaults: the paper's and solo-learn's CIFAR values (3000 prototypes, a queue
    # of 3840), except epsilon and the queue's start, measured on CIFAR-10 at the benchmark's
    # budget (docs/methods-clustering.md).
    prototypes: int = 3000  # K (paper: 3000)
    proj_hidden_dim: int = 2048  # (paper: 2048)
    proj_dim: int = 128  # (paper: 128)
    temperature: float = 0.1  # (paper: 0.1)
    # Sinkhorn's entropy weight (paper: 0.05; its README's remedy for a loss stuck at ln K:
    # 0.03). At 0.05 the CIFAR-10 runs stayed at ln 3000 with the projections collapsing.
    epsilon: float = 0.03
    sinkhorn_iterations: int = 3  # (paper: 3)
    # local views beside the 2 global ones (paper: 6 at 96 px); None: as many as the recipe
    # defines (swav-multicrop: 6; the CIFAR-size recipe: none, as solo-learn's CIFAR SwAV)
    local_crops: int | None = None
    # The prototypes' lr is 0 for this fraction of training, so that it means the same under
    # train.epochs and train.time_budget (paper: 313 iterations, one epoch of 800).
    freeze_prototypes: float = 0.002
    queue_length: int = 3840  # past global-batch features (paper: 3840 at batch 256; 0: none)
    # Epochs actually trained (samples seen / training set size) before the queue joins the
    # codes: the paper's batch-256 run starts it at epoch 15 (of 200; solo-learn's CIFAR at 50
    # of 1000), once the features have settled. A fraction of the run would start it far
    # earlier in a short one: at 5 % or 25 % of 4 CIFAR-10 epochs it collapsed the projections.
    queue_start_epochs: float = 15.0

    def __post_init__(self) -> None:
        if self.temperature <= 0 or self.epsilon <= 0:
            raise ValueError("temperature and epsilon must be positive")
        if self.sinkhorn_iterations < 1 or self.prototypes < 2:
            raise ValueError("sinkhorn_iterations must be >= 1 and prototypes >= 2")
        if (self.local_crops or 0) < 0 or self.queue_length < 0 or self.queue_start_epochs < 0:
            raise ValueError("local_crops, queue_length and queue_start_epochs must be >= 0")
        if not 0 <= self.freeze_prototypes < 1:
            raise ValueError("freeze_prototypes is a fraction of training in [0, 1)")


@register
class SwAV(Method):
    """Encoder f, projection g, prototypes C; swav_loss(g(f(v)) . C, sinkhorn codes)."""

    name = "swav"
    family = "clustering and distillation"
    paper = "Caron et al. 2020, SwAV"
    summary = "each view predicts the other's Sinkhorn cluster codes over learned prototypes"
    Config = SwAVConfig
    optimiser: ClassVar[dict[str, Any]] = {"name": "lars", "lr": 0.6, "weight_decay": 1e-6}
    optimiser_reference = (
        "solo-learn's CIFAR SwAV (the paper's ImageNet: LARS 0.6 at batch 256, wd 1e-6)"
    )
    inputs = frozenset({"image"})
    modalities = frozenset({"image"})
    augment_family = "swav"
    # Every process enqueues the same gathered projections: DDP need not broadcast the queue.
    unsynced_buffers = ("queue",)
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        # ResNet-50, batch 256 on ImageNet: epsilon 0.05, a queue of 3840 from epoch 15
        "imagenet": {"epsilon": 0.05, "queue_start_epochs": 15.0}
    }

    def __init__(self, spec: Any, cfg: SwAVConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        self.local_crops = local_crop_count("swav", cfg.local_crops, augment)
        self.num_views = GLOBAL_VIEWS + self.local_crops
        self.projection_head = projection_head(
            self.encoder.out_dim, cfg.proj_hidden_dim, cfg.proj_dim, 2
        )
        self.prototypes = nn.Linear(cfg.proj_dim, cfg.prototypes, bias=False)
        self._normalize_prototypes()
        # one queue per global view, read newest first (as the reference's, whose rows shift)
        self.queue = nn.ModuleList(
            Queue(cfg.queue_length, cfg.proj_dim) for _ in range(GLOBAL_VIEWS)
        )
        load_old_checkpoints(self, _upgrade_queue)
        # Samples of the global batch trained on: the epochs reached, with the training set's
        # size from bind_data (the queue's start counts them, whatever drives the run).
        self.register_counter("samples_seen")
        self.num_samples = 0

    def bind_data(self, num_samples: int) -> None:
        """The training set's size, to count the epochs reached."""
        self.num_samples = num_samples

    def epochs_reached(self) -> float:
        """Epochs trained so far (0 until bind_data says the training set's size)."""
        return self.counter("samples_seen") / self.num_samples if self.num_samples else 0.0

    @torch.no_grad()
    def _normalize_prototypes(self) -> None:
        self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))

    def _embed(self, views: list[torch.Tensor]) -> list[torch.Tensor]:
        """Normalised projections of every view; views of one size go through together."""
        return by_size(lambda x: F.normalize(self.projection_head(self.encoder(x)), dim=1), views)

    def use_queue(self) -> bool:
        """Whether this step's codes also see the queue: past queue_start_epochs and the queue
        full."""
        return (
            self.cfg.queue_length > 0
            and self.epochs_reached() >= self.cfg.queue_start_epochs
            # full: every sample seen was pushed (a step pushes its global batch, or a full queue)
            and self.counter("samples_seen") >= self.cfg.queue_length
        )

    @torch.no_grad()
    def codes(self, scores: torch.Tensor, view: int) -> torch.Tensor:
        """Sinkhorn codes of this process's samples of global view `view`, equipartitioned over
        the global batch (and the queue once it is in use)."""
        pooled = gather_without_grad(scores.detach())
        start = rank() * len(scores) if world_size() > 1 else 0
        if self.use_queue():
            pooled = torch.cat([self.prototypes(self.queue[view].newest_first()), pooled])
            start += self.cfg.queue_length
        q = sinkhorn_knopp(pooled, self.cfg.epsilon, self.cfg.sinkhorn_iterations)
        return q[start : start + len(scores)]

    @torch.no_grad()
    def _enqueue(self, z: list[torch.Tensor]) -> None:
        """Put the global batch's projections of the global views at the queue's front."""
        n = self.cfg.queue_length
        if n == 0:
            return
        new = [gather_without_grad(z[v].detach()) for v in range(GLOBAL_VIEWS)]
        b = min(len(new[0]), n)
        for v in range(GLOBAL_VIEWS):
            self.queue[v].push(new[v][:b].flip(0))  # reversed: newest_first() reads it in order

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if len(views) < GLOBAL_VIEWS:
            raise SelfsupError(f"swav needs at least 2 views, got {len(views)}")
        z = self._embed(views)
        self.watch(z[0])
        scores = [self.prototypes(zv) for zv in z]
        codes = [self.codes(scores[v], v) for v in range(GLOBAL_VIEWS)]
        loss = swav_loss(scores, codes, self.cfg.temperature)
        queued = torch.tensor(float(self.use_queue()))
        self._enqueue(z)
        self.set_counter(
            "samples_seen", self.counter("samples_seen") + len(views[0]) * world_size()
        )
        return loss, {"queue_used": queued}

    def param_groups(self) -> list[dict[str, Any]]:
        rest = [*self.encoder.parameters(), *self.projection_head.parameters()]
        prototypes = {
            "params": [self.prototypes.weight],
            "frozen_until": self.cfg.freeze_prototypes,
        }
        return [{"params": rest}, prototypes]

    def after_step(self, progress: float) -> None:
        self._normalize_prototypes()
