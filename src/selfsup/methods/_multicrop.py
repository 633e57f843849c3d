"""What DINO and SwAV share about multi-crop: how many local views go beside the 2 global ones,
and the forward that batches the views of one size together."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from selfsup.errors import SelfsupError

GLOBAL_VIEWS = 2


def local_crop_count(method: str, local_crops: int | None, augment: Any) -> int:
    """The local views beside the 2 global ones: `local_crops`, or (None) as many as the
    augmentation recipe defines beyond 2: 6 for `multicrop` / `swav-multicrop`, 0 for the
    two-view recipes of CIFAR-size images (as solo-learn's CIFAR DINO and SwAV train).

    Local crops need a recipe that defines them: a one- or two-view recipe would make them
    full-size copies of the global views' recipe, which no paper trains with.
    """
    defined = len(augment.recipe.views) if augment is not None else None
    if local_crops is None:
        return max((defined or 0) - GLOBAL_VIEWS, 0)
    if local_crops > 0 and defined is not None and defined < GLOBAL_VIEWS + local_crops:
        raise SelfsupError(
            f"{method} uses {GLOBAL_VIEWS + local_crops} views (2 global + method.local_crops="
            f"{local_crops}); augmentation recipe {augment.recipe.name!r} defines {defined}: "
            f"local crops need a multi-crop recipe with that many views (--augment multicrop "
            f"or swav-multicrop), or lower method.local_crops"
        )
    return local_crops


def by_size(net: Callable[[torch.Tensor], torch.Tensor], views: list[Any]) -> list[torch.Tensor]:
    """`net` of every view, the views of one size in one batch (the 2 global ones, then the
    local ones: BatchNorm sees each size as the references' multi-crop forward does)."""
    out: list[Any] = [None] * len(views)
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, v in enumerate(views):
        groups.setdefault(tuple(v.shape[1:]), []).append(i)
    for idx in groups.values():
        chunks = net(torch.cat([views[i] for i in idx])).chunk(len(idx))
        for i, chunk in zip(idx, chunks, strict=True):
            out[i] = chunk
    return out
