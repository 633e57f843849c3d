"""CMC: channel splits, the multi-view encoder (Lab and explicit groups, 4 channels included),
export -> load equality, the loss against a plain formula, two gloo processes, exact resume and
convergence on coloured digits (L and ab both carry the digit's shape)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from method_harness import assert_resume_exact, digits_knn, run_two_processes
from sklearn.datasets import load_digits

import selfsup
from selfsup.augment.color_space import rgb_to_lab
from selfsup.errors import SelfsupError
from selfsup.export import save_encoder
from selfsup.methods.cmc import CMC, CMCConfig
from selfsup.models import ImageEncoderSpec
from selfsup.models.multiview import (
    LAB_MEAN,
    LAB_STD,
    MultiViewEncoder,
    MultiViewEncoderSpec,
    parse_split,
)

SPEC = ImageEncoderSpec("convnet", 3, 16, True, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
BATCH = 8


def test_parse_split():
    assert parse_split("lab", 3) == ((0,), (1, 2))
    assert parse_split("0,1,2|3", 4) == ((0, 1, 2), (3,))
    for bad, channels in [("lab", 4), ("0,1", 3), ("0|0", 3), ("0|5", 3), ("a|b", 3)]:
        with pytest.raises(SelfsupError):
            parse_split(bad, channels)


def test_lab_encoder_feeds_l_and_ab_to_their_backbones():
    torch.manual_seed(0)
    enc = MultiViewEncoder(MultiViewEncoderSpec.from_image_spec(SPEC, "lab")).eval()
    x = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    lab = (rgb_to_lab(x) - torch.tensor(LAB_MEAN).view(1, 3, 1, 1)) / torch.tensor(LAB_STD).view(
        1, 3, 1, 1
    )
    want = torch.cat([enc.backbones[0](lab[:, :1]), enc.backbones[1](lab[:, 1:])], dim=1)
    assert torch.allclose(enc(x), want, atol=1e-5)
    assert enc(x).shape == (2, enc.out_dim) and enc.out_dim == sum(enc.view_dims)


def test_four_channel_groups_and_export_load_equality(tmp_path):
    torch.manual_seed(0)
    spec4 = ImageEncoderSpec("convnet", 4, 16, True, (0.5,) * 4, (0.25,) * 4)
    enc = MultiViewEncoder(MultiViewEncoderSpec.from_image_spec(spec4, "0,1,2|3")).eval()
    assert [b.features[0].in_channels for b in enc.backbones] == [3, 1]
    x = torch.randint(0, 256, (3, 4, 16, 16), dtype=torch.uint8)
    save_encoder(enc, tmp_path)
    loaded = selfsup.load(tmp_path)
    assert type(loaded) is MultiViewEncoder and loaded.spec == enc.spec
    with torch.no_grad():
        assert torch.equal(loaded(x), enc(x))


def reference_cmc(z1, z2, t):
    """Both directions of InfoNCE on cosine similarity, written out."""
    u1, u2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    s = u1 @ u2.T / t
    n = len(s)
    one = -sum(s[i, i] - torch.log(torch.exp(s[i]).sum()) for i in range(n)) / n
    two = -sum(s[i, i] - torch.log(torch.exp(s[:, i]).sum()) for i in range(n)) / n
    return (one + two) / 2


def make_method() -> CMC:
    torch.manual_seed(0)
    return CMC(SPEC, CMCConfig(proj_dim=16), augment=None)


def fixed_images():
    return torch.rand(BATCH, 3, 16, 16, generator=torch.Generator().manual_seed(1))


def test_loss_matches_plain_formula_values_and_gradients():
    method = make_method()
    x = fixed_images()
    loss, _ = method.loss([x], {})
    z1, z2 = (h(f) for h, f in zip(method.heads, method.encoder.views(x), strict=True))
    want = reference_cmc(z1, z2, 0.07)
    assert torch.allclose(loss, want, atol=1e-5)
    params = list(method.heads.parameters())
    for a, b in zip(
        torch.autograd.grad(loss, params), torch.autograd.grad(want, params), strict=True
    ):
        assert torch.allclose(a, b, atol=1e-5)


def half_views(rank: int):
    h = BATCH // 2
    return [fixed_images()[rank * h : (rank + 1) * h]], {}


@pytest.mark.timeout(120)
def test_two_gloo_processes_match_one_process_gradients():
    grads = run_two_processes(make_method, half_views)
    method = make_method()
    h = BATCH // 2
    x = fixed_images()
    parts = [method.encoder.views(x[:h]), method.encoder.views(x[h:])]
    z = [method.heads[v](torch.cat([p[v] for p in parts])) for v in range(2)]
    reference_cmc(z[0], z[1], 0.07).backward()
    expected = {n: p.grad for n, p in method.named_parameters() if p.grad is not None}
    assert expected and set(expected) <= set(grads)
    for name, g in expected.items():
        assert torch.allclose(grads[name], g, atol=1e-5, rtol=1e-4), name


def coloured_digits(path):
    """Digits with a random stroke colour and a random background colour per image, as an npz
    with the digits loader's sizes (1437 train, 360 test): L and ab both show the digit."""
    digits = load_digits()
    rng = np.random.default_rng(0)
    grey = (digits.images / 16.0)[:, None]  # (N, 1, 8, 8)
    n = len(grey)
    stroke, back = rng.random((n, 3, 1, 1)), rng.random((n, 3, 1, 1))
    rgb = np.rint((grey * stroke + (1 - grey) * back) * 255).astype(np.uint8)
    order = rng.permutation(n)
    train, test = order[:1437], order[1437:]
    np.savez(
        path,
        images=rgb[train],
        labels=digits.target[train],
        test_images=rgb[test],
        test_labels=digits.target[test],
    )
    return f"npy:{path}"


SMALL_RUN = {"method.name": "cmc", "method.proj_dim": 32, "method.augment": "light"}


def test_resume_exact(tmp_path, monkeypatch):
    source = coloured_digits(tmp_path / "digits.npz")
    assert_resume_exact(tmp_path, monkeypatch, SMALL_RUN | {"data.source": source})


@pytest.mark.slow
def test_cmc_learns_coloured_digits(tmp_path):
    source = coloured_digits(tmp_path / "digits.npz")
    learned, random = digits_knn(
        tmp_path,
        SMALL_RUN | {"data.source": source, "optim.name": "adamw", "optim.lr": 1e-3},
    )
    print(f"cmc coloured digits kNN: learned {learned:.3f} random {random:.3f}")
    assert learned > random + 0.05
