"""Zero-shot classification (CLIP): each query image goes to the class whose prompt embedding
("a photo of a {class}.", averaged over templates) is most cosine-similar; no training on
labels at all. The pair modality puts the class embeddings into `Features.extra`."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from selfsup.errors import SelfsupError
from selfsup.evaluate.context import Features
from selfsup.evaluate.ties import label_hits


def zeroshot_accuracy(
    images: torch.Tensor, class_weights: torch.Tensor, labels: torch.Tensor, top: int = 1
) -> float:
    """Fraction of images (N, D) whose true label is among the `top` classes (K, D) of highest
    cosine similarity, ties counted against it (`label_hits`)."""
    if images.shape[1] != class_weights.shape[1]:
        raise SelfsupError(
            f"image embeddings are {images.shape[1]}-d but class embeddings "
            f"{class_weights.shape[1]}-d"
        )
    scores = F.normalize(images.float(), dim=1) @ F.normalize(class_weights.float(), dim=1).T
    return float(label_hits(scores, labels, k=top).float().mean())


def zeroshot_protocol(features: Features) -> dict[str, float]:
    """zeroshot_top1 (and top5 with more than 5 classes); empty for encoders with no text
    side (the raw-pixel baseline)."""
    weights = features.extra.get("class_features")
    if weights is None or features.query_labels is None:
        return {}
    out = {"zeroshot_top1": zeroshot_accuracy(features.queries, weights, features.query_labels)}
    if weights.shape[0] > 5:
        out["zeroshot_top5"] = zeroshot_accuracy(
            features.queries, weights, features.query_labels, top=5
        )
    return out
