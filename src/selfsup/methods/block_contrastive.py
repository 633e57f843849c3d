"""Block contrastive learning (Arora et al. 2019, "A theoretical analysis of contrastive
unsupervised representation learning", Sec. 6.2), self-supervised: the anchor is view 0 of a
sample, its positive block the average of b further views of the same sample, its negative
block the average of b views of b other samples of the (global) batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from selfsup.distributed import gather_with_grad
from selfsup.errors import SelfsupError
from selfsup.losses import block_contrastive
from selfsup.methods._metric_common import MetricConfig, MetricMethod
from selfsup.methods.base import Batch
from selfsup.methods.registry import register


@dataclass
class BlockContrastiveConfig(MetricConfig):
    block_size: int = 2  # b: views per positive block, other samples per negative block
    # The paper's inner product is on raw f; we L2-normalise and divide by a temperature,
    # which keeps the logistic loss out of saturation on small data (normalize=False,
    # temperature=1 is the paper's plain form).
    normalize: bool = True
    temperature: float = 0.2

    def __post_init__(self) -> None:
        if self.block_size < 1:
            raise ValueError("block_size must be at least 1")
        if self.temperature <= 0:
            raise ValueError("temperature must be positive")


@register
class BlockContrastive(MetricMethod):
    """1 + b views per sample; loss block_contrastive(anchor, positive block, negative block)."""

    name = "block_contrastive"
    paper = "Arora et al. 2019, block contrastive"
    summary = "an anchor against averaged blocks: its own other views, other samples"
    Config = BlockContrastiveConfig

    def __init__(self, spec: Any, cfg: BlockContrastiveConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        self.num_views = 1 + cfg.block_size

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z = self.embed(views)
        if self.cfg.normalize:
            z = [F.normalize(v, dim=1) for v in z]
        if self.cfg.gather_negatives:
            z = [gather_with_grad(v) for v in z]
        anchors, others = z[0], torch.stack(z[1:], dim=1)  # (N, D), (N, b, D)
        n, b = others.shape[:2]
        if n <= b:
            raise SelfsupError(
                f"block_contrastive needs more samples per batch ({n}) than block_size ({b})"
            )
        # Negative block of sample i: view k of sample i + o_k, with b distinct offsets o_k in
        # 1..N-1 per step (the same on every rank: the generator follows the step count).
        offsets = torch.randperm(n - 1, generator=self.generator())[:b] + 1
        rows = (torch.arange(n)[:, None] + offsets[None, :]) % n  # (N, b)
        negatives = others[rows.to(others.device), torch.arange(b, device=others.device)]
        return block_contrastive(anchors, others, negatives, self.cfg.temperature), {}
