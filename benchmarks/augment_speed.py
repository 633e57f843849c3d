"""Augmentation speed: selfsup's batched ops vs kornia vs torchvision v2 applied per sample.

Run by hand: `python benchmarks/augment_speed.py [--threads 2] [--rounds 10]`. Prints, per op
and for the whole recipe, the best-of-N milliseconds to augment 2 views of a batch: 2 x 256
CIFAR images (32 px, simclr-cifar) and 2 x 64 images of 224 px (simclr). Best-of-N rather than
the median because other processes on a shared machine only ever add time. Every column sees
the same float images and recipe parameters; kornia is optional (skipped if not installed).
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from functools import partial

import torch
import torchvision.transforms.v2 as T

from selfsup.augment import build_augment, ops
from selfsup.augment.pipeline import _apply_to, blur_kernel_size
from selfsup.augment.recipes import SIMCLR_JITTER
from selfsup.augment.sampling import (
    jitter_ranges,
    sample_crop_boxes,
    sample_flags,
    sample_jitter,
    uniform,
)

Op = Callable[[torch.Tensor], torch.Tensor]
J = SIMCLR_JITTER


def selfsup_ops(size: int, recipe: str) -> dict[str, Op]:
    """One batched stage per op (sampling included), and the full recipe from uint8."""
    kernel = blur_kernel_size(size)
    ranges = jitter_ranges(J.brightness, J.contrast, J.saturation, J.hue)
    augment = build_augment(recipe, size, 3)

    def crop_flip(x: torch.Tensor) -> torch.Tensor:
        boxes = sample_crop_boxes(len(x), size, size, (0.08, 1.0), (3 / 4, 4 / 3), x.device)
        return ops.resized_crop(x, boxes, size, sample_flags(len(x), 0.5, x.device))

    def jitter(x: torch.Tensor) -> torch.Tensor:
        return ops.color_jitter(x, *sample_jitter(len(x), ranges, J.p, x.device))

    def hue(x: torch.Tensor) -> torch.Tensor:
        return ops.adjust_hue(x, uniform((len(x),), -J.hue, J.hue, x.device))

    def blur(x: torch.Tensor) -> torch.Tensor:
        picked = sample_flags(len(x), 0.5, x.device)
        sigma = uniform((len(x),), 0.1, 2.0, x.device)
        return _apply_to(picked, x, partial(ops.gaussian_blur, kernel_size=kernel), sigma)

    return {
        "crop+flip": crop_flip,
        "colour jitter p=0.8": jitter,
        "hue only (p=1)": hue,
        "grayscale p=0.2": lambda x: ops.random_grayscale(x, sample_flags(len(x), 0.2, x.device)),
        f"blur p=0.5 (k={kernel})": blur,
        "solarize p=0.2": lambda x: ops.solarize(x, sample_flags(len(x), 0.2, x.device)),
        f"whole {recipe} (from uint8)": lambda x: augment(x),
    }


def torchvision_ops(size: int, recipe: str) -> dict[str, Op]:
    """The same stages as torchvision v2 transforms, called once per image."""
    kernel = blur_kernel_size(size)
    stages = {
        "crop+flip": [T.RandomResizedCrop(size, antialias=False), T.RandomHorizontalFlip()],
        "colour jitter p=0.8": [
            T.RandomApply([T.ColorJitter(J.brightness, J.contrast, J.saturation, J.hue)], p=J.p)
        ],
        "hue only (p=1)": [T.ColorJitter(hue=J.hue)],
        "grayscale p=0.2": [T.RandomGrayscale(0.2)],
        f"blur p=0.5 (k={kernel})": [T.RandomApply([T.GaussianBlur(kernel, (0.1, 2.0))], p=0.5)],
        "solarize p=0.2": [T.RandomSolarize(0.5, p=0.2)],
    }
    whole = stages["crop+flip"] + stages["colour jitter p=0.8"] + stages["grayscale p=0.2"]
    if recipe == "simclr":
        whole += stages[f"blur p=0.5 (k={kernel})"]
    stages[f"whole {recipe} (from uint8)"] = [*whole, T.ToDtype(torch.float32, scale=True)]
    return {name: partial(_per_sample, T.Compose(s)) for name, s in stages.items()}


def _per_sample(transform: Op, x: torch.Tensor) -> torch.Tensor:
    return torch.stack([transform(image) for image in x])


def kornia_ops(size: int, recipe: str) -> dict[str, Op]:
    """The same stages as kornia.augmentation modules (batched, per-sample parameters)."""
    import kornia.augmentation as K

    kernel = blur_kernel_size(size)
    stages = {
        "crop+flip": [K.RandomResizedCrop((size, size)), K.RandomHorizontalFlip()],
        "colour jitter p=0.8": [
            K.ColorJitter(J.brightness, J.contrast, J.saturation, J.hue, p=J.p)
        ],
        "hue only (p=1)": [K.ColorJitter(hue=J.hue, p=1.0)],
        "grayscale p=0.2": [K.RandomGrayscale(p=0.2)],
        f"blur p=0.5 (k={kernel})": [K.RandomGaussianBlur((kernel, kernel), (0.1, 2.0), p=0.5)],
        "solarize p=0.2": [K.RandomSolarize(0.0, 0.0, p=0.2)],
    }
    whole = stages["crop+flip"] + stages["colour jitter p=0.8"] + stages["grayscale p=0.2"]
    if recipe == "simclr":
        whole += stages[f"blur p=0.5 (k={kernel})"]
    modules = {name: torch.nn.Sequential(*s) for name, s in stages.items()}
    modules[f"whole {recipe} (from uint8)"] = torch.nn.Sequential(*whole)
    full = modules.pop(f"whole {recipe} (from uint8)")
    return {**modules, f"whole {recipe} (from uint8)": lambda x: full(ops.to_float(x))}


def wall_ms(fn: Callable[[], object]) -> float:
    """Wall time of one call of fn(), in milliseconds."""
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def bench(batch: int, size: int, recipe: str, rounds: int) -> None:
    """Time 2 views of `batch` images of `size` px for every op and library; print a table.

    Every cell is timed once per round, round after round, and keeps its best time, so a burst
    of load from other processes spoils one sample of many cells rather than all of one cell.
    torchvision's slow per-sample cells get at most 3 rounds.
    """
    torch.manual_seed(0)
    raw = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8)
    images = ops.to_float(raw)
    libraries: dict[str, dict[str, Op]] = {"selfsup": selfsup_ops(size, recipe)}
    try:
        libraries["kornia"] = kornia_ops(size, recipe)
    except ImportError:
        pass
    libraries["torchvision-v2-per-sample"] = torchvision_ops(size, recipe)
    cells = {
        (op, name): partial(_two_views, table[op], raw if op.startswith("whole") else images)
        for name, table in libraries.items()
        for op in libraries["selfsup"]
    }
    best = {cell: float("inf") for cell in cells}
    for round_ in range(rounds + 1):  # round 0 warms up
        for (op, name), fn in cells.items():
            if name.startswith("torchvision") and round_ > 3:
                continue
            ms = wall_ms(fn)
            if round_:
                best[op, name] = min(best[op, name], ms)
    threads = torch.get_num_threads()
    print(f"\n2 views x {batch} images, {size} px, {recipe}, {threads} threads, best of {rounds}")
    header = f"{'op':30s}" + "".join(f"{name + ' ms':>30s}" for name in libraries)
    print(header)
    print("-" * len(header))
    for op in libraries["selfsup"]:
        print(f"{op:30s}" + "".join(f"{best[op, name]:30.1f}" for name in libraries))


def _two_views(fn: Op, x: torch.Tensor) -> None:
    fn(x)
    fn(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    with torch.no_grad():
        bench(256, 32, "simclr-cifar", args.rounds)
        bench(64, 224, "simclr", args.rounds)


if __name__ == "__main__":
    main()
