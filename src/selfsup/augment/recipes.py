"""Named augmentation recipes, each declared here once as frozen dataclasses of parameters.

A recipe is one `ViewRecipe` per view; symmetric recipes (SimCLR) have one, used for every
view; asymmetric ones (BYOL) have one per view index.
"""

from __future__ import annotations

from dataclasses import dataclass

from selfsup.errors import SelfsupError

Range = tuple[float, float]

# RandomResizedCrop's default aspect-ratio range.
CROP_RATIO: Range = (3 / 4, 4 / 3)
# Gaussian blur sigma range of SimCLR and BYOL, in output pixels.
BLUR_SIGMA: Range = (0.1, 2.0)


@dataclass(frozen=True)
class Jitter:
    """ColorJitter strengths (torchvision's meaning) and the probability of jittering a sample."""

    brightness: float
    contrast: float
    saturation: float
    hue: float
    p: float


@dataclass(frozen=True)
class ViewRecipe:
    """The random ops of one view, in application order; crop_scale None means resize only."""

    crop_scale: Range | None
    crop_ratio: Range = CROP_RATIO
    flip_p: float = 0.0
    jitter: Jitter | None = None
    grayscale_p: float = 0.0
    blur_p: float = 0.0
    blur_sigma: Range = BLUR_SIGMA
    solarize_p: float = 0.0


@dataclass(frozen=True)
class Recipe:
    """A named recipe: what it is for, and the ops of each view."""

    name: str
    summary: str
    views: tuple[ViewRecipe, ...]

    def view(self, index: int) -> ViewRecipe:
        """The ops of view `index`; a one-view recipe serves every index."""
        if len(self.views) == 1:
            return self.views[0]
        if not 0 <= index < len(self.views):
            raise SelfsupError(
                f"augmentation recipe {self.name!r} defines views 0..{len(self.views) - 1}, "
                f"got view {index}"
            )
        return self.views[index]


# SimCLR's colour distortion at strength s = 0.8 (Chen et al. 2020, appendix A).
SIMCLR_JITTER = Jitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1, p=0.8)
# BYOL's colour distortion (Grill et al. 2020, table 6).
BYOL_JITTER = Jitter(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1, p=0.8)

SIMCLR_CIFAR_VIEW = ViewRecipe(
    crop_scale=(0.08, 1.0), flip_p=0.5, jitter=SIMCLR_JITTER, grayscale_p=0.2
)

RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            "simclr",
            "SimCLR (ImageNet): crop, flip, colour jitter, grayscale, blur",
            (
                ViewRecipe(
                    crop_scale=(0.08, 1.0),
                    flip_p=0.5,
                    jitter=SIMCLR_JITTER,
                    grayscale_p=0.2,
                    blur_p=0.5,
                ),
            ),
        ),
        Recipe(
            "simclr-cifar",
            "SimCLR's CIFAR setting: as simclr without blur",
            (SIMCLR_CIFAR_VIEW,),
        ),
        Recipe(
            "byol",
            "BYOL: two asymmetric views (blur 1.0 / 0.1, solarize 0.0 / 0.2)",
            (
                ViewRecipe(
                    crop_scale=(0.08, 1.0),
                    flip_p=0.5,
                    jitter=BYOL_JITTER,
                    grayscale_p=0.2,
                    blur_p=1.0,
                    solarize_p=0.0,
                ),
                ViewRecipe(
                    crop_scale=(0.08, 1.0),
                    flip_p=0.5,
                    jitter=BYOL_JITTER,
                    grayscale_p=0.2,
                    blur_p=0.1,
                    solarize_p=0.2,
                ),
            ),
        ),
        Recipe(
            "light",
            "crop (scale 0.5-1) and flip only",
            (ViewRecipe(crop_scale=(0.5, 1.0), flip_p=0.5),),
        ),
        Recipe(
            "digits",
            "tiny grey digits: mild near-square crop, small brightness/contrast, no flip",
            (
                ViewRecipe(
                    crop_scale=(0.6, 1.0),
                    crop_ratio=(0.9, 1.1),
                    jitter=Jitter(brightness=0.2, contrast=0.2, saturation=0.0, hue=0.0, p=0.8),
                ),
            ),
        ),
        Recipe("none", "no augmentation: resize to the output size", (ViewRecipe(None),)),
    )
}


def available_recipes() -> list[str]:
    """Names of the augmentation recipes, in declaration order."""
    return list(RECIPES)


def get_recipe(name: str) -> Recipe:
    """The recipe called `name`; an unknown name raises SelfsupError listing the valid ones."""
    try:
        return RECIPES[name]
    except KeyError:
        valid = ", ".join(available_recipes())
        raise SelfsupError(
            f"unknown augmentation recipe {name!r}; choose one of: {valid}"
        ) from None


def default_recipe(channels: int, height: int, width: int) -> str:
    """The recipe a run uses when none is named, chosen from the data (not the source's name)."""
    if channels == 1 and max(height, width) <= 32:
        return "digits"
    return "simclr-cifar" if max(height, width) <= 64 else "simclr"
