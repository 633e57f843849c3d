"""Reconstruction losses of self-prediction methods: autoencoders, MAE, autoregressive (AIM).

All take pixels already normalised by the training set's mean and std (the encoder's input
normalisation), so a loss of 1.0 is the error of predicting the mean image.
"""

from __future__ import annotations

import torch

from selfsup.errors import SelfsupError


def reconstruction_mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over every element: mean((prediction - target)^2).

    The (denoising) autoencoder's loss against the clean input (Vincent et al., "Extracting and
    composing robust features with denoising autoencoders", ICML 2008, squared error form).
    """
    if prediction.shape != target.shape:
        raise SelfsupError(
            f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ"
        )
    return (prediction - target).pow(2).mean()


def normalise_patches(patches: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Each patch (last dim) to zero mean and unit variance: (t - mean) / sqrt(var + eps),
    with the unbiased variance, as MAE's `norm_pix_loss` target."""
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, keepdim=True)
    return (patches - mean) / (var + eps).sqrt()


def patch_mse(
    prediction: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor | None = None,
    norm_pix: bool = True,
    eps: float = 1e-6,
) -> torch.Tensor:
    """Per-patch pixel regression, averaged over the patches `mask` selects.

    prediction, target: (B, N, P) patch rows; mask: (B, N), 1 where the patch counts (MAE: the
    masked patches), None for every patch (AIM: every predicted next patch). With norm_pix each
    target patch is normalised by its own mean and variance (`normalise_patches`). Loss:

        l_bn = mean_p (prediction_bnp - t_bnp)^2,   loss = sum_bn m_bn l_bn / sum_bn m_bn

    MAE: He et al., "Masked Autoencoders Are Scalable Vision Learners", CVPR 2022 (section 3).
    AIM: El-Nouby et al., "Scalable Pre-training of Large Autoregressive Image Models", 2024.
    """
    if prediction.shape != target.shape or prediction.dim() != 3:
        raise SelfsupError(
            f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} must be the "
            "same (B, N, P) shape"
        )
    if norm_pix:
        target = normalise_patches(target, eps)
    per_patch = (prediction - target).pow(2).mean(dim=-1)
    if mask is None:
        return per_patch.mean()
    if mask.shape != per_patch.shape:
        raise SelfsupError(f"mask {tuple(mask.shape)} must be (B, N) = {tuple(per_patch.shape)}")
    return (per_patch * mask).sum() / mask.sum().clamp_min(1.0)
