"""Generated compositional scenes with captions (`scenes`): two shapes on a black canvas.

Each image holds two objects, each a shape (circle, square, triangle) of a colour (red, green,
blue, yellow) and a size (small, large); one is left of or above the other. A scene has several
reference captions, from distinctive to generic: "a small red circle left of a large blue
square", its mirror "a large blue square right of a small red circle", "a red circle left of a
blue square" (no sizes), "a small red circle and a large blue square" (no relation), "a circle
and a square" and "two shapes". The distinctive ones fit one scene in hundreds; "two shapes"
fits every image. Training images carry one caption drawn from the references with the weights
of CAPTION_FORMS (generic captions are frequent, so a maximum-likelihood captioner learns to
hedge); held-out images carry the first (most distinctive) one, and all references in
`references`, for BLEU and CIDEr-D.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from selfsup.config import DataConfig
from selfsup.data.pairs import PairData
from selfsup.data.split import DataSplits, row_positions
from selfsup.errors import SelfsupError

SHAPES = ("circle", "square", "triangle")
COLOURS = {
    "red": (230, 40, 40),
    "green": (40, 200, 60),
    "blue": (50, 90, 240),
    "yellow": (235, 220, 40),
}
SIZES = {"small": 0.15, "large": 0.26}  # radius as a fraction of the canvas side
RELATIONS = (("left of", "right of"), ("above", "below"))
# (form, training weight): which reference a training image is captioned with
CAPTION_FORMS = (
    ("full", 0.25),
    ("mirror", 0.15),
    ("no_size", 0.15),
    ("no_relation", 0.15),
    ("shapes", 0.15),
    ("generic", 0.15),
)
SIZES_ALLOWED = (32, 64)
TRAIN_SCENES, TEST_SCENES = 4000, 500


@dataclass
class SceneData(PairData):
    """Scenes with their caption (one per image) and every reference caption of each image."""

    references: list[list[str]] | None = None

    def subset(self, index: torch.Tensor) -> SceneData:
        base = PairData.subset(self, index)
        positions = row_positions(index)
        refs = None if self.references is None else [self.references[i] for i in positions]
        return SceneData(**{**base.__dict__, "references": refs})


def scene_references(a: tuple[str, str, str], b: tuple[str, str, str], rel: int) -> dict:
    """Every caption form of a scene with object a left of / above object b: form -> text."""
    (sa, ca, za), (sb, cb, zb) = a, b
    near, far = RELATIONS[rel]
    return {
        "full": f"a {za} {ca} {sa} {near} a {zb} {cb} {sb}",
        "mirror": f"a {zb} {cb} {sb} {far} a {za} {ca} {sa}",
        "no_size": f"a {ca} {sa} {near} a {cb} {sb}",
        "no_relation": f"a {za} {ca} {sa} and a {zb} {cb} {sb}",
        "shapes": f"a {sa} and a {sb}",
        "generic": "two shapes",
    }


def draw_shape(canvas: np.ndarray, shape: str, colour: tuple, cx: float, cy: float, r: float):
    """Paint one filled shape of radius `r` centred at (cx, cy) onto an (H, W, 3) canvas."""
    side = canvas.shape[0]
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float32) + 0.5
    dx, dy = xx - cx, yy - cy
    if shape == "circle":
        mask = dx**2 + dy**2 <= r**2
    elif shape == "square":
        mask = (np.abs(dx) <= 0.85 * r) & (np.abs(dy) <= 0.85 * r)
    else:  # triangle, apex up
        mask = (dy <= 0.8 * r) & (dy >= -r) & (np.abs(dx) <= (dy + r) * 0.6)
    canvas[mask] = colour


def generate_scenes(n: int, side: int, seed: int, train: bool) -> SceneData:
    """`n` scenes of `side` pixels; training captions drawn by CAPTION_FORMS, else the full one."""
    rng = np.random.default_rng(seed)
    images = np.zeros((n, side, side, 3), dtype=np.uint8)
    captions, references = [], []
    forms = [f for f, _ in CAPTION_FORMS]
    weights = np.array([w for _, w in CAPTION_FORMS])
    for i in range(n):
        objs = []
        for _ in range(2):
            objs.append(
                (
                    SHAPES[rng.integers(len(SHAPES))],
                    list(COLOURS)[rng.integers(len(COLOURS))],
                    list(SIZES)[rng.integers(len(SIZES))],
                )
            )
        rel = int(rng.integers(2))
        # object a in the first half (left or top), b in the second, a little jitter
        jitter = rng.uniform(-0.06, 0.06, size=4) * side
        along = (0.27 * side + jitter[0], 0.73 * side + jitter[1])
        across = (0.5 * side + jitter[2], 0.5 * side + jitter[3])
        for k, (shape, colour, size) in enumerate(objs):
            cx, cy = (along[k], across[k]) if rel == 0 else (across[k], along[k])
            draw_shape(images[i], shape, COLOURS[colour], cx, cy, SIZES[size] * side * 0.75)
        refs = scene_references(objs[0], objs[1], rel)
        references.append(list(refs.values()))
        form = forms[rng.choice(len(forms), p=weights / weights.sum())] if train else "full"
        captions.append(refs[form])
    return SceneData(
        images=torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
        captions=captions,
        labels=None,
        classes=None,
        name=f"scenes ({'train' if train else 'test'})",
        references=references,
    )


def load_scenes(path: str | None, options: DataConfig) -> DataSplits:
    """`scenes[:32|64]`: TRAIN_SCENES training and TEST_SCENES held-out scenes (fixed seeds)."""
    side = 32 if not path else int(path) if path.isdigit() else -1
    if side not in SIZES_ALLOWED:
        raise SelfsupError(
            f"scenes:{path} is not a canvas size; use scenes:32 or scenes:64 (pixels a side)"
        )
    return DataSplits(
        generate_scenes(TRAIN_SCENES, side, seed=0, train=True),
        generate_scenes(TEST_SCENES, side, seed=1, train=False),
    )
