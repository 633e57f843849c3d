"""Run the named evaluation protocols on features or on an encoder; one flat dict of numbers out."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from selfsup.errors import SelfsupError
from selfsup.evaluate.features import encoder_device, extract_features
from selfsup.evaluate.geometry import alignment, collapse_stats, uniformity
from selfsup.evaluate.knn import knn_accuracy
from selfsup.evaluate.linear import linear_probe

PROTOCOLS = ("knn", "linear", "geometry")
LABELLED_PROTOCOLS = ("knn", "linear")
ALIGNMENT_SAMPLES = 5000  # test images seen in two augmented views for the alignment metric


def check_protocols(protocols: str | Sequence[str], *, has_labels: bool = True) -> tuple[str, ...]:
    """Validated protocol names, de-duplicated in order; accepts "knn,linear" or a sequence."""
    if isinstance(protocols, str):
        protocols = protocols.split(",")
    names = tuple(dict.fromkeys(p.strip() for p in protocols if p.strip()))
    unknown = [p for p in names if p not in PROTOCOLS]
    if unknown or not names:
        what = f"unknown evaluation protocol(s) {', '.join(unknown)}" if unknown else "no protocol"
        raise SelfsupError(f"{what}; choose from: {', '.join(PROTOCOLS)}")
    needs_labels = [p for p in names if p in LABELLED_PROTOCOLS]
    if needs_labels and not has_labels:
        raise SelfsupError(
            f"the data has no labels, which protocol(s) {', '.join(needs_labels)} need; "
            "'geometry' (alignment, uniformity, collapse) works without labels"
        )
    return names


def evaluate_features(
    train_feats: Tensor | None,
    train_labels: Tensor | None,
    test_feats: Tensor,
    test_labels: Tensor | None,
    protocols: str | Sequence[str],
    *,
    knn_k: int = 200,
    knn_t: float = 0.1,
    views: tuple[Tensor, Tensor] | None = None,
) -> dict[str, float]:
    """Scores of frozen features under each protocol. Geometry is measured on the test features
    and needs no labels; `views` (two augmented views of the same samples) adds alignment."""
    has_labels = train_feats is not None and train_labels is not None and test_labels is not None
    names = check_protocols(protocols, has_labels=has_labels)
    results: dict[str, float] = {}
    if "knn" in names:
        results["knn_top1"] = knn_accuracy(
            train_feats, train_labels, test_feats, test_labels, k=knn_k, temperature=knn_t
        )
    if "linear" in names:
        probe = linear_probe(train_feats, train_labels, test_feats, test_labels)
        results["linear_top1"] = probe["accuracy"]
        results["linear_weight_decay"] = probe["weight_decay"]
    if "geometry" in names:
        if views is not None:
            results["alignment"] = alignment(*views)
        results["uniformity"] = uniformity(test_feats)
        stats = collapse_stats(test_feats)
        results["embedding_std"] = stats["std"]
        results["embedding_std_reference"] = stats["std_reference"]
        results["effective_rank"] = stats["effective_rank"]
    return results


def evaluate_encoder(
    encoder: nn.Module,
    train_images: Tensor | None,
    train_labels: Tensor | None,
    test_images: Tensor,
    test_labels: Tensor | None,
    protocols: str | Sequence[str],
    *,
    augment: Callable[[Tensor], Tensor] | None = None,
    device: torch.device | str | None = None,
    batch_size: int = 512,
    knn_k: int = 200,
    knn_t: float = 0.1,
) -> dict[str, float]:
    """Extract clean features of uint8 images with a frozen encoder and run the protocols.

    With `augment` (uint8 batch -> float [0, 1] batch, random per call) and 'geometry' requested,
    alignment is measured between two augmented views of up to 5000 test images.
    """
    has_labels = train_images is not None and train_labels is not None and test_labels is not None
    names = check_protocols(protocols, has_labels=has_labels)
    device = torch.device(device) if device is not None else encoder_device(encoder)

    def embed(images: Tensor, transform: Callable[[Tensor], Tensor] | None = None) -> Tensor:
        feats = extract_features(
            encoder, images, batch_size=batch_size, device=device, transform=transform
        )
        return feats.to(device)  # kNN and the probe run where the encoder does

    needs_train = any(p in LABELLED_PROTOCOLS for p in names)
    train_feats = embed(train_images) if needs_train else None
    test_feats = embed(test_images)
    views = None
    if augment is not None and "geometry" in names:
        subset = test_images
        if len(test_images) > ALIGNMENT_SAMPLES:
            gen = torch.Generator().manual_seed(0)
            subset = test_images[
                torch.randperm(len(test_images), generator=gen)[:ALIGNMENT_SAMPLES]
            ]
        views = (embed(subset, augment), embed(subset, augment))
    return evaluate_features(
        train_feats,
        train_labels,
        test_feats,
        test_labels,
        names,
        knn_k=knn_k,
        knn_t=knn_t,
        views=views,
    )


def raw_pixel_features(images: Tensor, reference: Tensor | None = None) -> Tensor:
    """Flattened pixels as float, each pixel position standardized to zero mean and unit std:
    the "normalized raw pixels" baseline that a learned encoder must beat.

    The statistics come from `reference` (the training bank, so that test images do not leak
    into them) or, when it is None, from `images` themselves."""
    if images.ndim < 2 or len(images) == 0:
        raise SelfsupError(f"raw_pixel_features expects (N, ...) images, got {tuple(images.shape)}")
    x = images.flatten(1).to(torch.float32, copy=True)
    ref = x if reference is None else reference.flatten(1).to(torch.float32)
    mean = ref.mean(dim=0)
    std = ref.std(dim=0, correction=0).clamp_min(1e-6)
    return x.sub_(mean).div_(std)
