"""Counting (Noroozi et al. 2017): the loss against the paper's equation written plainly
(values and gradients), the tiles and the downsampling, the method's loss against a plain
re-computation, bad input, exact resume, the listing, and convergence on digits (slow).

No 1-vs-2-process test: nothing is gathered or synchronised. The contrasted image y is another
image of the same process's batch, so each process's loss is its own batch's, and DDP's mean of
the gradients is what one process computes on the mean of the per-process losses, as for any
per-sample loss."""

import pytest
import torch
import torch.nn.functional as F
from method_harness import assert_resume_exact, torch_threads

import selfsup
from selfsup.cli import main
from selfsup.errors import SelfsupError
from selfsup.losses import counting_loss, counting_terms
from selfsup.methods.counting import Counting, CountingConfig, downsample, quadrants
from selfsup.models import ImageEncoderSpec

SPEC = ImageEncoderSpec("convnet", 1, 8, True, (0.5,), (0.25,))


def paper_loss(whole, tiles, other, margin):
    """Equation 4, one image pair at a time: |phi(Dx) - sum_j phi(T_j x)|^2 +
    max(0, M - |phi(Dy) - sum_j phi(T_j x)|^2), averaged over the pairs."""
    total = 0.0
    for i in range(whole.shape[0]):
        tile_sum = tiles[i, 0] + tiles[i, 1] + tiles[i, 2] + tiles[i, 3]
        pair = sum((whole[i, k] - tile_sum[k]) ** 2 for k in range(whole.shape[1]))
        unpair = sum((other[i, k] - tile_sum[k]) ** 2 for k in range(whole.shape[1]))
        total = total + pair + max(margin - unpair, torch.zeros(()))
    return total / whole.shape[0]


@pytest.mark.parametrize("margin", [10.0, 1.0])
def test_counting_loss_is_the_papers_equation(margin):
    g = torch.Generator().manual_seed(0)
    # counts near each other so that the hinge is active for some pairs and not for others
    whole = torch.rand(5, 3, generator=g).requires_grad_()
    tiles = (torch.rand(5, 4, 3, generator=g) / 4).requires_grad_()
    # phi(D y) at squared distances 0.3 M .. 5 M from the tile sum: the hinge on for some pairs
    direction = F.normalize(torch.randn(5, 3, generator=g), dim=1)
    share = torch.tensor([0.3, 0.7, 1.5, 2.0, 5.0])[:, None]
    other = (tiles.detach().sum(1) + direction * (share * margin).sqrt()).requires_grad_()
    got = counting_loss(whole, tiles, other, margin)
    want = paper_loss(whole, tiles, other, margin)
    assert torch.allclose(got, want, atol=1e-6)
    got_grads = torch.autograd.grad(got, (whole, tiles, other))
    want_grads = torch.autograd.grad(want, (whole, tiles, other))
    for a, b in zip(got_grads, want_grads, strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    pair, unpair = counting_terms(whole, tiles, other, margin)
    assert torch.allclose(pair + unpair, got) and unpair > 0
    # the hinge: a far enough other image adds nothing; counting nothing costs the margin
    assert counting_terms(whole, tiles, other + 100, margin)[1] == 0
    zeros = torch.zeros(2, 3)
    assert counting_loss(zeros, torch.zeros(2, 4, 3), zeros, margin) == margin


def test_counting_loss_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match="tiles"):
        counting_loss(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="margin"):
        counting_loss(torch.zeros(2, 3), torch.zeros(2, 4, 3), torch.zeros(2, 3), 0.0)


def test_quadrants_and_downsampling():
    x = torch.arange(2 * 1 * 4 * 6, dtype=torch.float).view(2, 1, 4, 6)
    tiles = quadrants(x)
    assert tiles.shape == (2, 4, 1, 2, 3)
    assert torch.equal(tiles[:, 0], x[..., :2, :3])  # top-left
    assert torch.equal(tiles[:, 1], x[..., :2, 3:])  # top-right
    assert torch.equal(tiles[:, 2], x[..., 2:, :3])  # bottom-left
    assert torch.equal(tiles[:, 3], x[..., 2:, 3:])  # bottom-right
    # area: each output pixel is the mean of its 2x2 block
    blocks = x.view(2, 1, 2, 2, 3, 2).mean(dim=(3, 5))
    assert torch.allclose(downsample(x, "area"), blocks)
    for mode in ("bilinear", "bicubic"):
        assert downsample(x, mode).shape == (2, 1, 2, 3)


