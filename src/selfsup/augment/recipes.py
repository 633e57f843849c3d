"""Named augmentation recipes, each declared here once as frozen dataclasses of parameters,
and the families that pick one for a method from the kind of images.

A recipe is one `ViewRecipe` per view; symmetric recipes (SimCLR) have one, used for every
view; asymmetric ones (BYOL) have one per view index, and multi-crop ones (DINO, SwAV) add
smaller local views: `len(recipe.views)` is how many views a recipe defines.

A family (FAMILIES) is the augmentation a method was published with (`Method.augment_family`):
SimCLR's colour distortion, BYOL's asymmetric blur and solarize, DINO's and SwAV's multi-crop,
MAE's crop and flip only, none at all. `choose_recipe` turns a family and the images (digits-size
grey, CIFAR-size colour, larger) into one recipe and says why.
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
    # > 0: pad every side by this fraction of the image's shorter side (zeros), then crop the
    # image's own size at a random place (RandomCrop(32, padding=4) is 0.125); crop_scale unused.
    pad: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.pad < 1.0:
            raise SelfsupError(f"a view's pad is a fraction of its side in [0, 1); got {self.pad}")
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
BYOL_GREY_JITTER = Jitter(brightness=0.4, contrast=0.4, saturation=0.0, hue=0.0, p=0.8)
# InstDisc's (lemniscate.pytorch): ColorJitter(0.4, 0.4, 0.4, 0.4) on every image.
INSTDISC_JITTER = Jitter(brightness=0.4, contrast=0.4, saturation=0.4, hue=0.4, p=1.0)

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

# SwAV's multi-crop (Caron et al. 2020, its main_swav.py): 2 global crops of 14-100 % of the
# image and 6 local ones of 5-14 % at 96/224 of the side, each with SimCLR's colour distortion
# of strength 1.0, grayscale 0.2 and blur with p 0.5.
SWAV_GLOBAL = ViewRecipe(
    crop_scale=(0.14, 1.0), flip_p=0.5, jitter=SIMCLR_JITTER, grayscale_p=0.2, blur_p=0.5
)
SWAV_LOCAL = ViewRecipe(
    crop_scale=(0.05, 0.14),
    flip_p=0.5,
    jitter=SIMCLR_JITTER,
    grayscale_p=0.2,
    blur_p=0.5,
    size=96 / 224,
)
# The mild near-square crop of `digits`: flips and 8 % crops destroy small glyphs.
DIGITS_CROP = dict(crop_scale=(0.6, 1.0), crop_ratio=(0.9, 1.1))


def _byol_views(jitter: Jitter, blur: tuple[float, float]) -> tuple[ViewRecipe, ...]:
    """BYOL's two asymmetric views: blur with p blur[0] / blur[1], solarize 0 / 0.2."""
    return tuple(
        ViewRecipe(
            crop_scale=(0.08, 1.0),
            flip_p=0.5,
            jitter=jitter,
            grayscale_p=0.2,
            blur_p=b,
            solarize_p=s,
        )
        for b, s in zip(blur, (0.0, 0.2), strict=True)
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
            "byol-cifar",
            "BYOL's asymmetric views at CIFAR size (solo-learn's CIFAR recipe): crop, flip, "
            "BYOL's jitter, grayscale, solarize 0.0 / 0.2, no blur",
            _byol_views(BYOL_JITTER, (0.0, 0.0)),
        ),
        Recipe(
            "byol-grey",
            "BYOL's asymmetric views for larger grey images: crop, flip, brightness/contrast "
            "jitter, blur 1.0 / 0.1, solarize 0.0 / 0.2",
            _byol_views(BYOL_GREY_JITTER, (1.0, 0.1)),
        ),
        Recipe(
            "swav-multicrop",
            "SwAV's multi-crop: 2 global views (crop 14-100 %) and 6 local views (crop 5-14 %, "
            "96/224 of the output size), SimCLR's colour (strength 1.0), grayscale, blur 0.5",
            (SWAV_GLOBAL, SWAV_GLOBAL) + (SWAV_LOCAL,) * MULTICROP_LOCAL_VIEWS,
        ),
        Recipe(
            "instdisc-cifar",
            "InstDisc's CIFAR recipe (lemniscate.pytorch cifar.py): crop 20-100 %, colour jitter "
            "0.4 of each on every image, grayscale 0.2, no flip",
            (ViewRecipe(crop_scale=(0.2, 1.0), jitter=INSTDISC_JITTER, grayscale_p=0.2),),
        ),
        Recipe(
            "instdisc",
            "InstDisc's ImageNet recipe: crop 20-100 %, grayscale 0.2, colour jitter 0.4 of each "
            "on every image, flip",
            (
                ViewRecipe(
                    crop_scale=(0.2, 1.0), flip_p=0.5, jitter=INSTDISC_JITTER, grayscale_p=0.2
                ),
            ),
        ),
        Recipe(
            "mae",
            "MAE's: crop (scale 0.2-1) and flip only, no colour (the paper: colour jitter hurts)",
            (ViewRecipe(crop_scale=(0.2, 1.0), flip_p=0.5),),
        ),
        Recipe(
            "aim",
            "AIM's: crop (scale 0.4-1) and flip only",
            (ViewRecipe(crop_scale=(0.4, 1.0), flip_p=0.5),),
        ),
        Recipe(
            "crop-flip",
            "crop (scale 0.08-1) and flip only (CMC's code: no colour, which its views split)",
            (ViewRecipe(crop_scale=(0.08, 1.0), flip_p=0.5),),
        ),
        Recipe(
            "pad-crop-flip",
            "RotNet's CIFAR recipe: pad 4 of 32 px, crop the image's size at random, flip",
            (ViewRecipe(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0), flip_p=0.5, pad=0.125),),
        ),
        Recipe(
            "digits-crop",
            "tiny grey digits, crop only: the mild near-square crop of `digits`, no jitter",
            (ViewRecipe(**DIGITS_CROP),),
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
                    **DIGITS_CROP,
                    jitter=Jitter(brightness=0.2, contrast=0.2, saturation=0.0, hue=0.0, p=0.8),
                ),
            ),
        ),
        Recipe("none", "no augmentation: resize to the output size", (ViewRecipe(None),)),
    )
}


