"""Images: uint8 (N, C, H, W) in memory, the image encoders, batched augmentation recipes,
kNN / linear / geometry evaluation, and raw pixels as the baseline to beat."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from selfsup.augment import build_augment
from selfsup.augment.pipeline import colour_channels
from selfsup.augment.recipes import choose_recipe
from selfsup.config import Config
from selfsup.methods import available_methods, get_method
from selfsup.modalities.base import Batch, Modality
from selfsup.modalities.image_report import augmentation_section, neighbours_section
from selfsup.modalities.raw import standardised_pixels
from selfsup.modalities.sections import Section
from selfsup.models import ImageEncoderSpec

# A memory-mapped store's statistics come from at most this many rows (a seeded sample), read
# in blocks of at most STATS_BLOCK_BYTES and counted as pixel-value histograms (no float copy):
# start-up stays bounded in time and in memory whatever the store's size. In-memory images
# keep exact statistics over every row, computed as they always were.
STATS_SAMPLE_ROWS = 10_000
STATS_BLOCK_BYTES = 4 << 20
# The batch field of a second, unaligned image source (--data-b, CycleGAN's domain B).
SOURCE_B_FIELD = "image_b"


def channel_stats(
    images: torch.Tensor, *, memory_mapped: bool = False
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images scaled to [0, 1], computed in chunks.

    Exact over every row for images in memory. For `memory_mapped` images (a store) the rows
    are read in bounded blocks, and a store of more than STATS_SAMPLE_ROWS rows is summarised
    by a seeded sample of that many rows (seed 0, the same every run), in row order.
    """
    c = images.shape[1]
    if memory_mapped:
        mean, mean_sq = _sampled_moments(images)
    else:
        total, total_sq, count = (
            torch.zeros(c, dtype=torch.float64),
            torch.zeros(c, dtype=torch.float64),
            0,
        )
        for chunk in images.split(4096):
            x = chunk.to(torch.float64).div_(255).transpose(0, 1).reshape(c, -1)
            total += x.sum(1)
            total_sq += (x * x).sum(1)
            count += x.shape[1]
        mean, mean_sq = total / count, total_sq / count
    std = (mean_sq - mean**2).clamp_min(1e-12).sqrt().clamp_min(1e-3)
    return tuple(mean.tolist()), tuple(std.tolist())


