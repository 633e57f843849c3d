"""What every method provides: views of a batch, a loss on them, and work after each step."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import Any, ClassVar

import torch
from torch import nn

from selfsup.errors import SelfsupError
from selfsup.models import Encoder

Augment = Callable[..., torch.Tensor]


class Method(nn.Module):
    """A self-supervised method: owns the encoder, its heads and any state (EMA, queues).

    State kept in modules or registered buffers is saved in checkpoints and restored on resume.
    Subclasses set `Config` (a dataclass of the method's own parameters) and implement
    `views` and `loss`; `forward` calls `loss`, so DDP wraps a method like any module.
    """

    Config: ClassVar[type]
    name: ClassVar[str]

    def __init__(self, encoder: Encoder, cfg: Any, augment: Augment):
        super().__init__()
        self.encoder = encoder
        self.cfg = cfg
        self.augment = augment

    @classmethod
    def make_config(cls, params: dict[str, Any]) -> Any:
        """Build the method's config from user parameters, naming any unknown key."""
        known = {f.name for f in fields(cls.Config)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise SelfsupError(
                f"unknown parameter(s) for method {cls.name!r}: {', '.join(unknown)}; "
                f"valid: {', '.join(sorted(known)) or '(none)'}"
            )
        try:
            return cls.Config(**params)
        except (TypeError, ValueError) as err:
            raise SelfsupError(f"bad parameter for method {cls.name!r}: {err}") from None

    def views(self, batch: torch.Tensor) -> list[torch.Tensor]:
        """Augmented views of a uint8 batch (B, C, H, W), made on the batch's device."""
        raise NotImplementedError

    def loss(self, views: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """The training loss on the views, and figures to log."""
        raise NotImplementedError

    def forward(self, views: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        return self.loss(views)

    def after_step(self, progress: float) -> None:
        """Called after each optimizer step with training progress in [0, 1] (EMA, queues)."""
