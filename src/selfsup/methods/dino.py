"""DINO (Caron et al. 2021, "Emerging Properties in Self-Supervised Vision Transformers"):
self-distillation with no labels. A student (encoder + DINO head) matches the output
distribution of a momentum teacher on other views of the same image; the teacher's outputs are
centred (a running mean, all-reduced over processes) and sharpened (a low temperature) so that
neither one dimension nor the uniform distribution can win.

Multi-crop: views 0 and 1 are global crops (the teacher sees only these), views 2.. are local
crops (the `multicrop` augmentation recipe makes 2 global + 6 local views of smaller size).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from selfsup.distributed import world_size
from selfsup.errors import SelfsupError
from selfsup.losses import dino_loss
from selfsup.methods._multicrop import GLOBAL_VIEWS, by_size, local_crop_count
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register
from selfsup.models import cosine_momentum, ema_update, momentum_teacher


class NormalizedLinear(nn.Module):
    """Linear layer without bias whose rows are L2-normalised at every call: the weight-normalised
    last layer of DINO with its norm g fixed to 1 (the paper's `norm_last_layer`)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_dim, in_dim))
        nn.init.trunc_normal_(self.weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, F.normalize(self.weight, dim=1))


class DINOHead(nn.Module):
    """MLP (Linear-GELU x (layers-1), Linear to the bottleneck), L2-normalised bottleneck, then
    the normalised last layer onto `out_dim` prototypes (DINO, sec. 3.1 and appendix)."""

    def __init__(
        self, in_dim: int, hidden_dim: int, bottleneck_dim: int, out_dim: int, layers: int
    ):
        super().__init__()
        if layers < 1:
            raise SelfsupError(f"the DINO head needs at least one layer, got {layers}")
        mods: list[nn.Module] = []
        dim = in_dim
        for _ in range(layers - 1):
            mods += [nn.Linear(dim, hidden_dim), nn.GELU()]
            dim = hidden_dim
        mods.append(nn.Linear(dim, bottleneck_dim))
        self.mlp = nn.Sequential(*mods)
        self.last_layer = NormalizedLinear(bottleneck_dim, out_dim)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The L2-normalised bottleneck (what the collapse monitor watches)."""
        return F.normalize(self.mlp(x), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last_layer(self.embed(x))


@dataclass
class DINOConfig:
    # The paper trains on ImageNet only; these CIFAR-size values follow its defaults where they
    # do not depend on image size, with 4096 prototypes instead of 65536 (as solo-learn's CIFAR
    # DINO) for 10-100 classes.
    out_dim: int = 4096  # prototypes K (paper: 65536)
    hidden_dim: int = 2048  # head MLP width (paper: 2048)
    bottleneck_dim: int = 256  # (paper: 256)
    head_layers: int = 3  # (paper: 3)
    student_temperature: float = 0.1  # (paper: 0.1)
    teacher_temperature: float = 0.04  # at the start of training (paper: 0.04)
    teacher_temperature_final: float = 0.07  # after the warm-up (paper: 0.04 -> 0.07)
    teacher_temperature_warmup: float = 0.3  # fraction of training (paper: 30 of 100 epochs)
    center_momentum: float = 0.9  # (paper: 0.9)
    momentum: float = 0.996  # teacher EMA, cosine to 1 (paper: 0.996 -> 1)
    # local views beside the 2 global ones; None: as many as the recipe defines (multicrop: 6;
    # the CIFAR-size recipe: none, as solo-learn's CIFAR DINO)
    local_crops: int | None = None
    # The last layer's lr is 0 for this fraction of training (paper: the first epoch of 100),
    # so that it means the same under train.epochs and train.time_budget.
    freeze_last_layer: float = 0.01

    def __post_init__(self) -> None:
        for name in ("student_temperature", "teacher_temperature", "teacher_temperature_final"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if not 0 <= self.teacher_temperature_warmup <= 1:
            raise ValueError("teacher_temperature_warmup is a fraction of training in [0, 1]")
        if not 0 <= self.center_momentum < 1 or not 0 <= self.momentum <= 1:
            raise ValueError("center_momentum must lie in [0, 1) and momentum in [0, 1]")
        if (self.local_crops or 0) < 0 or min(
            self.out_dim, self.hidden_dim, self.bottleneck_dim
        ) < 1:
            raise ValueError("local_crops must be >= 0 and the head sizes >= 1")
        if not 0 <= self.freeze_last_layer < 1:
            raise ValueError("freeze_last_layer is a fraction of training in [0, 1)")


def teacher_temperature_at(cfg: DINOConfig, progress: float) -> float:
    """Linear warm-up of the teacher temperature over the first `teacher_temperature_warmup` of
    training, then constant (DINO, sec. 3.1: 0.04 -> 0.07 over the first 30 epochs)."""
    start, end, warm = (
        cfg.teacher_temperature,
        cfg.teacher_temperature_final,
        cfg.teacher_temperature_warmup,
    )
    if warm <= 0 or progress >= warm:
        return end
    return start + (end - start) * max(progress, 0.0) / warm


@register
class DINO(Method):
    """Student f, h (DINO head); teacher = EMA of both; loss dino_loss over view pairs."""

    name = "dino"
    family = "clustering and distillation"
    paper = "Caron et al. 2021, DINO"
    summary = "a student matches a momentum teacher's centred, sharpened distribution"
    Config = DINOConfig
    optimiser: ClassVar[dict[str, Any]] = {"name": "lars", "lr": 0.3, "weight_decay": 1e-6}
    optimiser_reference = (
        "solo-learn's CIFAR DINO (the paper: AdamW 5e-4 x batch/256, wd 0.04 -> 0.4 for ViTs;"
        " SGD 0.03, wd 1e-4 for ResNet-50)"
    )
    inputs = frozenset({"image"})
    modalities = frozenset({"image"})
    augment_family = "dino"
    presets: ClassVar[dict[str, dict[str, Any]]] = {
        # ViT-S/16 on ImageNet, 100 epochs (the paper's main setting; 10 local crops)
        "imagenet": {"out_dim": 65536, "local_crops": 10, "teacher_temperature_warmup": 0.3}
    }
    # The paper's kNN and linear evaluations read the teacher (eval_knn.py, eval_linear.py:
    # --checkpoint_key teacher): the teacher backbone is what is exported and evaluated.
    exported_as = "teacher (momentum) backbone"

    def __init__(self, spec: Any, cfg: DINOConfig, augment: Any):
        super().__init__(spec, cfg, augment)
        self.local_crops = local_crop_count("dino", cfg.local_crops, augment)
        self.num_views = GLOBAL_VIEWS + self.local_crops
        self.head = DINOHead(
            self.encoder.out_dim, cfg.hidden_dim, cfg.bottleneck_dim, cfg.out_dim, cfg.head_layers
        )
        self.teacher_encoder = momentum_teacher(self.encoder)
        self.teacher_head = momentum_teacher(self.head)
        self.register_buffer("center", torch.zeros(cfg.out_dim))
        self.register_counter("progress")

    def _student(self, views: list[torch.Tensor]) -> list[torch.Tensor]:
        """Student logits of every view; views of one size go through the network together."""

        def student(x: torch.Tensor) -> torch.Tensor:
            z = self.head.embed(self.encoder(x))
            if x.shape[1:] == views[0].shape[1:]:  # the global views
                self.watch(z[: len(views[0])])
            return self.head.last_layer(z)

        return by_size(student, views)

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if len(views) < GLOBAL_VIEWS:
            raise SelfsupError(f"dino needs at least 2 views, got {len(views)}")
        with torch.no_grad():
            globals_ = torch.cat(views[:GLOBAL_VIEWS])
            teacher = self.teacher_head(self.teacher_encoder(globals_)).chunk(GLOBAL_VIEWS)
        student = self._student(views)
        temperature = teacher_temperature_at(self.cfg, self.counter("progress"))
        loss = dino_loss(student, teacher, self.center, self.cfg.student_temperature, temperature)
        self._update_center(torch.cat(teacher))
        return loss, {"teacher_temperature": torch.tensor(temperature)}

    @torch.no_grad()
    def _update_center(self, teacher: torch.Tensor) -> None:
        """center <- m * center + (1 - m) * mean of the teacher logits over the GLOBAL batch."""
        mean = teacher.float().sum(dim=0)
        count = torch.tensor(float(len(teacher)), device=mean.device)
        if world_size() > 1:
            dist.all_reduce(mean)
            dist.all_reduce(count)
        mean = mean / count
        self.center.mul_(self.cfg.center_momentum).add_(mean, alpha=1 - self.cfg.center_momentum)

    def param_groups(self) -> list[dict[str, Any]]:
        last = list(self.head.last_layer.parameters())
        rest = [*self.encoder.parameters(), *self.head.mlp.parameters()]
        return [{"params": rest}, {"params": last, "frozen_until": self.cfg.freeze_last_layer}]

    def exported(self) -> nn.Module:
        return self.teacher_encoder

    def after_step(self, progress: float) -> None:
        self.set_counter("progress", progress)
        momentum = cosine_momentum(progress, self.cfg.momentum)
        ema_update(self.teacher_encoder, self.encoder, momentum)
        ema_update(self.teacher_head, self.head, momentum)
