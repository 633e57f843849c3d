"""Named augmentation recipes, each declared here once as frozen dataclasses of parameters.

A recipe is one `ViewRecipe` per view; symmetric recipes (SimCLR) have one, used for every
view; asymmetric ones (BYOL) have one per view index, and multi-crop ones (DINO, SwAV) add
smaller local views: `len(recipe.views)` is how many views a recipe defines.
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
    """The random ops of one view, in application order; crop_scale None means resize only.

    size: the view's side. None is the Augment's output size; an int that many pixels; a float
    in (0, 1] that fraction of the Augment's output size (multi-crop's small local views, e.g.
    96 / 224 for DINO's 96 px crops beside 224 px ones), so that a recipe fits any image size.
    """

    crop_scale: Range | None
    crop_ratio: Range = CROP_RATIO
    flip_p: float = 0.0
    jitter: Jitter | None = None
    grayscale_p: float = 0.0
    blur_p: float = 0.0
    blur_sigma: Range = BLUR_SIGMA
    solarize_p: float = 0.0
    size: int | float | None = None

    def __post_init__(self) -> None:
        size = self.size
        if size is None:
            return
        if isinstance(size, bool) or not isinstance(size, (int, float)):
            raise SelfsupError(
                f"a view's size must be None, a number of pixels or a fraction; got {size!r}"
            )
        if isinstance(size, int) and size < 1:
            raise SelfsupError(f"a view's size in pixels must be at least 1; got {size}")
        if isinstance(size, float) and not 0.0 < size <= 1.0:
            raise SelfsupError(
                f"a view's size as a fraction of the output size must lie in (0, 1]; got {size}"
            )

    def side(self, output_size: int) -> int:
        """This view's side in pixels when the Augment's output side is output_size."""
        if self.size is None:
            return output_size
        if isinstance(self.size, float):
            return max(1, round(self.size * output_size))
        return self.size


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


# SimCLR's colour distortion of strength s is ColorJitter(0.8 s, 0.8 s, 0.8 s, 0.2 s) applied
# with p = 0.8 (Chen et al. 2020, appendix A): s = 1.0 is its ImageNet setting, s = 0.5 its CIFAR
# setting.
SIMCLR_JITTER = Jitter(brightness=0.8, contrast=0.8, saturation=0.8, hue=0.2, p=0.8)
SIMCLR_CIFAR_JITTER = Jitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.1, p=0.8)
# Grey images keep SimCLR's (s = 1.0) brightness and contrast; saturation and hue do nothing there.
SIMCLR_GREY_JITTER = Jitter(brightness=0.8, contrast=0.8, saturation=0.0, hue=0.0, p=0.8)
# BYOL's colour distortion (Grill et al. 2020, table 6); DINO uses it too.
BYOL_JITTER = Jitter(brightness=0.4, contrast=0.4, saturation=0.2, hue=0.1, p=0.8)

SIMCLR_CIFAR_VIEW = ViewRecipe(
    crop_scale=(0.08, 1.0), flip_p=0.5, jitter=SIMCLR_CIFAR_JITTER, grayscale_p=0.2
)
# Multi-crop as in DINO (Caron et al. 2021): global crops of 40-100 % of the image at the full
# output size, local crops of 5-40 % at 96/224 of it (96 px beside 224 px ones).
MULTICROP_LOCAL_VIEWS = 6
MULTICROP_LOCAL = ViewRecipe(
    crop_scale=(0.05, 0.4),
    flip_p=0.5,
    jitter=BYOL_JITTER,
    grayscale_p=0.2,
    blur_p=0.5,
    size=96 / 224,
)

RECIPES: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            "simclr",
            "SimCLR (ImageNet): crop, flip, colour jitter (strength 1.0), grayscale, blur",
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
            "SimCLR's CIFAR setting: as simclr with colour jitter of strength 0.5, no blur",
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
            "simclr-grey",
            "SimCLR for larger grey images: crop, flip, brightness/contrast jitter, blur",
            (
                ViewRecipe(
                    crop_scale=(0.08, 1.0), flip_p=0.5, jitter=SIMCLR_GREY_JITTER, blur_p=0.5
                ),
            ),
        ),
        Recipe(
            "multicrop",
            f"DINO-style multi-crop: 2 global views (crop 40-100 %, BYOL's jitter, blur 1.0 / "
            f"0.1, solarize 0.0 / 0.2), then {MULTICROP_LOCAL_VIEWS} local views (crop 5-40 %, "
            f"96/224 of the output size, blur 0.5)",
            (
                ViewRecipe(
                    crop_scale=(0.4, 1.0),
                    flip_p=0.5,
                    jitter=BYOL_JITTER,
                    grayscale_p=0.2,
                    blur_p=1.0,
                ),
                ViewRecipe(
                    crop_scale=(0.4, 1.0),
                    flip_p=0.5,
                    jitter=BYOL_JITTER,
                    grayscale_p=0.2,
                    blur_p=0.1,
                    solarize_p=0.2,
                ),
            )
            + (MULTICROP_LOCAL,) * MULTICROP_LOCAL_VIEWS,
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


# Longest side, in pixels, up to which images count as small (see default_recipe).
SMALL_GREY_SIDE = 32
SMALL_COLOUR_SIDE = 64


def default_recipe(channels: int, height: int, width: int) -> str:
    """The recipe to use when none is named, from what the images are (not their source's name).

    Small grey images (longest side <= 32: digits, glyphs) get `digits`: colour ops do nothing
    on grey, and flips and 8 % crops destroy small glyphs (a flipped or cropped 3 is no 3). Colour
    images up to 64 px get `simclr-cifar` (SimCLR's setting for 32 px CIFAR: jitter of strength
    0.5, no blur); larger colour images `simclr` (its ImageNet setting), and larger grey ones
    `simclr-grey`, that setting without its colour ops.
    """
    if channels not in (1, 3):
        raise SelfsupError(f"augmentation supports 1 or 3 channels, got {channels}")
    if height < 1 or width < 1:
        raise SelfsupError(f"image height and width must be positive, got {height}x{width}")
    side = max(height, width)
    if channels == 1:
        return "digits" if side <= SMALL_GREY_SIDE else "simclr-grey"
    return "simclr-cifar" if side <= SMALL_COLOUR_SIDE else "simclr"


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
