"""Tiny image-caption data for the CLIP tests: coloured shapes in class folders, written as PNGs,
captioned from templates (the cifar-captions layout) or listed in a CSV."""

from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("red", "green", "blue", "white")
# CLIP with the smallest towers (a byte-level text tower from scratch), trained with AdamW.
TINY_CLIP = {
    "method.name": "clip",
    "model.text_tower": "scratch",
    "model.text_width": 32,
    "model.text_layers": 2,
    "model.text_heads": 2,
    "model.embed_dim": 16,
    "optim.name": "adamw",
    "optim.lr": 1e-3,
}
COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 40, 220), "white": (240,) * 3}


def make_image(colour: str, rng: np.random.Generator, size: int = 16) -> np.ndarray:
    """A noisy background with a square of the class colour somewhere in it."""
    img = rng.integers(0, 90, (size, size, 3), dtype=np.uint8)
    s = int(rng.integers(6, 11))
    y, x = rng.integers(0, size - s, 2)
    jitter = rng.integers(-25, 25, 3)
    img[y : y + s, x : x + s] = np.clip(np.array(COLOURS[colour]) + jitter, 0, 255)
    return img


def write_class_folders(root: Path, train_per_class: int, test_per_class: int) -> Path:
    rng = np.random.default_rng(0)
    for split, n in (("train", train_per_class), ("test", test_per_class)):
        for name in CLASSES:
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.fromarray(make_image(name, rng)).save(folder / f"{i}.png")
    return root


def write_caption_csv(root: Path, n: int) -> Path:
    """n images and a CSV (header path,caption) with relative paths."""
    rng = np.random.default_rng(1)
    (root / "img").mkdir(parents=True, exist_ok=True)
    lines = ["path,caption"]
    for i in range(n):
        name = CLASSES[i % len(CLASSES)]
        Image.fromarray(make_image(name, rng)).save(root / "img" / f"{i}.png")
        lines.append(f'img/{i}.png,"a {name} square, number {i}"')
    (root / "pairs.csv").write_text("\n".join(lines) + "\n")
    return root / "pairs.csv"
