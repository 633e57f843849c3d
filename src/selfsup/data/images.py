"""Decoded image sets held in memory: uint8 pixels plus optional labels for evaluation."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from selfsup.data.split import FactorLabels, Split


@dataclass
class ImageData(Split):
    """N images as one contiguous uint8 tensor (N, C, H, W), in memory or memory-mapped from a
    store; labels for evaluation.

    C is 1 (grey) or 3 (RGB), or any number when `channel_groups` names the channels: the
    arrays of an npz stacked along C, e.g. (("rgb", 3), ("depth", 1)) for RGB-D (CMC's views).
    """

    images: torch.Tensor
    labels: torch.Tensor | None
    classes: list[str] | None
    name: str
    skipped: int = 0  # undecodable files left out by the loader (skip_corrupt=True)
    channel_groups: tuple[tuple[str, int], ...] = ()  # (name, channels) in channel order
    # images are a read-only view of a store's memory map (data.store): training gathers its
    # batches from it and reads a bounded sample for statistics; `subset` copies into memory
    memory_mapped: bool = False
    factors: FactorLabels | None = None  # generated data's known factors, for evaluation
    # a second image set, unaligned with these rows (CycleGAN's domain B, --data-b): kept
    # whole, never indexed with this split's rows; `subset` leaves it out
    unpaired: ImageData | None = None

    def __post_init__(self) -> None:
        x = self.images
        groups = self.channel_groups
        fits = x.dim() == 4 and (
            sum(c for _, c in groups) == x.shape[1] if groups else x.shape[1] in (1, 3)
        )
        if x.dtype != torch.uint8 or not fits:
            raise ValueError(
                f"ImageData wants uint8 (N, C, H, W) with C in {{1, 3}} or C the channels of "
                f"its channel_groups {groups}; got {x.dtype} {tuple(x.shape)}"
            )
        if self.memory_mapped and not x.is_contiguous():
            raise ValueError("memory-mapped images must be a contiguous range of rows")
        self.images = x.contiguous()  # a no-op for the rows of a store: they stay a view
        if self.labels is not None:
            y = self.labels
            if y.dtype != torch.int64 or y.shape != (len(x),):
                raise ValueError(
                    f"labels must be int64 of shape ({len(x)},); got {y.dtype} {tuple(y.shape)}"
                )

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def num_channels(self) -> int:
        return self.images.shape[1]

    @property
    def height(self) -> int:
        return self.images.shape[2]

    @property
    def width(self) -> int:
        return self.images.shape[3]

    @property
    def image_size(self) -> int:
        """The height; images are usually square, but this does not require it."""
        return self.images.shape[2]

    @property
    def num_classes(self) -> int | None:
        return None if self.classes is None else len(self.classes)

    def subset(self, index: torch.Tensor) -> ImageData:
        """The images (and labels) at `index` (integer or boolean tensor), as a new ImageData."""
        return ImageData(
            images=self.images[index].contiguous(),
            labels=None if self.labels is None else self.labels[index],
            classes=self.classes,
            name=self.name,
            skipped=self.skipped,
            channel_groups=self.channel_groups,
            factors=None if self.factors is None else self.factors.subset(index),
        )
