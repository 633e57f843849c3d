"""Autoregressive next-patch prediction (AIM-style): causality, targets, the causal ViT's
export -> load round trip, a clear error without one, exact resume, convergence on digits."""

import pytest
import torch
from method_harness import assert_resume_exact, digits_knn

import selfsup
from selfsup.augment import build_augment
from selfsup.errors import SelfsupError
from selfsup.export import save_encoder
from selfsup.losses import patch_mse
from selfsup.methods import get_method
from selfsup.models import ImageEncoderSpec, build_encoder
from selfsup.models.masking import patchify

# Patch 4 on 8 px digits (4 patches): a cheap ViT for the resume test.
SMALL = {
    "method.name": "autoregressive",
    "model.backbone": "vit-mini-p4-causal",
    "method.head_hidden_dim": 32,
    "optim.name": "adamw",
    "optim.lr": 0.001,
}
CONVERGE = {
    "method.name": "autoregressive",
    "model.backbone": "vit-mini-p2-causal",
    "method.head_hidden_dim": 128,
    "optim.name": "adamw",
    "optim.lr": 0.002,
    "optim.weight_decay": 0.05,
}


def _spec(backbone="vit-mini-p2-causal"):
    return ImageEncoderSpec(backbone, 1, 8, True, (0.3,), (0.4,))


def _method(backbone="vit-mini-p2-causal", **params):
    cls = get_method("autoregressive")
    params = {"head_hidden_dim": 32, **params}
    return cls(_spec(backbone), cls.make_config(params), build_augment("none", 8, 1))


def test_each_patch_is_predicted_from_earlier_patches_only():
    torch.manual_seed(0)
    method = _method()
    x = torch.rand(3, 1, 8, 8)
    prediction, target = method.predict(x)
    assert prediction.shape == target.shape == (3, 15, 4)
    normalised = (x - 0.3) / 0.4
    assert torch.equal(target, patchify(normalised, 2)[:, 1:])  # patches 2..16, raster order
    for k in range(16):  # change patch k: predictions of patches <= k must not move
        changed = x.clone()
        row, col = divmod(k, 4)
        changed[:, :, 2 * row : 2 * row + 2, 2 * col : 2 * col + 2] += 0.5
        moved = (method.predict(changed)[0] - prediction).abs().amax(dim=(0, 2)) > 1e-6
        assert not moved[: max(0, k)].any(), k  # prediction j is of patch j + 1
        if k < 15:
            assert moved[k]
    loss, _ = method.loss([x], {"image": x})
    assert torch.allclose(loss, patch_mse(prediction, target, None, True))
    loss.backward()
    assert all(p.grad is not None for p in method.head.parameters())


def test_needs_a_causal_vit_with_a_clear_message():
    with pytest.raises(SelfsupError, match=r"model\.backbone=vit-mini-p2-causal"):
        _method("vit-mini-p2")
    with pytest.raises(SelfsupError, match="causal ViT"):
        _method("convnet")


def test_causal_encoder_exports_and_loads_with_equal_features(tmp_path):
    torch.manual_seed(0)
    encoder = build_encoder(_spec()).eval()
    assert encoder.backbone.causal and encoder.out_dim == 128
    save_encoder(encoder, tmp_path)
    loaded = selfsup.load(tmp_path)
    assert loaded.spec.backbone == "vit-mini-p2-causal" and loaded.backbone.causal
    images = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    with torch.no_grad():
        assert torch.equal(encoder(images), loaded(images))
        # the pooled feature is the mean of the causal patch tokens
        tokens = encoder.backbone.forward_features(encoder.normalise(images.float() / 255))
        assert torch.allclose(encoder(images), tokens[:, 1:].mean(1), atol=1e-6)
    plain = build_encoder(_spec("vit-mini-p2"))
    assert not plain.backbone.causal


def test_resume_is_exact(tmp_path, monkeypatch):
    state = assert_resume_exact(tmp_path, monkeypatch, SMALL)
    assert any(k.startswith("head.") for k in state)


@pytest.mark.slow
def test_converges_on_digits(tmp_path):
    learned, random = digits_knn(tmp_path, CONVERGE, epochs=20)
    print("autoregressive", learned, random)
    assert learned > random + 0.05
