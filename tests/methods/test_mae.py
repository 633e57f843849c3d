"""MAE: the ViT sees only the visible patches, the loss counts masked patches only, pictures,
a clear error without a ViT, 32 and 224 px, exact resume, convergence on digits."""

import json

import numpy as np
import pytest
import torch
from method_harness import FAST, assert_resume_exact, digits_knn

import selfsup
from selfsup.augment import build_augment
from selfsup.errors import SelfsupError
from selfsup.losses import patch_mse
from selfsup.methods import get_method
from selfsup.models import ImageEncoderSpec
from selfsup.models.vit import build_vit

# Patch 4 on 8 px digits (4 patches): a cheap ViT for the resume test.
SMALL = {
    "method.name": "mae",
    "model.backbone": "vit-mini-p4",
    "method.decoder_dim": 32,
    "method.decoder_depth": 1,
    "method.decoder_heads": 2,
    "optim.name": "adamw",
    "optim.lr": 0.001,
}
CONVERGE = {
    "method.name": "mae",
    "model.backbone": "vit-mini-p2",
    "method.decoder_dim": 64,
    "method.decoder_depth": 2,
    "method.decoder_heads": 4,
    "optim.name": "adamw",
    "optim.lr": 0.002,
    "optim.weight_decay": 0.05,
}


def _mae(backbone="vit-mini-p2", size=8, channels=1, **params):
    small = size <= 64  # the CIFAR stem rule: patch 4 up to 64 px, 16 above
    spec = ImageEncoderSpec(backbone, channels, size, small, (0.3,) * channels, (0.4,) * channels)
    params = {"decoder_dim": 32, "decoder_depth": 1, "decoder_heads": 2, **params}
    cls = get_method("mae")
    return cls(spec, cls.make_config(params), build_augment("none", size, channels))


def test_encoder_sees_only_visible_patches_and_loss_counts_masked_only():
    torch.manual_seed(0)
    method = _mae()
    seen = []
    hook = method.encoder.backbone.vit.blocks[0].register_forward_hook(
        lambda mod, args, out: seen.append(args[0].shape)
    )
    images = torch.rand(3, 1, 8, 8)
    prediction, target, mask = method.predict(images)
    hook.remove()
    assert seen == [(3, 1 + 4, 128)]  # [CLS] + 25 % of the 16 patches
    assert prediction.shape == target.shape == (3, 16, 4) and mask.shape == (3, 16)
    assert torch.equal(mask.sum(1), torch.full((3,), 12.0))
    # changing the prediction on visible patches does not change the loss
    changed = prediction + (1 - mask).unsqueeze(-1) * 5.0
    assert torch.allclose(patch_mse(changed, target, mask), patch_mse(prediction, target, mask))
    loss, _ = method.loss([images], {"image": images})
    loss.backward()
    assert method.decoder.mask_token.grad.abs().sum() > 0
    assert method.encoder.backbone.vit.pos_embed.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("backbone", "size", "patches"), [("vit-mini", 32, 64), ("vit-mini", 224, 196)]
)
def test_works_at_32_and_224_px(backbone, size, patches):
    torch.manual_seed(0)
    method = _mae(backbone, size, 3)
    prediction, _, mask = method.predict(torch.rand(1, 3, size, size))
    assert prediction.shape[1] == patches and mask.sum() == round(0.75 * patches)


@pytest.mark.parametrize("name", ["vit-mini-p4", "vit-mini-p4-causal"])
@pytest.mark.parametrize("size", [32, 8])  # the size it was built for, and resampled positions
def test_vit_seams_match_timms_own_forward(name, size):
    """tokens / forward_features / pool are the ViT's public face for MAE and AIM: built from
    timm's public parts, they must equal timm's own forward exactly (a timm upgrade that changes
    how [CLS] and position embeddings enter fails here, not silently in a method)."""
    torch.manual_seed(0)
    vit = build_vit(name, 3, cifar_stem=True).eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        ours = vit.forward_features(x)
        assert torch.equal(ours, vit.vit.forward_features(x, is_causal=vit.causal))
        assert torch.equal(vit(x), ours[:, 1:].mean(1) if vit.causal else ours[:, 0])
        n = (size // 4) ** 2
        assert vit.tokens(x).shape == (2, 1 + n, 128)
        keep = torch.arange(n).expand(2, n)
        assert torch.equal(vit.forward_features(x, keep=keep), ours)
        if not vit.causal:  # attention is order-free: a subset in any order sees the same tokens
            keep = torch.stack([torch.randperm(n)[: n // 2] for _ in range(2)])
            sub = vit.forward_features(x, keep=keep)
            alone = torch.stack(
                [vit.forward_features(x[i : i + 1], keep[i : i + 1])[0] for i in (0, 1)]
            )
            assert sub.shape == (2, 1 + n // 2, 128) and torch.allclose(sub, alone, atol=1e-5)


def test_needs_a_vit_with_a_clear_message():
    with pytest.raises(SelfsupError, match=r"model\.backbone=vit-tiny"):
        _mae("convnet")


def test_pictures_show_input_masked_input_and_reconstruction():
    torch.manual_seed(0)
    method = _mae()
    images = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
    with torch.no_grad():
        pictures = method.figures({"image": images})
    ((title, grid),) = pictures.items()
    assert title == "mae: input | masked input | reconstruction"
    assert grid.dtype == np.uint8 and grid.shape == (4 * 64 + 5, 3 * 64 + 4, 3)
    first = grid[1:65, 1:65, 0]
    assert np.array_equal(first[::8, ::8], images[0, 0].numpy())


def test_imagenet_preset_is_the_papers_decoder():
    cfg = get_method("mae").make_config({"preset": "imagenet"})
    assert (cfg.decoder_dim, cfg.decoder_depth, cfg.decoder_heads) == (512, 8, 16)
    assert cfg.mask_ratio == 0.75 and cfg.norm_pix_loss


def test_resume_is_exact(tmp_path, monkeypatch):
    state = assert_resume_exact(tmp_path, monkeypatch, SMALL)
    assert "decoder.mask_token" in state


@pytest.mark.slow
def test_learns_to_predict_masked_pixels_on_digits(tmp_path):
    """MAE did not beat the random ViT under kNN or the linear probe on digits in 20 epochs
    (docs/methods-reconstruction.md: kNN 32.5 vs 31.4 %, linear 73.9 vs 73.3 %), so this checks
    that it learns its task: in raw normalised pixels, predicting the mean image scores about 1
    on the masked patches, and the trained model must do much better."""
    overrides = CONVERGE | {"method.norm_pix_loss": False, "train.epochs": 10}
    cfg = selfsup.make_config(**(FAST | overrides))
    selfsup.pretrain(cfg, tmp_path / "run")
    records = map(json.loads, (tmp_path / "run" / "metrics.jsonl").read_text().splitlines())
    losses = [r["loss"] for r in records if r["kind"] == "train"]
    print("mae masked-pixel loss", losses)
    assert losses[-1] < 0.7 and losses[-1] < losses[0] - 0.1


@pytest.mark.slow
def test_beats_the_random_vit_on_digits(tmp_path):
    """MAE needs many steps: after 10 epochs (110 steps) its [CLS] feature was no better than
    the random ViT's under kNN, linear probe or fine-tuning; after 40 epochs it is clearly
    better under kNN (measured 41.1 % vs 31.4 %; docs/methods-reconstruction.md)."""
    learned, random = digits_knn(tmp_path, CONVERGE, epochs=40)
    print(f"mae digits kNN: learned {learned:.4f} random {random:.4f}")
    assert learned > random + 0.05
