"""TS2Vec (Yue et al. 2022, "TS2Vec: Towards Universal Representation of Time Series";
reference github.com/yuezhihan/ts2vec, ts2vec.py): two overlapping crops of each series, the
dilated CNN encoder (`selfsup.models.ts2vec`, timestamp masking and dropout while training) on
each, and the hierarchical contrastive loss (`selfsup.losses.hierarchical_contrastive_loss`) on
the representations of the steps both crops share.

Cropping as the reference: per batch, an overlap of crop_l steps [left, right) and two wider
windows [eleft, right) and [left, eright) around it, drawn on the host from a generator seeded by
the step count (the same on every process, so the gathered crops have one length); each series
then moves the whole pattern by its own offset, drawn on the device, within its valid length
(a series shorter than the pattern starts at 0 and the rest is padding, which the encoder sees as
masked steps). The series are z-normalised before cropping, so both crops see the same values.

The exported encoder is the reference's evaluated network: the stochastic weight average
(torch.optim.swa_utils.AveragedModel's arithmetic) of the encoder after every step, kept as a
module so that it is saved in checkpoints and resumes exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn
from torch.optim.swa_utils import get_swa_multi_avg_fn

from selfsup.distributed import gather_with_grad
from selfsup.errors import SelfsupError
from selfsup.losses import hierarchical_contrastive_loss
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models import momentum_teacher


@dataclass
class TS2VecConfig:
    # The reference's defaults (train.py): alpha 0.5, temporal_unit 0, max_train_length 3000.
    alpha: float = 0.5  # weight of the instance-wise term; 1 - alpha: the temporal term
    temporal_unit: int = 0  # the temporal term starts at scale 2^temporal_unit
    max_train_length: int = 3000  # crops span at most this many steps

    def __post_init__(self) -> None:
        if not 0 <= self.alpha <= 1:
            raise ValueError("alpha is a weight in [0, 1]")
        if self.temporal_unit < 0:
            raise ValueError("temporal_unit must be at least 0")
        if self.max_train_length < 2 ** (self.temporal_unit + 1):
            raise ValueError("max_train_length must be at least 2^(temporal_unit + 1)")


def crop_pattern(length: int, temporal_unit: int, g: torch.Generator) -> tuple[int, ...]:
    """The reference's crop pattern on series of `length` steps: (eleft, left, right, eright),
    eleft <= left < right <= eright, an overlap of right - left >= 2^(temporal_unit + 1) steps."""

    def randint(low: int, high: int) -> int:  # in [low, high)
        return int(torch.randint(low, high, (), generator=g))

    crop_l = randint(2 ** (temporal_unit + 1), length + 1)
    left = randint(0, length - crop_l + 1)
    right = left + crop_l
    return randint(0, left + 1), left, right, randint(right, length + 1)


@register
class TS2Vec(Method):
    """Dilated CNN on two overlapping crops; hierarchical instance + temporal contrast."""

    name = "ts2vec"
    family = "series"
    paper = "Yue et al. 2022, TS2Vec"
    summary = "two overlapping crops agree per time step, against other series and other steps"
    views_note = (
        "two overlapping random crops of each series (the reference's cropping) and random "
        "timestamp masking inside the encoder; the loss contrasts the shared steps against the "
        "batch's other series and the series' other steps, over time scales"
    )
    Config = TS2VecConfig
    # the reference's: torch.optim.AdamW(lr=1e-3) (weight decay 0.01, torch's default) at batch
    # 8 -> 0.032 per 256 samples; a constant learning rate
    optimiser: ClassVar[dict[str, Any]] = {
        "name": "adamw",
        "lr": 1e-3 * 256 / 8,
        "weight_decay": 0.01,
        "warmup": 0.0,
        "final_lr_fraction": 1.0,
    }
    optimiser_reference = "the reference's (AdamW 1e-3 at batch 8, constant)"
    inputs = frozenset({"series", "mask"})
    modalities = frozenset({"series"})
    backbones: ClassVar[dict[str, str]] = {"series": "ts2vec"}
    exported_as = "stochastic weight average of the encoder over every step (the reference's)"
    presets: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, spec: Any, cfg: TS2VecConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        if spec.kind != "ts2vec":
            raise SelfsupError(
                f"ts2vec trains its own encoder (model.backbone=ts2vec); this run gives a "
                f"{spec.kind!r} one: leave model.backbone unset"
            )
        # AveragedModel's start: a copy of the encoder, averaged over 1 model so far
        self.averaged = momentum_teacher(self.encoder)
        self.register_counter("steps_averaged", torch.long)
        self.set_counter("steps_averaged", 1)
        self.register_counter("draws", torch.long)

    def views(self, batch: Batch) -> list[Any]:
        series, mask = batch["series"], batch["mask"].bool()
        b, _, t = series.shape
        length = min(t, self.cfg.max_train_length)
        if length < 2 ** (self.cfg.temporal_unit + 1):
            raise SelfsupError(
                f"ts2vec: series of {t} steps are too short to crop two overlapping segments "
                f"of at least {2 ** (self.cfg.temporal_unit + 1)} steps"
            )
        g = torch.Generator().manual_seed(1_000_003 * int(self.counter("draws")) + 29)
        eleft, left, right, eright = crop_pattern(length, self.cfg.temporal_unit, g)
        # each series' offset in [-eleft, valid_length - eright] (reference: its full length)
        room = (mask.sum(1) - eright + eleft).clamp_min(0)
        offset = (torch.rand(b, device=series.device) * (room + 1)).floor().long() - eleft
        offset = torch.minimum(offset, room - eleft)  # rand() may round up to 1.0
        x = self.encoder.normalise(series.float(), mask)
        crops = []
        for start, stop in ((eleft, right), (left, eright)):
            index = offset[:, None] + torch.arange(start, stop, device=series.device)
            crops.append(
                {
                    "series": x.gather(2, index[:, None].expand(-1, x.shape[1], -1)),
                    "mask": mask.gather(1, index),
                    "overlap": right - left,
                }
            )
        return crops

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        n = views[0]["overlap"]
        out1, _ = self.encoder.timestamps(views[0], normalised=True)
        out2, _ = self.encoder.timestamps(views[1], normalised=True)
        z1, z2 = out1[:, -n:], out2[:, :n]
        self.watch(z1.amax(1))
        z1, z2 = gather_with_grad(z1), gather_with_grad(z2)
        loss = hierarchical_contrastive_loss(z1, z2, self.cfg.alpha, self.cfg.temporal_unit)
        return loss, {}

    def after_step(self, progress: float) -> None:
        n = int(self.counter("steps_averaged"))
        averaged = [p.detach() for p in self.averaged.parameters()]
        current = [p.detach() for p in self.encoder.parameters()]
        get_swa_multi_avg_fn()(averaged, current, n)  # avg += (current - avg) / (n + 1)
        self.set_counter("steps_averaged", n + 1)
        self.set_counter("draws", self.counter("draws") + 1)

    def exported(self) -> nn.Module:
        return self.averaged