def make_method(**kw) -> Counting:
    torch.manual_seed(0)
    return Counting(SPEC, CountingConfig(count_dim=6, head_hidden_dim=8, **kw), augment=None)


def test_method_loss_matches_a_plain_recomputation():
    """Eval mode (BatchNorm on running statistics): phi of each piece computed alone, the
    paper's equation on them with y the next image of the batch."""
    method = make_method().eval()
    x = torch.rand(3, 1, 8, 8)
    views = [downsample(x, "bilinear"), quadrants(x)]
    loss, figures = method.loss(views, {})
    reference = make_method().eval()

    def phi(images):
        return F.relu(reference.head[0](reference.encoder(images)))

    whole = phi(views[0])
    tiles = torch.stack([phi(views[1][:, j]) for j in range(4)], dim=1)
    other = torch.stack([whole[(i - 1) % 3] for i in range(3)])
    want = paper_loss(whole, tiles, other, 10.0)
    assert torch.allclose(loss, want, atol=1e-5)
    loss.backward()
    want.backward()
    ref = dict(reference.named_parameters())
    for name, p in method.named_parameters():
        assert torch.allclose(p.grad, ref[name].grad, atol=1e-5), name
    assert {"pair", "unpair", "count_mean"} <= set(figures)


def test_counts_are_non_negative():
    method = make_method()
    with torch.no_grad():
        assert (method.counts(torch.rand(4, 1, 8, 8)) >= 0).all()


def test_views_draw_one_of_the_papers_downsamplings():
    method = make_method(downsample="area")
    method.augment = lambda images, view: images.float() / 255
    images = torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8)
    small, tiles = method.views({"image": images})
    x = images.float() / 255
    assert torch.allclose(small, downsample(x, "area")) and torch.equal(tiles, quadrants(x))


@pytest.mark.parametrize("size", [7, 1, (8, 5)])
def test_images_that_do_not_tile_are_refused(size):
    spec = ImageEncoderSpec("convnet", 1, size, True, (0.5,), (0.25,))
    with pytest.raises(SelfsupError, match="even"):
        Counting(spec, CountingConfig(), augment=None)


def test_a_batch_of_one_image_is_refused():
    method = make_method()
    x = torch.rand(1, 1, 8, 8)
    with pytest.raises(SelfsupError, match="at least 2"):
        method.loss([downsample(x, "area"), quadrants(x)], {})


@pytest.mark.parametrize(
    "params", [{"downsample": "lanczos"}, {"margin": 0}, {"count_dim": 0}, {"tiles": 9}]
)
def test_bad_settings_are_refused(params):
    with pytest.raises(SelfsupError, match="counting"):
        Counting.make_config(params)


def test_counting_resumes_exactly(tmp_path, monkeypatch):
    state = assert_resume_exact(
        tmp_path,
        monkeypatch,
        {"method.name": "counting", "method.count_dim": 16, "method.head_hidden_dim": 16},
    )
    assert any(k.startswith("head.") for k in state)


def test_selfsup_methods_lists_counting(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert "counting" in out and "Noroozi" in out


@pytest.mark.slow
def test_counting_beats_the_random_encoder_on_digits(tmp_path):
    """Digits upsampled to 16 px (8 px pieces): measured with one thread, kNN 0.900 against the
    random encoder's 0.839 (linear 0.981 both). At their native 8 px (4 px pieces) counting
    stays below random under kNN (0.800 vs 0.833): docs/methods-pretext.md#counting."""
    cfg = selfsup.make_config(
        **{
            "method.name": "counting",
            "data.image_size": 16,
            "train.epochs": 20,
            "train.batch_size": 128,
            "train.progress": False,
            "train.report": False,
            "train.eval_every": 0,
            "eval.protocols": "knn,linear",
        }
    )
    with torch_threads(1):
        result = selfsup.pretrain(cfg, tmp_path / "run")
    learned, random = result.evaluation["selfsup"], result.evaluation["random"]
    print(f"counting: learned {learned} random {random}")
    assert learned["knn_top1"] > random["knn_top1"] + 0.03
    assert learned["linear_top1"] >= random["linear_top1"] - 0.01
