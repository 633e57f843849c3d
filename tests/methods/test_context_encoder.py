"""Context encoder (Pathak et al. 2016): the weights and the reconstruction loss against plain
references (values and gradients), the masks, each update's loss against a plain
re-computation, 1 vs 2 processes per update, exact resume with both optimisers, bad input, the
report's picture, the held-out figures, the listing, and convergence on digits (slow)."""

import json

import pytest
import torch
import torch.nn.functional as F
from method_harness import (
    assert_gradients_close,
    assert_resume_exact,
    run_two_processes,
    torch_threads,
)

import selfsup
from selfsup.cli import main
from selfsup.errors import SelfsupError
from selfsup.losses import central_weights, joint_inpainting_loss, weighted_region_mse
from selfsup.methods.context_encoder import ContextEncoder, ContextEncoderConfig
from selfsup.models import ImageEncoderSpec
from selfsup.models.context_encoder import block_masks

SPEC = ImageEncoderSpec("convnet", 1, 8, True, (0.3,), (0.4,))
BATCH = 8


def test_central_weights_are_the_papers():
    """16 px, overlap 2: the central 8x8 square from (4, 4); its 2 px border weighted 10, the
    inner 4x4 weighted 1 and dropped from the input; nothing outside the square."""
    weights, hole = central_weights(16, 16, overlap=2)
    for r in range(16):
        for c in range(16):
            in_square = 4 <= r < 12 and 4 <= c < 12
            inner = 6 <= r < 10 and 6 <= c < 10
            assert weights[r, c] == (1.0 if inner else 10.0 if in_square else 0.0), (r, c)
            assert hole[r, c] == float(inner), (r, c)
    with pytest.raises(ValueError, match="overlap"):
        central_weights(8, 8, overlap=2)  # a 4x4 square has no inner hole with 2 px borders


def test_weighted_region_mse_is_the_reference_codes_loss():
    """The central mask: the mean over the central square's elements of w * (pred - x)^2 (the
    reference's errG_l2 before its second factor 0.999); 0/1 weights: the mean squared error
    of the dropped pixels."""
    g = torch.Generator().manual_seed(0)
    pred = torch.rand(3, 2, 16, 16, generator=g, requires_grad=True)
    target = torch.rand(3, 2, 16, 16, generator=g)
    weights, _ = central_weights(16, 16, overlap=2)
    got = weighted_region_mse(pred, target, weights)
    crop = (slice(None), slice(None), slice(4, 12), slice(4, 12))
    want = (weights[4:12, 4:12] * (pred[crop] - target[crop]) ** 2).mean()
    assert torch.allclose(got, want)
    (a,), (b,) = torch.autograd.grad(got, pred), torch.autograd.grad(want, pred)
    assert torch.allclose(a, b)
    mask = (torch.rand(3, 1, 16, 16, generator=g) > 0.7).float()
    got = weighted_region_mse(pred, target, mask)
    squared = [
        (pred[i, c, r, s] - target[i, c, r, s]) ** 2
        for i in range(3)
        for c in range(2)
        for r in range(16)
        for s in range(16)
        if mask[i, 0, r, s] > 0
    ]
    assert torch.allclose(got, torch.stack(squared).mean())
    assert joint_inpainting_loss(torch.tensor(2.0), torch.tensor(3.0), 0.999, 0.001) == (
        0.999 * 2 + 0.001 * 3
    )


def test_block_masks_are_squares_of_the_given_side_inside_the_image():
    torch.manual_seed(0)
    masks = block_masks(50, 10, 12, blocks=1, side=3, device=torch.device("cpu"))
    assert masks.shape == (50, 1, 10, 12)
    for m in masks[:, 0]:
        rows, cols = m.nonzero(as_tuple=True)
        assert len(rows) == 9 and rows.max() - rows.min() == 2 and cols.max() - cols.min() == 2
    several = block_masks(50, 10, 12, blocks=4, side=3, device=torch.device("cpu"))
    counts = several.flatten(1).sum(1)
    assert (counts >= 9).all() and (counts <= 36).all() and (counts > 9).any()


def make_method(**kw) -> ContextEncoder:
    torch.manual_seed(0)
    cfg = ContextEncoderConfig(decoder_width=16, discriminator_width=8, **kw)
    return ContextEncoder(SPEC, cfg, augment=None)


