"""What DINO and SwAV share about multi-crop: how many local views go beside the 2 global ones."""

from __future__ import annotations

from typing import Any

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
