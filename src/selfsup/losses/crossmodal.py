"""Cross-modal contrastive losses: matching pairs of two modalities (images and captions).

CLIP (Radford et al., 2021, "Learning Transferable Visual Models From Natural Language
Supervision"): a symmetric cross-entropy over the image-text similarity matrix.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from selfsup.errors import SelfsupError


def clip_loss(
    image: torch.Tensor,
    text: torch.Tensor,
    logit_scale: torch.Tensor | float,
    *,
    all_image: torch.Tensor | None = None,
    all_text: torch.Tensor | None = None,
    offset: int = 0,
) -> torch.Tensor:
    """Symmetric InfoNCE of CLIP over L2-normalised image and text embeddings.

    With s the logit scale (1 / temperature), local rows i = 1..B and all columns j = 1..N:

        L_img = -1/B sum_i log softmax_j(s * <image_i, all_text_j>)[offset + i]
        L_txt = -1/B sum_i log softmax_j(s * <text_i, all_image_j>)[offset + i]
        loss  = (L_img + L_txt) / 2

    On one process all_image = image, all_text = text, offset = 0: the paper's loss over the
    B x B logits. Under data parallelism each rank passes its own rows and the gathered
    columns, with offset = rank * B (the "local loss" of open_clip): the mean of the ranks'
    losses is the global-batch loss, at B x N memory per rank instead of N x N.
    """
    all_image = image if all_image is None else all_image
    all_text = text if all_text is None else all_text
    if image.dim() != 2 or text.shape != image.shape:
        raise SelfsupError(
            f"clip_loss wants image and text embeddings of one shape (B, D); got "
            f"{tuple(image.shape)} and {tuple(text.shape)}"
        )
    if all_image.shape != all_text.shape or all_image.shape[1] != image.shape[1]:
        raise SelfsupError(
            f"gathered image and text embeddings must be (N, {image.shape[1]}); got "
            f"{tuple(all_image.shape)} and {tuple(all_text.shape)}"
        )
    if not 0 <= offset <= all_image.shape[0] - image.shape[0]:
        raise SelfsupError(
            f"offset {offset} puts {image.shape[0]} local rows outside {all_image.shape[0]} columns"
        )
    labels = torch.arange(image.shape[0], device=image.device) + offset
    logits_image = logit_scale * image @ all_text.T
    logits_text = logit_scale * text @ all_image.T
    return (F.cross_entropy(logits_image, labels) + F.cross_entropy(logits_text, labels)) / 2
