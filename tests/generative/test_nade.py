"""NADE: the O(HD) negative log-likelihood against a per-pixel loop (values and gradients), a
normalised distribution, samples from it, exact resume, bad input, pictures, convergence."""

import itertools
import json

import numpy as np
import pytest
import torch
from method_harness import FAST, assert_resume_exact

import selfsup
from selfsup.errors import SelfsupError
from selfsup.losses import nade_nll
from selfsup.methods import get_method
from selfsup.models import ImageEncoderSpec
from selfsup.models.binary import binarise
from selfsup.models.nade import NADEEncoder, NADEEncoderSpec
from selfsup.run_data import load_run_splits


def _tiny(d=6, h=4, rows=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(h, d, generator=g, dtype=torch.float64)
    c = torch.randn(h, generator=g, dtype=torch.float64)
    vw = torch.randn(d, h, generator=g, dtype=torch.float64)
    b = torch.randn(d, generator=g, dtype=torch.float64)
    v = (torch.rand(rows, d, generator=g) > 0.5).double()
    return v, w, c, vw, b


def _naive_nll(v, w, c, vw, b):
    """-log p(v) by the definition, one row and one pixel at a time."""
    out = []
    for row in v:
        total = torch.zeros((), dtype=torch.float64)
        for d in range(len(row)):
            hidden = torch.sigmoid(c + w[:, :d] @ row[:d])
            p = torch.sigmoid(b[d] + vw[d] @ hidden)
            total = total - (row[d] * torch.log(p) + (1 - row[d]) * torch.log(1 - p))
        out.append(total)
    return torch.stack(out)


@pytest.mark.parametrize("block", [64, 4, 1])  # one block, blocks carried over, pixel by pixel
def test_nll_and_gradients_equal_a_per_pixel_loop(block):
    v, *params = _tiny(d=10)
    fast = [p.clone().requires_grad_() for p in params]
    slow = [p.clone().requires_grad_() for p in params]
    got, want = nade_nll(v, *fast, block=block), _naive_nll(v, *slow)
    assert torch.allclose(got, want)
    got.sum().backward()
    want.sum().backward()
    for a, b in zip(fast, slow, strict=True):
        assert torch.allclose(a.grad, b.grad)


def test_probabilities_of_every_binary_image_sum_to_one():
    _, *params = _tiny(d=7)
    every = torch.tensor(list(itertools.product([0.0, 1.0], repeat=7)), dtype=torch.float64)
    assert torch.isclose(torch.exp(-nade_nll(every, *params)).sum(), torch.tensor(1.0).double())


def test_samples_follow_the_model():
    torch.manual_seed(0)
    nade = NADEEncoder(NADEEncoderSpec((1, 3), 4))
    with torch.no_grad():
        for p in nade.parameters():
            p.normal_(0, 1.5)
        samples = nade.sample(20000, generator=torch.Generator().manual_seed(1))
        every = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3)))
        p = torch.exp(-nade.nll(every))
    codes = (samples * torch.tensor([4.0, 2.0, 1.0])).sum(1).long()
    freq = torch.bincount(codes, minlength=8).float() / len(samples)
    assert torch.allclose(freq, p, atol=0.015)


def _method(channels=1, **params):
    spec = ImageEncoderSpec("convnet", channels, 8, True, (0.3,) * channels, (0.4,) * channels)
    cls = get_method("nade")
    return cls(spec, cls.make_config(params), None)


def test_step_loss_is_the_mean_nll_of_the_binarised_pixels():
    torch.manual_seed(0)
    method = _method(hidden=16)
    images = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    loss, _ = method.loss(method.views({"image": images}), {"image": images})
    nade = method.encoder
    v = (images > 127).flatten(1).float()
    assert torch.allclose(loss, nade.nll(v).mean())
    loss.backward()
    assert all(p.grad is not None for p in nade.parameters())
    # the representation: the hidden layer after every pixel
    assert torch.allclose(nade(images), torch.sigmoid(v @ nade.weight.t() + nade.hidden_bias))


def test_colour_images_are_refused_with_one_clear_error():
    with pytest.raises(SelfsupError, match="grey images; this data has 3 channels"):
        _method(channels=3)


def test_pictures_are_samples_and_conditionals():
    torch.manual_seed(0)
    method = _method(hidden=16)
    state = torch.random.get_rng_state()
    with torch.no_grad():
        pictures = method.figures({"image": torch.zeros(4, 1, 8, 8, dtype=torch.uint8)})
    assert torch.equal(state, torch.random.get_rng_state())
    assert len(pictures) == 2
    for grid in pictures.values():
        assert grid.dtype == np.uint8 and grid.ndim == 3 and grid.shape[2] == 3


def test_resume_is_exact(tmp_path, monkeypatch):
    assert_resume_exact(tmp_path, monkeypatch, {"method.name": "nade", "method.hidden": 32})


def test_run_reports_heldout_nll_beside_the_random_nade(tmp_path):
    cfg = selfsup.make_config(
        **(FAST | {"method.name": "nade", "method.hidden": 32, "eval.protocols": "knn"})
    )
    selfsup.pretrain(cfg, tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "eval.json").read_text())
    learned, random = saved["selfsup"]["nll_nats"], saved["random"]["nll_nats"]
    assert 0 < learned < random  # the random NADE is near 64 * log 2 = 44.4 nats
    encoder = selfsup.load(tmp_path / "run")
    assert encoder.kind == "nade" and encoder.out_dim == 32


def _independent_bernoulli_nll(train: torch.Tensor, test: torch.Tensor) -> float:
    """Held-out NLL (nats per image) of independent pixels with the training marginals
    (Laplace-smoothed): the density baseline NADE must beat."""
    p = (train.sum(0) + 1) / (len(train) + 2)
    return float(-(test * p.log() + (1 - test) * (1 - p).log()).sum(1).mean())


# Measured (docs/methods-generative.md): 20 epochs on digits at batch 32.
CONVERGE = {"method.name": "nade", "train.batch_size": 32, "train.epochs": 20}


@pytest.mark.slow
def test_heldout_nll_improves_and_beats_independent_pixels(tmp_path):
    cfg = selfsup.make_config(**(FAST | CONVERGE | {"eval.protocols": "knn"}))
    result = selfsup.pretrain(cfg, tmp_path / "run").evaluation
    learned, random = result["selfsup"]["nll_nats"], result["random"]["nll_nats"]
    print(learned, random)
    assert learned < random - 15  # from about 44.4 nats (64 * log 2)
    splits = load_run_splits(cfg, None)  # the run's own train and held-out test images
    baseline = _independent_bernoulli_nll(
        binarise(splits.train.images), binarise(splits.test.images)
    )
    assert learned < baseline - 3