def _sampled_moments(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel E[x] and E[x^2] of x = pixel / 255 over a bounded seeded sample of rows,
    from per-channel histograms of the uint8 values (exact integer counts)."""
    n, c = images.shape[:2]
    rows = torch.arange(n)
    if n > STATS_SAMPLE_ROWS:
        g = torch.Generator().manual_seed(0)
        rows = torch.randperm(n, generator=g)[:STATS_SAMPLE_ROWS].sort().values
    block = max(1, STATS_BLOCK_BYTES // max(images.shape[1:].numel(), 1))
    counts = torch.zeros(c, 256, dtype=torch.int64)
    for part in rows.split(block):
        chunk = images[part]
        for channel in range(c):
            counts[channel] += torch.bincount(chunk[:, channel].reshape(-1), minlength=256)
    values = torch.arange(256, dtype=torch.float64) / 255
    total = counts.sum(1).to(torch.float64)
    counts = counts.to(torch.float64)
    return counts @ values / total, counts @ (values * values) / total


class PreprocessedImages:
    """uint8 images as an encoder takes them (channels and size matched by `preprocess`),
    made when rows are asked for. It stands where evaluation expects an (N, C, H, W) tensor:
    `len`, `device`, and indexing by a slice or an index tensor, which reads and converts only
    those rows of a (memory-mapped) split. Each image is converted on its own, so the rows
    equal those of `preprocess` over the whole split."""

    def __init__(self, images: torch.Tensor, preprocess: Any):
        self.images, self.preprocess = images, preprocess
        self.device = images.device

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: torch.Tensor | slice) -> torch.Tensor:
        return self.preprocess(self.images[index])


def augment_family(method: str) -> str:
    """The augmentation family the method was published with (`Method.augment_family`);
    SimCLR's for a name that is not a registered method (it is reported elsewhere)."""
    if method not in available_methods():
        return "simclr"
    return get_method(method).augment_family or "simclr"


def unpaired_order(m: int, n: int, seed: int = 0) -> torch.Tensor:
    """n row positions of a second set of m rows: seeded permutations of range(m) one after
    another, cut at n. Each of B's rows appears once when m >= n (a seeded n of them), else
    n // m or n // m + 1 times; the epoch's shuffle of A's rows re-pairs them each epoch."""
    g = torch.Generator().manual_seed(seed)
    passes = -(-n // m)
    return torch.cat([torch.randperm(m, generator=g) for _ in range(passes)])[:n]


class ImageModality(Modality):
    """Image folders, CIFAR, MNIST, digits, numpy arrays."""

    name = "image"
    fields = frozenset({"image", SOURCE_B_FIELD})  # image_b: only with --data-b
    main_field = "image"
    default_protocols = ("knn", "linear", "geometry", "disentanglement")
    online_protocols = ("knn", "geometry")
    initial_row = "random"
    raw_row = "raw_pixels"
    classical_input = True
    row_titles: ClassVar[dict[str, str]] = {
        "selfsup": "learned encoder",
        "random": "random encoder (same architecture)",
        "raw_pixels": "raw pixels (standardised)",
    }

    def encoder_spec(self, cfg: Config, train: Any) -> ImageEncoderSpec:
        mean, std = channel_stats(
            train.images, memory_mapped=getattr(train, "memory_mapped", False)
        )
        h, w = train.images.shape[-2:]
        cifar_stem = cfg.model.cifar_stem if cfg.model.cifar_stem is not None else max(h, w) <= 64
        size: int | tuple[int, int] = h if h == w else (h, w)
        return ImageEncoderSpec(
            cfg.model.backbone,
            train.images.shape[1],
            size,
            cifar_stem,
            mean,
            std,
            channel_groups=tuple(getattr(train, "channel_groups", ())),
        )

    def augment(self, cfg: Config, spec: ImageEncoderSpec) -> Any:
        if hasattr(spec, "image_spec"):  # CMC's multi-view spec: augment its input images
            spec = spec.image_spec()
        h, w = spec.height_width
        colour = colour_channels(spec.in_channels, spec.channel_groups)
        if cfg.method.augment:
            recipe, why = cfg.method.augment, "set with --augment / method.augment"
        else:
            family = augment_family(cfg.method.name)
            recipe, why = choose_recipe(family, len(colour) or 3, h, w)
            why = f"{cfg.method.name}'s published augmentation: {why}"
        augment = build_augment(
            recipe, cfg.method.crop_size or min(h, w), spec.in_channels, colour_channels=colour
        )
        augment.reason = why
        return augment

    def describe_augment(self, augment: Any) -> str:
        recipe = augment.recipe
        reason = getattr(augment, "reason", None)
        return (
            f"augmentation: {recipe.name} ({recipe.summary}) at {augment.image_size} px"
            + (f", {reason}" if reason else "")
            + "; set another with --augment NAME"
        )

    def tensors(self, data: Any, encoder: Any) -> Batch:
        # preprocess matches channels and size only where the data differs from the encoder;
        # then it runs on the rows asked for, so a memory-mapped split is never copied whole
        images = data.images
        second = getattr(data, "unpaired", None)
        if second is not None:  # B's rows beside A's, in a seeded order (unaligned)
            rows = unpaired_order(len(second), len(images))
            return {"image": images, SOURCE_B_FIELD: second.images[rows]}
        if len(images) == 0 or encoder.preprocess(images[:1]).shape[1:] == images.shape[1:]:
            return {"image": encoder.preprocess(images)}  # the images themselves, not a copy
        return {"image": PreprocessedImages(images, encoder.preprocess)}  # type: ignore[dict-item]

    def encoder_input(self, batch: Batch) -> torch.Tensor:
        return batch["image"]

    def raw_features(
        self, bank: Any, queries: Any, with_bank: bool = True
    ) -> tuple[torch.Tensor | None, torch.Tensor]:
        return standardised_pixels(bank.images, queries.images, with_bank=with_bank)

    def report_sections(
        self, encoder: Any, bank: Any, queries: Any, augment: Any, device: str
    ) -> list[Section]:
        sections = [
            ("neighbours", "Nearest neighbours", neighbours_section(encoder, bank, queries, device))
        ]
        if augment is not None:
            sections.append(
                ("augmentation", "Augmented views", augmentation_section(queries, augment, encoder))
            )
        return sections
