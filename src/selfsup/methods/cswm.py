"""C-SWM: Contrastive Structured World Models (Kipf, van der Pol & Welling, ICLR 2020).

From observed transitions (o_t, a_t, o_t+1) alone, a CNN splits each observation into K object
maps, an MLP turns each map into an object state z_k, and a graph neural network over the
objects predicts how the action changes each state (`models/cswm.py`). The loss
(`losses.cswm_hinge_loss`) pulls z_t + T(z_t, a_t) onto z_t+1 and pushes z_t at least a hinge
away from the state of another transition of the batch. The exported encoder is the whole
world model; evaluation ranks its k-step predictions (`evaluate/transitions.py`).

Defaults are tkipf/c-swm's `train.py` for 2-D shapes (`--encoder small`): embedding_dim 2,
hidden_dim 512, num_objects 5, sigma 0.5, hinge 1, Adam at 5e-4 for a batch of 1,024 (1.25e-4
per 256 samples under the project's linear scaling), constant, no weight decay. Negatives come
from the process's own batch, as the reference's single-device training: nothing is gathered.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from selfsup.losses import cswm_hinge_loss
from selfsup.methods.base import Batch, Method
from selfsup.methods.registry import register


@dataclass
class CswmConfig:
    embedding_dim: int = 2  # D, each object's state
    hidden_dim: int = 512  # MLPs' width; the extractor has hidden_dim / 16 channels
    num_objects: int = 5  # K object slots
    sigma: float = 0.5  # energy scale: d = |z - z'|^2 / (2 sigma^2)
    hinge: float = 1.0  # margin of the negative energy
    extractor: str = "small"  # the object CNN for 2-D shapes (EncoderCNNSmall)

    def __post_init__(self) -> None:
        if self.sigma <= 0 or self.hinge <= 0:
            raise ValueError("sigma and hinge must be positive")


@register
class CSWM(Method):
    """obs -> K object states; loss d(z + T(z, a), z') + max(0, hinge - d(z, z_shuffled))."""

    name = "cswm"
    family = "world model"
    paper = "Kipf, van der Pol & Welling 2020, Contrastive Learning of Structured World Models"
    summary = "object states whose action-conditioned graph transition predicts the next state"
    Config = CswmConfig
    inputs = frozenset({"obs", "action", "next_obs"})
    modalities = frozenset({"transitions"})
    views_note = "no augmentation: the observed transitions are the training signal"
    optimiser: ClassVar[dict[str, Any]] = {
        "name": "adamw",
        "lr": 1.25e-4,
        "weight_decay": 0.0,
        "warmup": 0.0,
        "final_lr_fraction": 1.0,
    }
    optimiser_reference = "tkipf/c-swm train.py (Adam 5e-4 at batch 1024, constant)"
    exported_as = "world model (object extractor + object encoder + transition GNN)"

    def __init__(self, spec: Any, cfg: Any, augment: Any):
        c = cfg
        spec = replace(
            spec,
            num_objects=c.num_objects,
            embedding_dim=c.embedding_dim,
            hidden_dim=c.hidden_dim,
            extractor=c.extractor,
        )
        super().__init__(spec, cfg, augment)

    def views(self, batch: Batch) -> list[Any]:
        return [batch["obs"], batch["next_obs"]]

    def loss(self, views: list[Any], batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        model = self.encoder
        state, next_state = model.states(views[0]), model.states(views[1])
        predicted = model.step(state, batch["action"])
        negative = state[torch.randperm(len(state), device=state.device)]
        loss, positive, negative_term = cswm_hinge_loss(
            state, predicted, next_state, negative, self.cfg.sigma, self.cfg.hinge
        )
        self.watch(F.normalize(state.flatten(1), dim=1))
        return loss, {"positive": positive.detach(), "negative": negative_term.detach()}

    def figures(self, batch: Batch) -> dict[str, Any]:
        """The object slots' activation maps: each row an observation, then its K maps."""
        obs = batch["obs"][:8]
        maps = self.encoder.object_maps(obs)  # (B, K, h, w) in [0, 1]
        scale = obs.shape[-1] // maps.shape[-1]
        grey = maps.repeat_interleave(scale, -2).repeat_interleave(scale, -1)
        grey = (grey * 255).round().to(torch.uint8)[:, :, None].expand(-1, -1, 3, -1, -1)
        images = obs if obs.shape[1] == 3 else obs[:, :1].expand(-1, 3, -1, -1)
        tiles = torch.cat([images[:, None], grey], dim=1)  # (B, 1 + K, 3, H, W)
        tiles = torch.nn.functional.pad(tiles, (1, 1, 1, 1), value=128)
        b, n, _, h, w = tiles.shape
        grid = tiles.permute(0, 3, 1, 4, 2).reshape(b * h, n * w, 3)
        title = f"cswm: observation | object slots 1-{n - 1} (activation maps)"
        return {title: grid.cpu()}
