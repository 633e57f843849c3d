"""CycleGAN: its L1 terms against plain references, the image pool, bad input, exact resume of
both optimisers and both pools, 1-vs-2-process gradients of the generators' update, and (slow)
translation of grey digits into inverted digits, learned from unaligned images."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from method_harness import FAST, assert_config_resumes_exactly, run_two_processes

import selfsup
from selfsup.errors import SelfsupError
from selfsup.losses import cycle_loss, identity_loss, per_sample_l1
from selfsup.methods.cyclegan import CycleGAN
from selfsup.modalities import get_modality
from selfsup.models import ImageEncoderSpec
from selfsup.models.cyclegan import exchange_with_pool, to_signed
from selfsup.run import build_method
from selfsup.run_data import load_run_splits, run_config

SMALL = {"method.width": 8, "method.disc_width": 8, "method.blocks": 1}
EPOCHS = 8  # the slow test's budget: about 2 minutes on one core


def digits_npz(path, rows: slice, inverted: bool, size: int = 8, channels: int = 1) -> str:
    """A domain made here from scikit-learn's digits `rows`: grey (A), or with black and white
    swapped (B), as an npz; A and B take different rows, so no image of B is the inverse of one
    of A (unpaired), and the run pairs their rows in a seeded order (unaligned)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = np.round(digits.images[rows] * 255 / 16).astype(np.uint8)[:, None]
    x = np.repeat(x, channels, axis=1)
    if size != 8:
        x = np.pad(x, ((0, 0), (0, 0), (0, size - 8), (0, size - 8)))
    np.savez(path, images=255 - x if inverted else x, labels=digits.target[rows].astype(np.int64))
    return f"npy:{path}"


def tiny_domains(tmp_path) -> dict:
    """320 grey digits (A: 256 train after the 20 % held out) and 320 other digits inverted
    (B), at batch 64: four steps an epoch."""
    return (
        FAST
        | SMALL
        | {
            "method.name": "cyclegan",
            "data.source": digits_npz(tmp_path / "a.npz", slice(0, 320), inverted=False),
            "data.source_b": digits_npz(tmp_path / "b.npz", slice(320, 640), inverted=True),
            "train.batch_size": 64,
        }
    )


def small_method(pool_size: int = 4) -> CycleGAN:
    spec = ImageEncoderSpec("convnet", 1, 8, True, (0.5,), (0.25,))
    cfg = CycleGAN.make_config({"width": 8, "disc_width": 8, "blocks": 1, "pool_size": pool_size})
    torch.manual_seed(0)
    return CycleGAN(spec, cfg, augment=None)


def batch_of(rank: int | None = None) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    a = torch.randint(0, 256, (8, 1, 8, 8), generator=g, dtype=torch.uint8)
    b = torch.randint(0, 256, (8, 1, 8, 8), generator=g, dtype=torch.uint8)
    rows = slice(None) if rank is None else slice(4 * rank, 4 * rank + 4)
    return {"image": a[rows], "image_b": b[rows]}


def half_inputs(rank: int):
    batch = batch_of(rank)
    return [to_signed(batch["image"]), to_signed(batch["image_b"])], batch


def test_l1_terms_match_plain_references():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randn(5, 3, 4, 4, generator=g, dtype=torch.float64)
    for ours in (cycle_loss, identity_loss):
        (grad,) = torch.autograd.grad(ours(x, y), x)
        ref = F.l1_loss(x, y)
        (ref_grad,) = torch.autograd.grad(ref, x)
        assert torch.allclose(ours(x, y), ref) and torch.allclose(grad, ref_grad)
    each = per_sample_l1(x, y)
    assert each.shape == (5,)
    assert torch.allclose(each, torch.stack([F.l1_loss(x[i], y[i]) for i in range(5)]))


def test_generators_loss_is_the_references_sum():
    """LSGAN + 10 x cycle + 0.5 x 10 x identity, as cycle_gan_model.py's backward_G."""
    method = small_method()
    a, b = half_inputs(0)[0]
    loss, figures = method.generators_loss(a, b)
    fake_b, fake_a = method.g_ab(a), method.g_ba(b)
    gan = ((method.d_b(fake_b) - 1) ** 2).mean() + ((method.d_a(fake_a) - 1) ** 2).mean()
    cyc = F.l1_loss(method.g_ba(fake_b), a) + F.l1_loss(method.g_ab(fake_a), b)
    idt = F.l1_loss(method.g_ab(b), b) + F.l1_loss(method.g_ba(a), a)
    assert torch.allclose(loss, gan + 10 * cyc + 5 * idt, atol=1e-5)
    assert torch.allclose(figures["cycle_l1"], cyc, atol=1e-6)


