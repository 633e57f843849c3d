"""Transitions (observation, action, next observation) for world models (C-SWM): uint8
observations and integer actions in memory, the world-model encoder kind `cswm`
(`models/cswm.py`), no augmentation, and C-SWM's multi-step ranking as the evaluation.

The protocol reads, per horizon k, each held-out episode's first observation rolled out k steps
along its actions and its observation k steps on (`extra_features`); for the random model the
same with the untrained world model; for the raw input, the start observation's pixels stand
still (identity transition) and are ranked against the targets' pixels (`raw_extra_features`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from selfsup.config import Config
from selfsup.data.transitions import STEPS
from selfsup.embedding import encode_rows
from selfsup.errors import SelfsupError
from selfsup.modalities.base import Batch, Modality
from selfsup.models.cswm import CswmSpec

ROLLOUT_BATCH = 512


def _pixels(obs: torch.Tensor) -> torch.Tensor:
    return obs.flatten(1).float() / 255


class TransitionsModality(Modality):
    """`shapes-2d` (generated), `transitions:FILE.npz`."""

    name = "transitions"
    fields = frozenset({"obs", "action", "next_obs"})
    default_protocols = ("transition_ranking",)
    online_protocols = ("transition_ranking",)
    initial_row = "random"
    raw_row = "raw_pixels"
    row_titles: ClassVar[dict[str, str]] = {
        "selfsup": "learned world model (encoder + transition model)",
        "random": "random world model (same architecture, untrained)",
        "raw_pixels": "raw pixels, identity transition (the start observation ranked as if "
        "nothing moved)",
    }

    def encoder_spec(self, cfg: Config, train: Any) -> Any:
        if cfg.model.backbone not in ("convnet", "cswm"):
            raise SelfsupError(
                f"transitions train C-SWM's own networks (models/cswm.py); leave model.backbone "
                f"unset (got {cfg.model.backbone!r}) and size them with method.hidden_dim / "
                "method.embedding_dim / method.num_objects"
            )
        _, _, h, w = train.obs.shape
        return CswmSpec(train.obs.shape[1], (h, w), train.num_actions)

    def describe_augment(self, augment: Any) -> str:
        return "augmentation: none (transitions are used as observed)"

    def tensors(self, data: Any, encoder: Any) -> Batch:
        return {"obs": data.obs, "action": data.action, "next_obs": data.next_obs}

    def encoder_input(self, batch: Batch) -> Any:
        return batch["obs"]

    def raw_features(
        self, bank: Any, queries: Any, with_bank: bool = True
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        return (_pixels(bank.obs) if with_bank else None, _pixels(queries.obs))

    def extra_features(self, encoder: Any, data: Any, cfg: Config, device: Any) -> dict[str, Any]:
        """Per horizon k: the k-step rollouts of each held-out episode's first state and the
        encoded observations k steps on."""
        queries = data.queries
        if getattr(encoder, "kind", None) != "cswm" or not hasattr(queries, "paths"):
            return {}
        out: dict[str, Any] = {}
        was_training = encoder.training
        encoder.eval()
        with torch.no_grad():
            for k in STEPS:
                start, actions, target = queries.paths(k)
                if len(start) < 2:
                    continue

                def embed(field: str, rows: torch.Tensor) -> torch.Tensor:
                    part = {"obs": getattr(queries, field)[rows]}
                    return encode_rows(encoder, part, self.encoder_input, device=device)

                states = embed("obs", start)
                rolled = [
                    encoder.predict(s.to(device), a.to(device)).cpu()
                    for s, a in zip(
                        states.split(ROLLOUT_BATCH), actions.split(ROLLOUT_BATCH), strict=True
                    )
                ]
                out[f"rollout_{k}"] = torch.cat(rolled)
                out[f"target_{k}"] = embed("next_obs", target)
        encoder.train(was_training)
        return out

    def raw_extra_features(self, data: Any) -> dict[str, Any]:
        """The raw-input row's counterpart of `extra_features`: the start observation's pixels
        as every horizon's prediction (identity transition), the target observation's pixels."""
        queries = data.queries
        out: dict[str, Any] = {}
        for k in STEPS:
            start, _, target = queries.paths(k)
            if len(start) >= 2:
                out[f"rollout_{k}"] = _pixels(queries.obs[start])
                out[f"target_{k}"] = _pixels(queries.next_obs[target])
        return out
