"""Time series and audio: float32 (N, C, T) in memory with a mask of valid steps, the CPC-style
series encoder (`selfsup.models.series`), batched series augmentations, kNN and a linear probe
on pooled context features, and the raw signal (z-normalised, flattened) as the baseline."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from selfsup.augment.series import SeriesAugment
from selfsup.config import Config
from selfsup.errors import SelfsupError
from selfsup.modalities.base import Batch, Modality
from selfsup.modalities.raw import znormalised_series
from selfsup.models.series import SERIES_BACKBONES, series_spec

DEFAULT_RECIPE = "series-default"


def raw_series_features(data: Any) -> torch.Tensor:
    """Each series z-normalised per channel over its valid steps, padding zero, flattened."""
    return znormalised_series(data.series, data.mask).flatten(1)


class SeriesModality(Modality):
    """Numpy series files, the UCR/UEA archive (aeon), WAV folders."""

    name = "series"
    main_field = "series"
    fields = frozenset({"series", "mask"})
    default_protocols = ("knn", "linear", "svm")
    online_protocols = ("knn",)
    initial_row = "random"
    raw_row = "raw_signal"
    extra_baselines = ("dtw_1nn",)
    classical_input = True
    row_titles: ClassVar[dict[str, str]] = {
        "selfsup": "learned encoder",
        "random": "random encoder (same architecture)",
        "raw_signal": "raw signal (z-normalised per series, flattened)",
        "dtw_1nn": "DTW 1-NN on the raw signal (z-normalised per series, full window)",
    }

    def encoder_spec(self, cfg: Config, train: Any) -> Any:
        backbone = cfg.model.backbone
        if backbone == "convnet":  # the config's (image) default: choose by the series length
            backbone = None
        elif backbone not in SERIES_BACKBONES:
            raise SelfsupError(
                f"model.backbone {backbone!r} is not a series encoder; choose one of: "
                f"{', '.join(SERIES_BACKBONES)} (or leave it unset to choose by length)"
            )
        return series_spec(train.num_channels, train.length, backbone)

    def augment(self, cfg: Config, spec: Any) -> Any:
        return SeriesAugment(cfg.method.augment or DEFAULT_RECIPE)

    def describe_augment(self, augment: Any) -> str:
        return f"augmentation: {augment!r}; set another with --augment NAME"

    def tensors(self, data: Any, encoder: Any) -> Batch:
        mask = data.mask
        if mask is None:
            mask = torch.ones(len(data), data.length, dtype=torch.bool)
        return {"series": data.series, "mask": mask}

    def encoder_input(self, batch: Batch) -> Batch:
        return {"series": batch["series"], "mask": batch["mask"]}

    def raw_features(
        self, bank: Any, queries: Any, with_bank: bool = True
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        return (raw_series_features(bank) if with_bank else None, raw_series_features(queries))
