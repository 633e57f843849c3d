"""The image modality's report sections, as data: neighbours in learned vs pixel space, and a
grid of samples beside their augmented views, so a user can judge the recipe by eye."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from selfsup.augment.preview import augmented_grid
from selfsup.embedding import encode_rows
from selfsup.modalities.raw import raw_pixel_features
from selfsup.modalities.sections import (
    NUM_QUERIES,
    AugmentedViews,
    ImageNeighbours,
    pick_queries,
    subsample,
    top_k,
)

BANK_LIMIT = 5_000  # reference images searched for the neighbour grid (seeded subsample)


def neighbours_section(encoder: Any, bank: Any, queries: Any, device: str) -> ImageNeighbours | str:
    """Top neighbours of a few held-out queries in learned space beside raw-pixel space."""
    rng = np.random.default_rng(0)
    b_idx = subsample(len(bank), BANK_LIMIT, rng)
    chosen = pick_queries(
        None if queries.labels is None else queries.labels.numpy(), len(queries), rng
    )
    # as the encoder sees them: channels and size matched (the data may be another set's)
    q_images = encoder.preprocess(queries.images[chosen])
    b_images = encoder.preprocess(bank.images[b_idx])
    if len(q_images) == 0 or len(b_images) == 0:
        return "no images to search"

    def embed(images: torch.Tensor) -> np.ndarray:
        return encode_rows(encoder, {"image": images}, _image, device=device).numpy()

    same = bank is queries  # unlabelled data: one split; a query must not find itself
    exclude = [np.flatnonzero(b_idx == i) for i in chosen] if same else None
    pixels = raw_pixel_features(torch.cat([b_images, q_images])).numpy()
    return ImageNeighbours(
        queries=q_images,
        bank=b_images,
        spaces={
            "learned": top_k(embed(q_images), embed(b_images), exclude),
            "pixels": top_k(pixels[len(b_images) :], pixels[: len(b_images)], exclude),
        },
        query_labels=None if queries.labels is None else queries.labels[chosen].numpy(),
        bank_labels=None if bank.labels is None else bank.labels[b_idx].numpy(),
        classes=queries.classes,
    )


def _image(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return batch["image"]


def augmentation_section(queries: Any, augment: Any, encoder: Any) -> AugmentedViews:
    """Samples beside augmented views of them, drawn with a fixed seed."""
    rng = np.random.default_rng(1)
    chosen = rng.choice(len(queries), min(NUM_QUERIES, len(queries)), replace=False)
    images = encoder.preprocess(queries.images[torch.from_numpy(np.sort(chosen))])
    return AugmentedViews(
        grid=augmented_grid(images, augment, num_views=6),
        recipe=augment.recipe.name,
        summary=augment.recipe.summary,
        reason=getattr(augment, "reason", None),
    )
