"""Pieces of the HTML report that the generic page and each modality's sections share:
escaping, notes, PNG data URIs, and the HTML of the sections a modality gives as data
(`modalities.sections`): this module and report.py are the only ones that write HTML."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import numpy as np
import torch
from PIL import Image

from selfsup.modalities.sections import (
    AugmentedViews,
    Content,
    ImageNeighbours,
    PairRetrieval,
    SentenceNeighbours,
)

TILE = 56  # pixels per image in a strip of neighbours
SAME, OTHER, NEUTRAL = (46, 160, 67), (214, 39, 40), (200, 200, 200)


def esc(value: Any) -> str:
    """HTML-escaped text of any value."""
    return html.escape(str(value), quote=True)


def note(text: str) -> str:
    """A highlighted paragraph saying why something is missing."""
    return f'<p class="note">{esc(text)}</p>'


def png_uri(data: bytes) -> str:
    """PNG bytes as a data URI: the page stays one self-contained file."""
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def figure_html(fig: Any, alt: str) -> str:
    """A matplotlib figure as an inline PNG."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return f'<img class="fig" alt="{esc(alt)}" src="{png_uri(buf.getvalue())}">'


def section_html(content: Content) -> str:
    """The HTML of a modality's section (`modalities.sections`); text is a note."""
    return note(content) if isinstance(content, str) else _RENDER[type(content)](content)


def _image_neighbours(s: ImageNeighbours) -> str:
    labelled = s.query_labels is not None and s.bank_labels is not None
    hits = dict.fromkeys(s.spaces, 0)
    rows = ""
    for i in range(len(s.queries)):
        name = ""
        if s.query_labels is not None:
            y = int(s.query_labels[i])
            name = s.classes[y] if s.classes and 0 <= y < len(s.classes) else str(y)
        cells = ""
        for space, top in s.spaces.items():
            borders = [NEUTRAL] * len(top[i])
            if labelled:
                same = s.bank_labels[top[i]] == s.query_labels[i]
                hits[space] += int(same.sum())
                borders = [SAME if x else OTHER for x in same]
            strip = image_strip([s.bank[j] for j in top[i]], borders)
            cells += f'<td><img class="px" alt="{space} neighbours" src="{strip}"></td>'
        query = image_strip([s.queries[i]], [NEUTRAL])
        caption = f"<br>{esc(name)}" if name else ""
        rows += f'<tr><td><img class="px" alt="query" src="{query}">{caption}</td>{cells}</tr>'
    k = s.spaces["learned"].shape[1]
    head = (
        f"<tr><th>query</th><th>learned space: top {k} by cosine</th>"
        f"<th>raw pixels: top {k} by cosine</th></tr>"
    )
    if labelled:
        total = k * len(s.queries)
        text = (
            f"<p>Green border: same label as the query; red: another label. Same-label "
            f"neighbours: learned <b>{hits['learned']}/{total}</b>, raw pixels "
            f"<b>{hits['pixels']}/{total}</b>.</p>"
        )
    else:
        text = note("the data has no labels: neighbours are not marked right or wrong")
    where = f"{len(s.bank)} reference images"
    return (
        f"<p class='sub'>Test queries searched among {where}.</p>{text}<table>{head}{rows}</table>"
    )


def _augmented_views(s: AugmentedViews) -> str:
    return (
        f"<p class='sub'>Each row: a sample, then views drawn by the training recipe "
        f"{esc(s.recipe)} ({esc(s.summary)})"
        + (f", chosen as {esc(s.reason)}" if s.reason else "")
        + ". Views that no longer show what the sample is make a weak recipe.</p>"
        f'<img class="px" alt="augmented views" src="{_png(s.grid)}">'
    )


def _sentence_neighbours(s: SentenceNeighbours) -> str:
    rows = ""
    for i, sentence in enumerate(s.queries):
        cells = "".join(
            "<td><ol>" + "".join(f"<li>{esc(found)}</li>" for found in top[i]) + "</ol></td>"
            for top in s.spaces.values()
        )
        rows += f"<tr><td>{esc(sentence)}</td>{cells}</tr>"
    head = "<tr><th>query</th>" + "".join(f"<th>{esc(n)}: top 5</th>" for n in s.spaces) + "</tr>"
    which = (
        "Held-out sentences"
        if s.held_out
        else "Training sentences (the data has no held-out split)"
    )
    missing = "" if s.missing is None else f" The model as loaded is not shown: {s.missing}."
    return (
        f"<p class='sub'>{which} searched among {s.bank_size} bank sentences (the same sentence "
        f"is left out).{esc(missing)}</p><table>{head}{rows}</table>"
    )


def _pair_retrieval(s: PairRetrieval) -> str:
    t2i = ""
    for i, top, rank in s.caption_to_images:
        strip = image_strip([s.images[j] for j in top], [SAME if j == i else NEUTRAL for j in top])
        t2i += (
            f"<tr><td>{esc(s.captions[i])}</td><td><img class='px' alt='images found' "
            f"src='{strip}'></td><td class='num'>{rank}</td></tr>"
        )
    i2t = ""
    for i, top, rank in s.image_to_captions:
        found = "".join(
            f"<li>{'<b>' if j == i else ''}{esc(s.captions[j])}{'</b>' if j == i else ''}</li>"
            for j in top
        )
        strip = image_strip([s.images[i]], [NEUTRAL])
        i2t += (
            f"<tr><td><img class='px' alt='query image' src='{strip}'></td><td><ol>{found}</ol>"
            f"</td><td class='num'>{rank}</td></tr>"
        )
    return (
        f"<p class='sub'>Held-out pairs searched among {len(s.captions)} ({esc(s.source)}); a "
        f"query's own image has a green border, its own caption is bold; the last column is "
        f"the rank of its own pair (ties count against it).</p>"
        f"<h3>Caption to images</h3><table><tr><th>caption</th><th>top {s.k} images</th>"
        f"<th>own image's rank</th></tr>{t2i}</table>"
        f"<h3>Image to captions</h3><table><tr><th>image</th><th>top {s.k} captions</th>"
        f"<th>own caption's rank</th></tr>{i2t}</table>"
    )


_RENDER = {
    ImageNeighbours: _image_neighbours,
    AugmentedViews: _augmented_views,
    SentenceNeighbours: _sentence_neighbours,
    PairRetrieval: _pair_retrieval,
}


def _tile(image: torch.Tensor, border: tuple[int, int, int]) -> np.ndarray:
    """One uint8 (C, H, W) image as a TILE x TILE RGB tile inside a 3-pixel coloured border."""
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
    gap = np.full((TILE + 6, 4, 3), 255, dtype=np.uint8)
    parts: list[np.ndarray] = []
    for image, border in zip(images, borders, strict=True):
        parts += [_tile(image, border), gap]
    return _png(np.concatenate(parts[:-1], axis=1))


def _png(pixels: np.ndarray) -> str:
    """A uint8 (H, W, 3) array as a PNG data URI."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return png_uri(buf.getvalue())
