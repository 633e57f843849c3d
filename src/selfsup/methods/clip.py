"""CLIP (Radford et al., 2021): images and their captions must match among a batch's pairs.

An image tower and a text tower (the `clip` encoder kind), each with a linear projection into
a shared space; the symmetric cross-entropy over the scaled cosine similarities of every image
with every caption (`selfsup.losses.clip_loss`). The logit scale (1 / temperature) is learned,
starts at 1/0.07 and is clipped at 100, as in the paper. Under data parallelism each rank
scores its own rows against the gathered columns of every rank (open_clip's local loss), with
labels offset by rank * local batch: the same loss as one process on the global batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from selfsup import distributed
from selfsup.distributed import gather_with_grad
from selfsup.losses import clip_loss
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register


@dataclass
class CLIPConfig:
    """The paper's values: temperature initialised at 0.07 (logit scale 1/0.07 = 14.3),
    learnable, clipped at a logit scale of 100; the batch's pairs are the negatives (32,768
    in the paper; the global batch here under torchrun)."""

    init_temperature: float = 0.07
    max_logit_scale: float = 100.0
    learn_temperature: bool = True
    gather_negatives: bool = True  # under DDP, every rank's captions are each image's negatives

    def __post_init__(self) -> None:
        if self.init_temperature <= 0:
            raise ValueError("init_temperature must be positive")
        if self.max_logit_scale < 1 / self.init_temperature:
            raise ValueError("max_logit_scale must be at least 1 / init_temperature")


@register
class CLIP(Method):
    """Encoder: ClipEncoder (image tower + text tower + projections); loss: clip_loss."""

    name = "clip"
    family = "image-text"
    paper = "Radford et al. 2021, CLIP"
    summary = "images and their captions match among a batch's pairs"
    Config = CLIPConfig
    optimiser: ClassVar[dict[str, Any]] = {
        "name": "adamw",
        "lr": 2e-3,
        "weight_decay": 0.1,
        "betas": (0.9, 0.98),
    }
    optimiser_reference = (
        "open_clip's small-data example (CC3M: AdamW 1e-3 at batch 128, wd 0.1; the paper: "
        "5e-4 at batch 32768, wd 0.2)"
    )
    inputs = frozenset({"image", "input_ids", "attention_mask"})
    modalities = frozenset({"pair"})
    augment_family = "light"
    # The paper's ImageNet-scale run (ViT-B/32 ... ViT-L/14) keeps the same loss settings;
    # what changes there is the data and the model, set with --backbone and --model.
    presets: ClassVar[dict[str, dict[str, Any]]] = {"imagenet": {}}

    def __init__(self, spec: Any, cfg: CLIPConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        init = torch.tensor(math.log(1 / cfg.init_temperature))
        self.logit_scale = nn.Parameter(init, requires_grad=cfg.learn_temperature)

    def views(self, batch: Batch) -> list[Any]:
        image = self.augment(batch["image"]) if self.augment is not None else batch["image"]
        text = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        return [image, text]

    def scale(self) -> torch.Tensor:
        """exp(logit_scale), never above max_logit_scale."""
        return self.logit_scale.exp().clamp(max=self.cfg.max_logit_scale)

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        image = F.normalize(self.encoder.encode_image(views[0]), dim=1)
        text = F.normalize(self.encoder.encode_text(views[1]), dim=1)
        self.watch(image)
        all_image, all_text, offset = image, text, 0
        if self.cfg.gather_negatives and distributed.world_size() > 1:
            all_image, all_text = gather_with_grad(image), gather_with_grad(text)
            offset = distributed.rank() * image.shape[0]
        scale = self.scale()
        loss = clip_loss(image, text, scale, all_image=all_image, all_text=all_text, offset=offset)
        return loss, {"logit_scale": scale.detach()}

    def param_groups(self) -> list[dict[str, Any]]:
        """The towers and projections; the logit scale alone, without weight decay."""
        rest = [p for n, p in self.named_parameters() if n != "logit_scale" and p.requires_grad]
        groups: list[dict[str, Any]] = [{"params": rest}]
        if self.logit_scale.requires_grad:
            groups.append({"params": [self.logit_scale], "weight_decay": 0.0})
        return groups

    def after_step(self, progress: float) -> None:
        """Clip the learned logit scale at max_logit_scale (the paper clips the parameter)."""
        with torch.no_grad():
            self.logit_scale.clamp_(max=math.log(self.cfg.max_logit_scale))
