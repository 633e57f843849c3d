"""CPC, Contrastive Predictive Coding (van den Oord et al., 2018): a strided convolutional
encoder turns the raw series into latents z_t, a GRU summarises z_1..z_t into a context c_t, and
one linear predictor W_k per future step k = 1..K must pick z_{t+k} out of negatives by the
score (W_k c_t) . z (InfoNCE, `selfsup.losses.cpc_info_nce`).

Negatives come from the other sequences of the (global, under DDP) batch and the other steps of
the same sequence ("all"), or only one of the two ("batch", "same"); as in the paper, a fixed
number of them (`num_negatives`, CPC_audio's 128) is drawn per step k, shared by the anchors of
a sequence, so that a step costs B T N scores, not (B T)^2 (every candidate is used where the
set holds no more). The accuracy of the contrastive task per step is logged as `cpc_acc_k1` ...
`cpc_acc_kK` (NaN for a step that no series of the batch is long enough to predict). No
augmentation. The exported encoder is the series encoder; its features are the context vectors
averaged over the valid steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from selfsup.distributed import gather_with_grad, gather_without_grad
from selfsup.errors import SelfsupError
from selfsup.losses import cpc_accuracy, cpc_info_nce
from selfsup.losses.predictive import NEGATIVES, sample_negatives
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register


@dataclass
class CPCConfig:
    # The paper's audio setting (LibriSpeech, 16 kHz): K = 12 steps ahead (120 ms), negatives
    # from the same and other sequences of the mini-batch, Adam at lr 2e-4 at batch 64 (the
    # method's default optimiser). Steps beyond the sequence's length are left out.
    prediction_steps: int = 12
    negatives: str = "all"  # all | batch (other sequences, same step) | same (same sequence)
    # negatives drawn per sequence and step k (CPC_audio's negativeSamplingExt: 128); 0 = all
    num_negatives: int = 128
    gather_negatives: bool = True  # under DDP, negatives come from the global batch

    def __post_init__(self) -> None:
        if self.prediction_steps < 1:
            raise ValueError("prediction_steps must be at least 1")
        if self.num_negatives < 0:
            raise ValueError("num_negatives must be 0 (every candidate) or more")
        if self.negatives not in NEGATIVES:
            raise ValueError(f"negatives must be one of {NEGATIVES}, got {self.negatives!r}")


@register
class CPC(Method):
    """Series encoder (convolutions + GRU), one linear predictor per step k; InfoNCE per k."""

    name = "cpc"
    family = "series"
    paper = "van den Oord, Li & Vinyals 2018, CPC"
    summary = "a context predicts the latents of future steps among negatives"
    views_note = (
        "none; the method predicts the series' future latent steps from its past (the "
        "series itself is the input)"
    )
    Config = CPCConfig
    optimiser: ClassVar[dict[str, Any]] = {"name": "adamw", "lr": 8e-4, "weight_decay": 0.0}
    optimiser_reference = "the paper's (Adam 2e-4 at batch 64: 8 GPUs of 8)"
    inputs = frozenset({"series", "mask"})
    modalities = frozenset({"series"})
    # predictors of steps beyond a short series' length get no gradient (DDP must know)
    find_unused_parameters = True
    presets: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, spec: Any, cfg: CPCConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        if spec.kind != "series":
            raise SelfsupError(f"cpc trains a series encoder; this data gives a {spec.kind!r} one")
        self.predictors = nn.ModuleList(
            nn.Linear(spec.context_dim, spec.channels, bias=False)
            for _ in range(cfg.prediction_steps)
        )

    def views(self, batch: Batch) -> list[Any]:
        return [{"series": batch["series"], "mask": batch["mask"]}]

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z, valid = self.encoder.latents(views[0])
        c = self.encoder.context(z)
        self.watch(c.mean(1))
        steps = z.shape[1]
        if steps < 2:
            raise SelfsupError(
                f"cpc: the series give {steps} latent steps, too few to predict a step ahead"
            )
        if valid is None:
            valid = torch.ones(z.shape[:2], dtype=torch.bool, device=z.device)
        losses, present, figures = [], [], {}
        for k, predictor in enumerate(self.predictors[: steps - 1], start=1):
            pred, target, ok = predictor(c[:, :-k]), z[:, k:], valid[:, k:]
            if self.cfg.gather_negatives:
                pred, target = gather_with_grad(pred), gather_with_grad(target)
                ok = gather_without_grad(ok.to(torch.uint8)).bool()  # gloo: no bool
            neg = self.cfg.negatives
            idx = sample_negatives(ok.shape, neg, self.cfg.num_negatives, device=ok.device)
            losses.append(cpc_info_nce(pred, target, ok, neg, idx))
            present.append(ok.any())
            figures[f"cpc_acc_k{k}"] = cpc_accuracy(pred, target, ok, neg, idx)
        # The mean over the steps k that have a valid target, as masked sums: no host sync.
        weight = torch.stack(present).to(losses[0].dtype)
        return (torch.stack(losses) * weight).sum() / weight.sum(), figures