def fixed_inputs(mask: str = "center"):
    g = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (BATCH, 1, 8, 8), dtype=torch.uint8, generator=g)
    x = images.float() / 255
    if mask == "center":
        weights, hole = central_weights(8, 8, overlap=0)
        hole, weights = hole.expand(BATCH, 1, 8, 8), weights.expand(BATCH, 1, 8, 8)
    else:
        torch.manual_seed(2)
        hole = block_masks(BATCH, 8, 8, 2, 2, torch.device("cpu"))
        weights = hole
    return [x, hole, weights], {"image": images}


def plain_loss(method: ContextEncoder, update: str, views) -> torch.Tensor:
    """Written out: fill the hole with the mean pixel 0.3, encode, decode, paste the painted
    region into the image; D's BCE on real against pasted; the generator's 0.999 * weighted L2
    + 0.001 * BCE(D(pasted), real)."""
    x, hole, weights = views
    masked = x * (1 - hole) + 0.3 * hole
    painted = method.decoder(method.encoder(masked))
    region = (weights > 0).float()
    pasted = x * (1 - region) + painted * region

    def score(images):
        return method.discriminator((images - 0.3) / 0.4)

    if update == "discriminator":
        real, fake = score(x), score(pasted.detach())
        return F.binary_cross_entropy_with_logits(
            real, torch.ones_like(real)
        ) + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
    rec = (weights * (painted - x) ** 2).sum() / ((weights > 0).sum() * x.shape[1])
    fake = score(pasted)
    adv = F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    return 0.999 * rec + 0.001 * adv


def grads(method) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in method.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("mask", ["center", "random_block"])
@pytest.mark.parametrize("update", ["discriminator", "generator"])
def test_update_losses_match_a_plain_recomputation(update, mask):
    method = make_method(overlap=0)
    views, batch = fixed_inputs(mask)
    loss, figures = method.update_loss(update, views, batch)
    loss.backward()
    reference = make_method(overlap=0)
    want = plain_loss(reference, update, views)
    want.backward()
    assert torch.allclose(loss, want, atol=1e-5)
    got = grads(method)
    assert_gradients_close(got, grads(reference))
    if update == "discriminator":
        assert all(n.startswith("discriminator.") for n in got) and "d_accuracy" in figures
    else:
        assert any(n.startswith("encoder.") for n in got) and "reconstruction" in figures


def test_without_the_adversarial_loss_only_the_generator_steps():
    method = make_method(adversarial=False)
    assert method.plan(0.0) == ("generator",)
    joint = make_method()
    assert joint.plan(0.5) == ("discriminator", "generator")
    # train.lua's 10x lr of the encoder-decoder under the joint loss, when asked for
    (generator,) = make_method(generator_lr_scale=10).update_groups("generator")
    (discriminator,) = joint.update_groups("discriminator")
    assert generator["lr_scale"] == 10 and "lr_scale" not in discriminator
    assert (
        make_method(adversarial=False, generator_lr_scale=10).update_groups("generator")[0][
            "lr_scale"
        ]
        == 1
    )
    names = {id(p): n for n, p in joint.named_parameters()}
    trained = joint.update_groups("generator")[0]["params"]
    assert {names[id(p)].split(".")[0] for p in trained} == {"encoder", "decoder"}
    views, batch = fixed_inputs()
    loss, figures = method.update_loss("generator", views, batch)
    assert "adversarial" not in figures and torch.allclose(loss, figures["reconstruction"])


def half_inputs(rank: int):
    views, batch = fixed_inputs()
    h = BATCH // 2
    return [v[rank * h : (rank + 1) * h] for v in views], {
        k: v[rank * h : (rank + 1) * h] for k, v in batch.items()
    }


@pytest.mark.timeout(180)
@pytest.mark.parametrize("update", ["discriminator", "generator"])
def test_two_gloo_processes_match_one_process(update):
    """Nothing is gathered; the check is that DDP, with a network unused by each update,
    averages each update's gradients as one process on the mean of the two halves' losses."""
    got = run_two_processes(make_method, half_inputs, update=update)
    method = make_method()
    total = sum(method.update_loss(update, *half_inputs(r))[0] for r in range(2)) / 2
    total.backward()
    assert_gradients_close(got, grads(method))


