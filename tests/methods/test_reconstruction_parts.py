"""Reconstruction losses against plain references; masking, noise, decoders and pictures."""

import numpy as np
import pytest
import torch

from selfsup.errors import SelfsupError
from selfsup.losses import normalise_patches, patch_mse, reconstruction_mse
from selfsup.models.decoders import ConvDecoder, MAEDecoder, reconstruction_grid
from selfsup.models.masking import (
    corrupt,
    gather_positions,
    patchify,
    random_masking,
    unpatchify,
    unshuffle,
)


def _grads(fn, *tensors):
    return torch.autograd.grad(fn(*tensors), tensors)


def test_reconstruction_mse_matches_a_loop():
    torch.manual_seed(0)
    pred = torch.randn(3, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    target = torch.randn(3, 2, 4, 5, dtype=torch.float64, requires_grad=True)

    def reference(p, t):
        total = 0.0
        for a, b in zip(p.reshape(-1), t.reshape(-1), strict=True):
            total = total + (a - b) ** 2
        return total / p.numel()

    assert torch.allclose(reconstruction_mse(pred, target), reference(pred, target))
    got, want = _grads(reconstruction_mse, pred, target), _grads(reference, pred, target)
    for g, r in zip(got, want, strict=True):
        assert torch.allclose(g, r)
    with pytest.raises(SelfsupError):
        reconstruction_mse(pred, target[:2])


@pytest.mark.parametrize("norm_pix", [True, False])
@pytest.mark.parametrize("use_mask", [True, False])
def test_patch_mse_matches_a_loop(norm_pix, use_mask):
    torch.manual_seed(1)
    b, n, p = 2, 5, 6
    pred = torch.randn(b, n, p, dtype=torch.float64, requires_grad=True)
    target = torch.randn(b, n, p, dtype=torch.float64, requires_grad=True)
    mask = (torch.rand(b, n) < 0.6).double() if use_mask else None
    if mask is not None:
        mask[0, 0] = 1.0

    def reference(pr, tg):
        num, den = 0.0, 0.0
        for i in range(b):
            for j in range(n):
                t = tg[i, j]
                if norm_pix:
                    mu = sum(t) / p
                    var = sum((v - mu) ** 2 for v in t) / (p - 1)
                    t = (t - mu) / (var + 1e-6) ** 0.5
                err = sum((pr[i, j, k] - t[k]) ** 2 for k in range(p)) / p
                w = 1.0 if mask is None else mask[i, j]
                num, den = num + w * err, den + w
        return num / den

    def loss(pr, tg):
        return patch_mse(pr, tg, mask, norm_pix)

    assert torch.allclose(loss(pred, target), reference(pred, target))
    for g, r in zip(_grads(loss, pred, target), _grads(reference, pred, target), strict=True):
        assert torch.allclose(g, r)


def test_normalise_patches_gives_zero_mean_unit_variance():
    x = torch.randn(4, 7, 12) * 3 + 5
    y = normalise_patches(x)
    assert torch.allclose(y.mean(-1), torch.zeros(4, 7), atol=1e-5)
    assert torch.allclose(y.var(-1), torch.ones(4, 7), atol=1e-3)


def test_patchify_roundtrip_and_raster_order():
    x = torch.arange(2 * 3 * 8 * 4, dtype=torch.float32).reshape(2, 3, 8, 4)
    p = patchify(x, 2)
    assert p.shape == (2, 8, 12)
    assert torch.equal(unpatchify(p, 2, 3, 8, 4), x)
    # patch 1 is rows 0-1, columns 2-3 (raster order); pixels (row, col, channel)
    assert torch.equal(p[0, 1].view(2, 2, 3), x[0, :, 0:2, 2:4].permute(1, 2, 0))
    with pytest.raises(SelfsupError):
        patchify(x, 3)


def test_random_masking_properties():
    g = torch.Generator().manual_seed(0)
    b, n = 64, 16
    m = random_masking(b, n, 0.75, generator=g)
    assert m.keep.shape == (b, 4) and m.mask.shape == (b, n)
    assert torch.equal(m.mask.sum(1), torch.full((b,), 12.0))  # the ratio, exactly
    for i in range(b):
        kept = set(m.keep[i].tolist())
        masked = set(torch.nonzero(m.mask[i]).flatten().tolist())
        assert kept.isdisjoint(masked) and kept | masked == set(range(n))
    # samples draw different masks; over many draws every position gets masked
    assert len({tuple(r.tolist()) for r in m.mask}) > 1
    assert (m.mask.mean(0) > 0.4).all()
    # the decoder sees every position exactly once, in the original order
    tokens = torch.arange(n, dtype=torch.float32).view(1, n, 1).expand(b, n, 1)
    visible = gather_positions(tokens, m.keep)
    full = unshuffle(visible, torch.tensor([-1.0]), m.restore)
    expected = torch.where(m.mask.bool(), -1.0, tokens[..., 0])
    assert torch.equal(full[..., 0], expected)
    # unshuffling the whole shuffled sequence restores the order
    shuffle = m.restore.argsort(1)
    assert torch.equal(gather_positions(gather_positions(tokens, shuffle), m.restore), tokens)
    with pytest.raises(SelfsupError):
        random_masking(2, 4, 1.0)
    assert random_masking(2, 4, 0.99).keep.shape == (2, 1)  # at least one visible


def test_noise_types_do_what_they_say():
    g = torch.Generator().manual_seed(0)
    x = torch.full((4, 3, 10, 10), 0.5)
    masked = corrupt(x, "masking", fraction=0.3, generator=g)
    hit = masked != x
    assert (masked[hit] == 0).all()
    assert torch.equal(hit.all(1), hit.any(1))  # every channel of a pixel together
    assert torch.equal(hit[:, 0].flatten(1).sum(1), torch.full((4,), 30))
    sp = corrupt(x, "salt_and_pepper", fraction=0.5, generator=g)
    hit = sp != x
    assert torch.equal(hit[:, 0].flatten(1).sum(1), torch.full((4,), 50))
    values = sp[hit]
    assert ((values == 0) | (values == 1)).all() and 0.3 < values.mean() < 0.7
    gauss = corrupt(x, "gaussian", sigma=0.2, generator=g)
    assert abs((gauss - x).std().item() - 0.2) < 0.02 and abs((gauss - x).mean().item()) < 0.02
    assert torch.equal(corrupt(x, "gaussian", sigma=0.0), x)
    assert torch.equal(corrupt(x, "masking", fraction=0.0), x)
    with pytest.raises(SelfsupError, match="unknown noise"):
        corrupt(x, "speckle")
    with pytest.raises(SelfsupError):
        corrupt(x, "masking", fraction=1.5)


@pytest.mark.parametrize("size", [(8, 8), (32, 32), (28, 20), (224, 224)])
def test_conv_decoder_gives_the_image_size(size):
    dec = ConvDecoder(16, 3, *size, width_start=32)
    assert dec(torch.randn(2, 16)).shape == (2, 3, *size)


def test_mae_decoder_shapes_and_mask_token_use():
    torch.manual_seed(0)
    dec = MAEDecoder(enc_dim=12, dim=16, depth=1, heads=2, patch_pixels=5)
    m = random_masking(3, 6, 0.5)
    encoded = torch.randn(3, 1 + 3, 12)
    out = dec(encoded, m.restore, (2, 3))
    assert out.shape == (3, 6, 5)
    out.sum().backward()
    assert dec.mask_token.grad is not None and dec.mask_token.grad.abs().sum() > 0


def test_reconstruction_grid_layout():
    a = np.zeros((2, 4, 4, 3), np.uint8)
    b = np.full((2, 4, 4, 3), 100, np.uint8)
    grid = reconstruction_grid([a, b], scale=2, gap=1)
    assert grid.shape == (2 * 8 + 3, 2 * 8 + 3, 3) and grid.dtype == np.uint8
    assert (grid[1:9, 1:9] == 0).all() and (grid[1:9, 10:18] == 100).all()
    assert (grid[0] == 255).all()
