"""A learned Mahalanobis metric: a linear map L (A = L^T L positive semi-definite) on flattened
pixels, or on a frozen encoder's features (`features=RUN`), trained on pairs of augmented views
of a sample (the precursor of the deep methods: metric learning with a learnable PSD matrix,
Xing et al. 2002; Weinberger & Saul 2009, LMNN; Goldberger et al. 2004, NCA).

`loss` picks the objective on z = L x of the two views (the pool of 2N rows, row i's positive
its other view, every other sample's view a negative):

- `nca` (default): NCA's softmax over minus the squared distances ||z_i - z_j||^2, which are
  Mahalanobis distances of the inputs (losses.nca_pairs); L's scale is its temperature.
- `triplet`: the triplet loss on squared distances with semi-hard negatives (losses.triplet),
  unnormalised so that the distances stay Mahalanobis; LMNN's unit margin.
- `nt-xent`: SimCLR's NT-Xent on the cosine of z (losses.nt_xent): the metric is then the
  cosine in L's space, not a Mahalanobis distance.

Defaults follow scikit-learn's NeighborhoodComponentsAnalysis (sklearn/neighbors/_nca.py): L
square (n_components = the input's dimension) and, for a square L, started at the identity
(its `init='auto'`), so training starts from the Euclidean metric of the standardised input.
scikit-learn fits with L-BFGS on labelled classes; here Adam on augmented views. The exported
encoder is the map (kind "mahalanobis"): kNN with its Euclidean distance is kNN with the
learned metric.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from selfsup.distributed import gather_with_grad
from selfsup.errors import SelfsupError
from selfsup.losses import nca_pairs, nt_xent, triplet
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models.mahalanobis import MahalanobisEncoder, MahalanobisSpec, frozen_encoder

LOSSES = ("nca", "triplet", "nt-xent")
INITS = ("identity", "random")


@dataclass
class MahalanobisConfig:
    loss: str = "nca"  # nca | triplet | nt-xent
    dim: int | None = None  # rows of L; None: the input's dimension (square, as sklearn NCA)
    init: str = "identity"  # identity (sklearn's choice for a square L) | random
    features: str | None = None  # a finished run whose frozen encoder feeds L; None: pixels
    margin: float = 1.0  # triplet, on squared distances (LMNN's unit margin)
    temperature: float = 0.1  # nt-xent
    gather_negatives: bool = True  # under DDP, negatives come from the global batch

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        if self.dim is not None and self.dim < 1:
            raise ValueError("dim must be a positive number of rows")
        if self.margin < 0 or self.temperature <= 0:
            raise ValueError("margin must be non-negative and temperature positive")


@register
class Mahalanobis(Method):
    """z = L x of two views; loss nca_pairs(z1, z2) (or triplet, nt-xent)."""

    name = "mahalanobis"
    family = "metric"
    paper = "Weinberger & Saul 2009; Goldberger et al. 2004 (NCA): a learned Mahalanobis metric"
    summary = "a linear map L (metric L^T L) that brings augmented views together"
    Config = MahalanobisConfig
    optimiser: ClassVar[dict[str, Any]] = {
        "name": "adamw",
        "lr": 1e-2,
        "weight_decay": 0.0,
        "warmup": 0.0,
    }
    optimiser_reference = (
        "none published for views: Adam 1e-2 (measured on digits), no weight decay (NCA has "
        "no regulariser; scikit-learn fits it with L-BFGS)"
    )
    inputs = frozenset({"image"})
    modalities = frozenset({"image"})
    augment_family = "simclr"
    exported_as = "the linear map L (its outputs' Euclidean distance is the learned metric)"

    def __init__(self, spec: Any, cfg: MahalanobisConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        base_kind = base_spec = None
        if cfg.features is not None:  # checked here, before any data is decoded for training
            base, base_kind, base_spec = frozen_encoder(cfg.features)
            in_dim = base.out_dim
            if getattr(base.spec, "in_channels", spec.in_channels) != spec.in_channels:
                raise SelfsupError(
                    f"the frozen encoder of {cfg.features} reads {base.spec.in_channels}-channel "
                    f"images; this data has {spec.in_channels}"
                )
        else:
            h, w = spec.height_width
            in_dim = spec.in_channels * h * w
        self.encoder = MahalanobisEncoder(
            MahalanobisSpec(
                spec.in_channels,
                spec.height_width,
                tuple(spec.mean),
                tuple(spec.std),
                cfg.dim or in_dim,
                cfg.features,
                base_kind,
                base_spec,
                tuple(spec.channel_groups),
            )
        )
        if cfg.init == "identity":  # a non-square L: the first rows (or columns) of I
            # scaled by 1 / sqrt(in_dim), so that squared distances of standardised inputs start
            # near 2, where NCA's softmax is neither flat nor saturated (the metric is the
            # Euclidean one either way: kNN ranks the same)
            with torch.no_grad():
                eye = torch.eye(self.encoder.out_dim, in_dim) / in_dim**0.5
                self.encoder.map.weight.copy_(eye)

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z1, z2 = self.encoder(views[0]), self.encoder(views[1])
        self.watch(z1)
        if self.cfg.gather_negatives:
            z1, z2 = gather_with_grad(z1), gather_with_grad(z2)
        if self.cfg.loss == "nca":
            loss = nca_pairs(z1, z2)
        elif self.cfg.loss == "triplet":
            loss = triplet(z1, z2, self.cfg.margin)
        else:
            loss = nt_xent(z1, z2, self.cfg.temperature)
        with torch.no_grad():
            scale = self.encoder.map.weight.pow(2).sum().sqrt()
        return loss, {"l_frobenius": scale}