def test_resume_restores_both_optimisers(tmp_path, monkeypatch):
    state = assert_resume_exact(
        tmp_path,
        monkeypatch,
        {
            "method.name": "context_encoder",
            "method.decoder_width": 16,
            "method.discriminator_width": 8,
            "method.mask": "random_block",
        },
    )
    assert any(k.startswith("discriminator.") for k in state)
    assert any(k.startswith("decoder.") for k in state)


def test_images_too_small_for_the_mask_are_refused():
    spec = ImageEncoderSpec("convnet", 1, 4, True, (0.5,), (0.25,))
    with pytest.raises(SelfsupError, match="central square"):
        ContextEncoder(spec, ContextEncoderConfig(overlap=1), augment=None)
    tiny = ImageEncoderSpec("convnet", 1, 1, True, (0.5,), (0.25,))
    with pytest.raises(SelfsupError, match="at least 2x2"):
        ContextEncoder(tiny, ContextEncoderConfig(mask="random_block"), augment=None)


@pytest.mark.parametrize(
    "params", [{"mask": "ring"}, {"overlap": -2}, {"block_fraction": 0}, {"lambda_adv": -1}]
)
def test_bad_settings_are_refused(params):
    with pytest.raises(SelfsupError, match="context_encoder"):
        ContextEncoder.make_config(params)


def test_views_of_another_size_are_refused():
    method = make_method()
    with pytest.raises(SelfsupError, match="8x8"):
        method.masks(torch.rand(2, 1, 6, 6))


def test_report_picture_and_heldout_figures():
    method = make_method(samples=3).eval()
    images = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    with torch.no_grad():
        pictures = method.figures({"image": images})
        own = method.heldout_figures({"image": images})
    (title,) = pictures
    assert "masked input | inpainting | original" in title
    picture = pictures[title]
    # 3 rows of 8 px images at scale 8, 3 columns, 1 px gaps
    assert picture.shape == (3 * 64 + 4, 3 * 64 + 4, 3)
    top = picture[1:65]
    original = images[0, 0].repeat_interleave(8, 0).repeat_interleave(8, 1).numpy()
    assert (top[:, 2 * 65 + 1 : 3 * 65, 0] == original).all()
    # the masked input shows the mean pixel (0.3) in the central 4x4 hole (overlap 0 at 8 px)
    assert (top[16:48, 1 + 16 : 1 + 48, 0] == round(0.3 * 255)).all()
    x = images.float() / 255
    centre = x[:, :, 2:6, 2:6]
    assert torch.allclose(own["mean_fill_mse"], (centre - 0.3).pow(2).flatten(1).mean(1))
    assert own["inpainting_mse"].shape == (5,)


def test_selfsup_methods_lists_the_context_encoder(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert "context_encoder" in out and "Pathak" in out


@pytest.mark.slow
def test_context_encoder_inpaints_digits_and_its_encoder_beats_random(tmp_path):
    """Four epochs on digits: the held-out central inpainting error falls well below the
    mean-fill baseline, and the encoder is compared to the random one (measured: kNN
    see docs/methods-pretext.md)."""
    cfg = selfsup.make_config(
        **{
            "method.name": "context_encoder",
            "train.epochs": 4,
            "train.batch_size": 128,
            "train.progress": False,
            "train.report": False,
            "train.eval_every": 0,
            "eval.protocols": "knn",
        }
    )
    with torch_threads(1):
        result = selfsup.pretrain(cfg, tmp_path / "run")
    own = json.loads((tmp_path / "run" / "method_figures.json").read_text())["figures"]
    learned, random = result.evaluation["selfsup"], result.evaluation["random"]
    print(f"context encoder: {own}; kNN learned {learned} random {random}")
    assert own["inpainting_mse"] < 0.6 * own["mean_fill_mse"]
    assert learned["knn_top1"] > random["knn_top1"] + 0.03


def test_heldout_block_masks_are_fixed_and_leave_the_random_state_alone():
    method = make_method(mask="random_block")
    images = torch.rand(6, 1, 8, 8)
    torch.manual_seed(5)
    before = torch.get_rng_state()
    first, second = method.heldout_masks(images), method.heldout_masks(images)
    assert torch.equal(first, second) and first.sum() > 0
    assert torch.equal(torch.get_rng_state(), before)


def test_heldout_images_of_another_size_are_resized_to_the_views():
    method = make_method().eval()
    with torch.no_grad():
        own = method.heldout_figures({"image": torch.randint(0, 256, (3, 1, 12, 12)).byte()})
    assert own["inpainting_mse"].shape == (3,)