# Longest side, in pixels, up to which images count as small (see choose_recipe).
SMALL_GREY_SIDE = 32
SMALL_COLOUR_SIDE = 64

# The kinds of images a family's recipe depends on.
SIZE_CLASSES = {
    "small-grey": "digits-size grey",
    "small-colour": "CIFAR-size colour",
    "grey": "larger grey",
    "colour": "larger colour",
}

# Each family's recipe for each kind of images: the augmentation a method was published with,
# at the images' size. Small grey images (digits, glyphs) get the mild crops of `digits` (with
# its small brightness/contrast jitter where the family jitters colour): colour ops do nothing
# on grey, and flips and 8 % crops destroy small glyphs (a flipped or cropped 3 is no 3).
FAMILIES: dict[str, dict[str, str]] = {
    # SimCLR's colour distortion: strength 0.5 without blur at CIFAR size, 1.0 with blur above
    "simclr": {
        "small-grey": "digits",
        "small-colour": "simclr-cifar",
        "grey": "simclr-grey",
        "colour": "simclr",
    },
    # BYOL's asymmetric views (also Barlow Twins, VICReg, NNCLR, MoCo v3)
    "byol": {
        "small-grey": "digits",
        "small-colour": "byol-cifar",
        "grey": "byol-grey",
        "colour": "byol",
    },
    # DINO: BYOL's views plus local crops; at CIFAR size two views (solo-learn's CIFAR DINO)
    "dino": {
        "small-grey": "digits",
        "small-colour": "byol-cifar",
        "grey": "byol-grey",
        "colour": "multicrop",
    },
    # SwAV: SimCLR's colour plus local crops; at CIFAR size two views (solo-learn's CIFAR SwAV)
    "swav": {
        "small-grey": "digits",
        "small-colour": "simclr-cifar",
        "grey": "simclr-grey",
        "colour": "swav-multicrop",
    },
    "instdisc": {
        "small-grey": "digits",
        "small-colour": "instdisc-cifar",
        "grey": "simclr-grey",
        "colour": "instdisc",
    },
    # crop and flip only: MAE (colour jitter hurts it), AIM, CMC (its views are colour parts)
    "mae": {"small-grey": "digits-crop", "small-colour": "mae", "grey": "mae", "colour": "mae"},
    "aim": {"small-grey": "digits-crop", "small-colour": "aim", "grey": "aim", "colour": "aim"},
    "crop-flip": {
        "small-grey": "digits-crop",
        "small-colour": "crop-flip",
        "grey": "crop-flip",
        "colour": "crop-flip",
    },
    # RotNet: RandomCrop(32, padding=4) and flip on CIFAR; a random 224 of 256 and flip above
    "rotnet": {
        "small-grey": "digits-crop",
        "small-colour": "pad-crop-flip",
        "grey": "light",
        "colour": "light",
    },
    # Colorization: a random 224 crop of 256 and flip; colour ops would corrupt the target
    "light": {
        "small-grey": "digits-crop",
        "small-colour": "light",
        "grey": "light",
        "colour": "light",
    },
    # The method's pretext makes its own variation (jigsaw, relative position: tile jitter), or
    # its paper uses none (the autoencoders)
    "none": {"small-grey": "none", "small-colour": "none", "grey": "none", "colour": "none"},
}


def size_class(channels: int, height: int, width: int) -> str:
    """ "small-grey", "small-colour", "grey" or "colour": what the images are (not their
    source's name), by channels and longest side."""
    if channels not in (1, 3):
        raise SelfsupError(f"augmentation supports 1 or 3 channels, got {channels}")
    if height < 1 or width < 1:
        raise SelfsupError(f"image height and width must be positive, got {height}x{width}")
    side = max(height, width)
    if channels == 1:
        return "small-grey" if side <= SMALL_GREY_SIDE else "grey"
    return "small-colour" if side <= SMALL_COLOUR_SIDE else "colour"


def choose_recipe(family: str, channels: int, height: int, width: int) -> tuple[str, str]:
    """The recipe of `family` for these images, and why it was chosen (for the start-up line
    and the report)."""
    if family not in FAMILIES:
        raise SelfsupError(f"unknown augmentation family {family!r}; known: {', '.join(FAMILIES)}")
    kind = size_class(channels, height, width)
    recipe = FAMILIES[family][kind]
    grey = "grey" if channels == 1 else "colour"
    why = (
        f"the {family} family's recipe for {SIZE_CLASSES[kind]} images ({height}x{width} px, "
        f"{grey})"
    )
    return recipe, why


def default_recipe(channels: int, height: int, width: int, family: str = "simclr") -> str:
    """The recipe to use when none is named: `family`'s (default SimCLR's) for what the images
    are: small grey images get `digits`, colour up to 64 px `simclr-cifar` (SimCLR's setting
    for 32 px CIFAR: jitter of strength 0.5, no blur), larger colour `simclr` (its ImageNet
    setting) and larger grey `simclr-grey`, that setting without its colour ops."""
    return choose_recipe(family, channels, height, width)[0]


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