def test_discriminators_loss_is_halved_lsgan_on_the_generators_images():
    method = small_method(pool_size=0)
    a, b = half_inputs(0)[0]
    method.generators_loss(a, b)
    fake_a, fake_b = method._fakes
    loss, _ = method.discriminators_loss(a, b)
    ref = 0.5 * (
        F.mse_loss(method.d_a(a), torch.ones_like(method.d_a(a)))
        + (method.d_a(fake_a) ** 2).mean()
        + F.mse_loss(method.d_b(b), torch.ones_like(method.d_b(b)))
        + (method.d_b(fake_b) ** 2).mean()
    )
    assert torch.allclose(loss, ref, atol=1e-6)


def test_the_pool_fills_then_swaps_half_its_draws_keeping_every_image():
    torch.manual_seed(0)
    pool = torch.zeros(6, 1, 2, 2)
    first = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 1, 2, 2).clone() + 1
    shown, filled = exchange_with_pool(pool, 0, first)
    assert filled == 4 and torch.equal(shown, first) and torch.equal(pool[:4], first)
    swaps = 0
    for step in range(20):
        new = torch.full((5, 1, 2, 2), 100.0 + 10 * step) + torch.arange(5.0).view(5, 1, 1, 1)
        before, was = pool.clone(), filled
        shown, filled = exchange_with_pool(pool, filled, new)
        # nothing is lost or made up: the pool and the batch hold the images held before, and
        # those stored while the pool filled are also shown
        stored = new[: filled - was]
        held = sorted(torch.cat([before[:was], new, stored]).flatten(1)[:, 0].tolist())
        after = sorted(torch.cat([pool[:filled], shown]).flatten(1)[:, 0].tolist())
        assert held == after
        swaps += int((shown != new).flatten(1).any(1).sum())
    assert filled == 6
    assert 25 < swaps < 75  # about half of the 98 images drawn after the pool filled


def test_bad_input_is_refused_before_training(tmp_path):
    with pytest.raises(SelfsupError, match="--data-b"):
        selfsup.pretrain(selfsup.make_config(**{"method.name": "cyclegan"}), tmp_path / "a")
    inverted = digits_npz(tmp_path / "b.npz", slice(0, 100), inverted=True)
    cfg = selfsup.make_config(**{"data.source_b": inverted})
    with pytest.raises(SelfsupError, match="drop --data-b"):
        selfsup.pretrain(cfg, tmp_path / "c")
    other = digits_npz(tmp_path / "big.npz", slice(0, 100), True, size=12, channels=3)
    cfg = selfsup.make_config(**(FAST | {"method.name": "cyclegan", "data.source_b": other}))
    with pytest.raises(SelfsupError, match=r"\(3, 12, 12\).*\(1, 8, 8\)"):
        selfsup.pretrain(cfg, tmp_path / "d")
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


def test_resume_restores_both_optimisers_and_pools(tmp_path, monkeypatch):
    cfg = selfsup.make_config(**(tiny_domains(tmp_path) | {"method.pool_size": 50}))
    state = assert_config_resumes_exactly(tmp_path, monkeypatch, cfg, interrupt_call=4 + 3)
    assert state["pool_filled"] == 50 and state["pool_b"].abs().sum() > 0
    ckpt = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=False)
    assert set(ckpt["optimizers"]) == {"generators", "discriminators"}


