"""The image modality's report sections: neighbours in learned vs pixel space as tiles, and a
grid of samples beside their augmented views, so a user can judge the recipe by eye."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import torch

from selfsup.embedding import encode_rows
from selfsup.evaluate.raw import raw_pixel_features
from selfsup.report_parts import (
    NUM_QUERIES,
    esc,
    note,
    pick_queries,
    png_uri,
    subsample,
    top_k,
)

BANK_LIMIT = 5_000  # reference images searched for the neighbour grid (seeded subsample)
TILE = 56  # pixels per image in the neighbour grid
SAME, OTHER, NEUTRAL = (46, 160, 67), (214, 39, 40), (200, 200, 200)


def neighbours_section(encoder: Any, bank: Any, queries: Any, device: str) -> str:
    """Top neighbours of a few held-out queries in learned space beside raw-pixel space."""
    rng = np.random.default_rng(0)
    b_idx = subsample(len(bank), BANK_LIMIT, rng)
    chosen = pick_queries(
        None if queries.labels is None else queries.labels.numpy(), len(queries), rng
    )
    # as the encoder sees them: channels and size matched (the data may be another set's)
    q_images = encoder.preprocess(queries.images[chosen])
    b_images = encoder.preprocess(bank.images[b_idx])

    def embed(images: torch.Tensor) -> np.ndarray:
        return encode_rows(encoder, {"image": images}, _image, device=device).numpy()

    same = bank is queries  # unlabelled data: one split; a query must not find itself
    exclude = [np.flatnonzero(b_idx == i) for i in chosen] if same else None
    return _neighbours_html(
        q_images,
        embed(q_images),
        None if queries.labels is None else queries.labels[chosen].numpy(),
        b_images,
        embed(b_images),
        None if bank.labels is None else bank.labels[b_idx].numpy(),
        queries.classes,
        exclude,
    )


def _image(batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return batch["image"]


def augmentation_section(queries: Any, augment: Any, encoder: Any) -> str:
    """Samples beside augmented views of them, drawn with a fixed seed."""
    from PIL import Image

    from selfsup.augment.preview import augmented_grid

    rng = np.random.default_rng(1)
    chosen = rng.choice(len(queries), min(NUM_QUERIES, len(queries)), replace=False)
    images = encoder.preprocess(queries.images[torch.from_numpy(np.sort(chosen))])
    grid = augmented_grid(images, augment, num_views=6)
    buf = io.BytesIO()
    Image.fromarray(grid).save(buf, format="PNG")
    return (
        f"<p class='sub'>Each row: a sample, then views drawn by the training recipe "
        f"{esc(augment.recipe.name)} ({esc(augment.recipe.summary)})"
        + (f", chosen as {esc(augment.reason)}" if getattr(augment, "reason", None) else "")
        + ". Views that no longer show what the sample is make a weak recipe.</p>"
        f'<img class="px" alt="augmented views" src="{png_uri(buf.getvalue())}">'
    )


def _neighbours_html(
    q_images: torch.Tensor,
    q_feats: np.ndarray,
    q_labels: np.ndarray | None,
    b_images: torch.Tensor,
    b_feats: np.ndarray,
    b_labels: np.ndarray | None,
    classes: list[str] | None,
    exclude: list[np.ndarray] | None,
) -> str:
    if len(q_images) == 0 or len(b_images) == 0:
        return note("no images to search")
    pixels = raw_pixel_features(torch.cat([b_images, q_images])).numpy()
    spaces = {
        "learned": top_k(q_feats, b_feats, exclude),
        "pixels": top_k(pixels[len(b_images) :], pixels[: len(b_images)], exclude),
    }
    labelled = q_labels is not None and b_labels is not None
    hits = dict.fromkeys(spaces, 0)
    rows = ""
    for i in range(len(q_images)):
        name = ""
        if q_labels is not None:
            y = int(q_labels[i])
            name = classes[y] if classes and 0 <= y < len(classes) else str(y)
        cells = ""
        for space, top in spaces.items():
            borders = [NEUTRAL] * len(top[i])
            if labelled:
                same = b_labels[top[i]] == q_labels[i]
                hits[space] += int(same.sum())
                borders = [SAME if s else OTHER for s in same]
            strip = image_strip([b_images[j] for j in top[i]], borders)
            cells += f'<td><img class="px" alt="{space} neighbours" src="{strip}"></td>'
        query = image_strip([q_images[i]], [NEUTRAL])
        caption = f"<br>{esc(name)}" if name else ""
        rows += f'<tr><td><img class="px" alt="query" src="{query}">{caption}</td>{cells}</tr>'
    k = spaces["learned"].shape[1]
    head = (
        f"<tr><th>query</th><th>learned space: top {k} by cosine</th>"
        f"<th>raw pixels: top {k} by cosine</th></tr>"
    )
    if labelled:
        total = k * len(q_images)
        text = (
            f"<p>Green border: same label as the query; red: another label. Same-label "
            f"neighbours: learned <b>{hits['learned']}/{total}</b>, raw pixels "
            f"<b>{hits['pixels']}/{total}</b>.</p>"
        )
    else:
        text = note("the data has no labels: neighbours are not marked right or wrong")
    where = f"{len(b_images)} reference images"
    return (
        f"<p class='sub'>Test queries searched among {where}.</p>{text}<table>{head}{rows}</table>"
    )


def _tile(image: torch.Tensor, border: tuple[int, int, int]) -> np.ndarray:
    """One uint8 (C, H, W) image as a TILE x TILE RGB tile inside a 3-pixel coloured border."""
    from PIL import Image

    pixels = image.permute(1, 2, 0).numpy()
    if pixels.shape[2] not in (1, 3):  # RGB-D and other channel groups: the first three
        pixels = pixels[:, :, :3] if pixels.shape[2] > 3 else pixels[:, :, :1]
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    im = Image.fromarray(np.ascontiguousarray(pixels))
    upscale = im.width <= TILE and im.height <= TILE
    resample = Image.Resampling.NEAREST if upscale else Image.Resampling.BILINEAR
    inner = np.asarray(im.resize((TILE, TILE), resample))
    tile = np.empty((TILE + 6, TILE + 6, 3), dtype=np.uint8)
    tile[:] = border
    tile[3:-3, 3:-3] = inner
    return tile


def image_strip(images: list[torch.Tensor], borders: list[tuple[int, int, int]]) -> str:
    """Tiles side by side with white gaps, as a PNG data URI."""
    from PIL import Image

    gap = np.full((TILE + 6, 4, 3), 255, dtype=np.uint8)
    parts: list[np.ndarray] = []
    for image, border in zip(images, borders, strict=True):
        parts += [_tile(image, border), gap]
    buf = io.BytesIO()
    Image.fromarray(np.concatenate(parts[:-1], axis=1)).save(buf, format="PNG")
    return png_uri(buf.getvalue())
