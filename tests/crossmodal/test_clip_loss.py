"""clip_loss against a plain loop (values and gradients), its local-loss form, the clamp of the
learned logit scale, and the CLIP method's parameter groups."""

import math

import pytest
import torch
import torch.nn.functional as F

from selfsup.errors import SelfsupError
from selfsup.losses import clip_loss


def reference_clip_loss(image, text, scale):
    """The paper's pseudo-code, one row at a time: -log softmax of the matching pair, both ways."""
    n = image.shape[0]
    total = 0.0
    for i in range(n):
        row_i = torch.stack([scale * torch.dot(image[i], text[j]) for j in range(n)])
        row_t = torch.stack([scale * torch.dot(text[i], image[j]) for j in range(n)])
        total = total - torch.log(torch.exp(row_i[i]) / torch.exp(row_i).sum())
        total = total - torch.log(torch.exp(row_t[i]) / torch.exp(row_t).sum())
    return total / (2 * n)


def unit(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=g), dim=1).requires_grad_(True)


def test_clip_loss_matches_reference_value_and_gradients():
    image, text = unit(6, 5, 0), unit(6, 5, 1)
    scale = torch.tensor(1 / 0.07, requires_grad=True)
    got = clip_loss(image, text, scale)
    want = reference_clip_loss(image, text, scale)
    assert torch.allclose(got, want, atol=1e-5)
    g_got = torch.autograd.grad(got, (image, text, scale))
    g_want = torch.autograd.grad(want, (image, text, scale))
    for a, b in zip(g_got, g_want, strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def test_local_loss_halves_average_to_the_global_loss():
    """Each rank's rows against all columns, labels offset: the mean is the full-batch loss."""
    image, text = unit(8, 4, 2), unit(8, 4, 3)
    full = clip_loss(image, text, 10.0)
    halves = [
        clip_loss(image[s], text[s], 10.0, all_image=image, all_text=text, offset=s.start)
        for s in (slice(0, 4), slice(4, 8))
    ]
    assert torch.allclose(full, sum(halves) / 2, atol=1e-6)
    g_full = torch.autograd.grad(full, (image, text))
    g_halves = torch.autograd.grad(sum(halves) / 2, (image, text))
    for a, b in zip(g_full, g_halves, strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_matching_pairs_give_a_low_loss_and_shuffled_a_high_one():
    image = unit(16, 32, 4).detach()
    assert clip_loss(image, image, 100.0) < 1e-3
    assert clip_loss(image, image.roll(1, 0), 100.0) > 10


def test_clip_loss_rejects_bad_shapes_and_offsets():
    image, text = unit(4, 3, 5), unit(4, 3, 6)
    with pytest.raises(SelfsupError, match="one shape"):
        clip_loss(image, text[:3], 1.0)
    with pytest.raises(SelfsupError, match="offset"):
        clip_loss(image, text, 1.0, all_image=image, all_text=text, offset=1)


def make_clip(tiny_bert, **params):
    from selfsup.methods.clip import CLIP
    from selfsup.models import ImageEncoderSpec
    from selfsup.models.clip import ClipEncoderSpec
    from selfsup.models.text import TextEncoderSpec

    spec = ClipEncoderSpec(
        ImageEncoderSpec("convnet", 3, 16, True, (0.5,) * 3, (0.25,) * 3),
        TextEncoderSpec(str(tiny_bert), max_length=16),
        embed_dim=8,
    )
    return CLIP(spec, CLIP.make_config(params), augment=None)


def test_logit_scale_starts_at_one_over_007_and_is_clamped_at_100(tiny_bert):
    method = make_clip(tiny_bert)
    assert math.isclose(method.scale().item(), 1 / 0.07, rel_tol=1e-6)
    with torch.no_grad():
        method.logit_scale.fill_(math.log(500.0))
    assert math.isclose(method.scale().item(), 100.0, rel_tol=1e-6)  # in the loss at once
    method.after_step(0.5)  # and the parameter itself after the optimizer step
    assert math.isclose(method.logit_scale.exp().item(), 100.0, rel_tol=1e-5)
    with torch.no_grad():
        method.logit_scale.fill_(math.log(20.0))
    method.after_step(0.6)
    assert math.isclose(method.logit_scale.exp().item(), 20.0, rel_tol=1e-5)  # left alone


def test_logit_scale_has_its_own_group_without_weight_decay(tiny_bert):
    method = make_clip(tiny_bert)
    groups = method.param_groups()
    assert groups[1] == {"params": [method.logit_scale], "weight_decay": 0.0}
    assert all(p is not method.logit_scale for p in groups[0]["params"])
    n = sum(1 for p in method.parameters() if p.requires_grad)
    assert len(groups[0]["params"]) + 1 == n
    fixed = make_clip(tiny_bert, learn_temperature=False)
    assert len(fixed.param_groups()) == 1


def test_bad_temperature_is_a_clear_error(tiny_bert):
    with pytest.raises(SelfsupError, match="init_temperature"):
        make_clip(tiny_bert, init_temperature=0.0)