def test_a_run_exports_the_generators_encoder_and_writes_cycle_errors(tmp_path):
    overrides = tiny_domains(tmp_path) | {"train.epochs": 1, "eval.protocols": "knn"}
    cfg = selfsup.make_config(**overrides)
    selfsup.pretrain(cfg, tmp_path / "run")
    run = tmp_path / "run"
    assert json.loads((run / "encoder.json").read_text())["kind"] == "cyclegan"
    encoder = selfsup.load(run)
    images = np.zeros((3, 1, 8, 8), np.uint8)
    assert tuple(selfsup.embed(encoder, images).shape) == (3, 16)  # 8 wide, halved once
    figures = json.loads((run / "method_figures.json").read_text())["figures"]
    assert set(figures) == {"cycle_error_aba", "cycle_error_bab"}
    assert all(0 < v < 1 for v in figures.values())
    assert {p.name for p in (run / "figures").glob("*.png")} == {
        "cyclegan-a-a-b-a-b-a.png",
        "cyclegan-b-b-a-b-a-b.png",
    }
    evaluation = json.loads((run / "eval.json").read_text())
    assert {"selfsup", "random", "raw_pixels"} <= set(evaluation)


def test_generators_gradients_match_one_process():
    """Nothing is gathered: every term is a mean over the batch's own samples (instance norm
    is per sample), so DDP's average of two half batches is the whole batch's gradient. The
    discriminators' update is not compared: each process draws its own pool exchanges."""
    method = small_method()
    loss, _ = method.update_loss("generators", *half_inputs(None))
    loss.backward()
    two = run_two_processes(small_method, half_inputs, update="generators")
    for name, p in method.named_parameters():
        if p.grad is not None:
            assert torch.allclose(p.grad, torch.as_tensor(two[name]), atol=1e-5), name


def generator_errors(run, trained: bool) -> dict[str, float]:
    """On A's held-out digits, in [0, 1] pixel units: the cycle error |F(G(a)) - a| and the
    translation error |G(a) - (1 - a)| (the known target), for the run's generators or the
    same ones at their initialisation; and the untranslated input's |a - (1 - a)|."""
    cfg = run_config(run)
    splits = load_run_splits(cfg, run)
    torch.manual_seed(cfg.train.seed)
    method = build_method(cfg, get_modality("image"), splits.train)
    if trained:
        method.load_state_dict(torch.load(run / "checkpoint.pt", weights_only=False)["method"])
    method.eval()
    a = to_signed(splits.test.images)
    with torch.no_grad():
        translated = method.g_ab(a)
        back = method.g_ba(translated)
    return {
        "cycle": float((back - a).abs().mean() / 2),
        "translation": float((translated + a).abs().mean() / 2),
        "untranslated": float((2 * a).abs().mean() / 2),
    }


@pytest.mark.slow
def test_grey_digits_translate_into_inverted_digits(tmp_path):
    """Trained on unaligned grey digits (A: the digits source) and inverted digits (B: other
    rows, shuffled), the A -> B generator's output on held-out digits is within a third of the
    untranslated input's distance to the true inverse and well below the untrained
    generator's; the held-out cycle error falls to under 0.6 of its value at initialisation;
    the exported encoder beats the random encoder on kNN. Measured at this budget
    (docs/methods-generative.md): translation 0.19, untranslated 0.79, untrained 0.39; cycle
    0.35 -> 0.16; kNN 55 % against 41 %. No identity term: inversion is its own inverse, so
    asking G to leave B's images alone fights the very mapping to learn."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = np.round(digits.images * 255 / 16).astype(np.uint8)[:, None]
    order = np.random.default_rng(1).permutation(len(x))
    np.savez(tmp_path / "b.npz", images=255 - x[order], labels=digits.target[order])
    settings = {
        "method.name": "cyclegan",
        "data.source_b": f"npy:{tmp_path / 'b.npz'}",
        "method.width": 8,
        "method.disc_width": 8,
        "method.blocks": 2,
        "method.lambda_identity": 0.0,
        "train.epochs": EPOCHS,
        "train.batch_size": 64,
        "train.eval_every": 0,
        "train.progress": False,
        "train.report": False,
        "eval.protocols": "knn",
    }
    selfsup.pretrain(selfsup.make_config(**settings), tmp_path / "run")
    before = generator_errors(tmp_path / "run", trained=False)
    after = generator_errors(tmp_path / "run", trained=True)
    assert after["translation"] < after["untranslated"] / 3
    assert after["translation"] < 0.75 * before["translation"]
    assert after["cycle"] < 0.6 * before["cycle"]
    own = json.loads((tmp_path / "run" / "method_figures.json").read_text())["figures"]
    assert own["cycle_error_aba"] == pytest.approx(after["cycle"], rel=1e-3)
    evaluation = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert evaluation["selfsup"]["knn_top1"] > evaluation["random"]["knn_top1"] + 0.03
