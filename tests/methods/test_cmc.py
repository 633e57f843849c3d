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


RGBD = (("rgb", 3), ("depth", 1))


def test_parse_split():
    assert parse_split("lab", 3) == ((0,), (1, 2))
    assert parse_split("auto", 3) == ((0,), (1, 2))
    assert parse_split("0,1,2|3", 4) == ((0, 1, 2), (3,))
    assert parse_split("0-2|3", 4) == ((0, 1, 2), (3,))
    assert parse_split("rgb|depth", 4, RGBD) == ((0, 1, 2), (3,))
    assert parse_split("depth|rgb", 4, RGBD) == ((3,), (0, 1, 2))
    assert parse_split("auto", 4, RGBD) == ((0, 1, 2), (3,))
    assert parse_split("0|1-2, depth", 4, RGBD) == ((0,), (1, 2, 3))
    for bad, channels in [("lab", 4), ("0,1", 3), ("0|0", 3), ("0|5", 3), ("a|b", 3), ("2-0|1", 3)]:
        with pytest.raises(SelfsupError):
            parse_split(bad, channels)


@pytest.mark.parametrize("bad", ["rgb|dpth", "rgb", "rgb|0", "0-3|depth", "auto"])
def test_a_wrong_split_names_the_channels_and_the_forms(bad):
    groups = RGBD if bad != "auto" else ()
    with pytest.raises(SelfsupError, match=r"channels|channel\(s\)") as err:
        parse_split(bad, 4, groups)
    text = str(err.value)
    assert "rgb|depth" in text and "0-2|3" in text  # the accepted forms
    if groups:
        assert "rgb = 0-2, depth = 3" in text  # what this data's channels are called


def test_named_split_is_stored_as_indices_and_auto_is_lab_on_rgb():
    spec4 = ImageEncoderSpec("convnet", 4, 16, True, (0.5,) * 4, (0.25,) * 4, channel_groups=RGBD)
    assert MultiViewEncoderSpec.from_image_spec(spec4, "depth|rgb").split == "3|0,1,2"
    assert MultiViewEncoderSpec.from_image_spec(spec4, "auto").split == "0,1,2|3"
    assert MultiViewEncoderSpec.from_image_spec(SPEC, "auto").split == "lab"
    assert MultiViewEncoderSpec.from_image_spec(SPEC, "0|1,2").split == "0|1,2"


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


# --- the user's own views: an npz of `rgb` and `depth` arrays -----------------------------


def rgbd_digits(path):
    """Digits as an npz of `rgb` (N, H, W, 3) and `depth` (N, 1, H, W) arrays with the digits
    loader's sizes (1437 train, 360 test). Depth is the digit's ink (near = ink), so it carries
    the class; the RGB image shows the digit in a random stroke colour on a random background."""
    digits = load_digits()
    rng = np.random.default_rng(0)
    grey = (digits.images / 16.0)[:, None]  # (N, 1, 8, 8)
    n = len(grey)
    stroke, back = rng.random((n, 3, 1, 1)), rng.random((n, 3, 1, 1))
    rgb = np.rint((grey * stroke + (1 - grey) * back) * 255).astype(np.uint8)
    depth = np.rint(grey * 255).astype(np.uint8)
    order = rng.permutation(n)
    train, test = order[:1437], order[1437:]
    np.savez(
        path,
        rgb=rgb[train].transpose(0, 2, 3, 1),
        depth=depth[train],
        labels=digits.target[train],
        test_rgb=rgb[test].transpose(0, 2, 3, 1),
        test_depth=depth[test],
        test_labels=digits.target[test],
    )
    return f"npy:{path}"


RGBD_RUN = {
    "method.name": "cmc",
    "method.proj_dim": 32,
    "method.split": "rgb|depth",
}


def test_rgbd_npz_loads_as_named_channel_groups(tmp_path):
    from selfsup.data import load_data

    splits = load_data(rgbd_digits(tmp_path / "rgbd.npz"))
    assert splits.train.images.shape == (1437, 4, 8, 8)
    assert splits.train.channel_groups == RGBD and splits.test.channel_groups == RGBD
    assert splits.test.images.shape == (360, 4, 8, 8) and splits.test.labels is not None


def test_rgbd_resume_exact_and_export(tmp_path, monkeypatch):
    source = rgbd_digits(tmp_path / "rgbd.npz")
    assert_resume_exact(tmp_path, monkeypatch, RGBD_RUN | {"data.source": source})
    encoder = selfsup.load(tmp_path / "straight")
    assert type(encoder) is MultiViewEncoder and encoder.spec.split == "0,1,2|3"
    assert encoder.spec.channel_groups == RGBD
    x = torch.randint(0, 256, (2, 8, 8, 4), dtype=torch.uint8)  # channels last, as users hold
    with torch.no_grad():
        assert encoder(encoder.preprocess(x)).shape == (2, encoder.out_dim)
    with pytest.raises(SelfsupError, match=r"4 channels \(rgb 3 \+ depth 1\)"):
        encoder.preprocess(torch.zeros(2, 3, 8, 8, dtype=torch.uint8))  # RGB alone


def test_rgbd_wrong_split_fails_before_training(tmp_path):
    source = rgbd_digits(tmp_path / "rgbd.npz")
    cfg = selfsup.make_config(**(RGBD_RUN | {"data.source": source, "method.split": "rgb|d"}))
    with pytest.raises(SelfsupError, match=r"bad split 'rgb\|d' .* rgb = 0-2, depth = 3"):
        selfsup.pretrain(cfg, tmp_path / "run")
    cfg = selfsup.make_config(**(RGBD_RUN | {"data.source": source, "method.split": "lab"}))
    with pytest.raises(SelfsupError, match="split 'lab' needs RGB"):
        selfsup.pretrain(cfg, tmp_path / "run2")


@pytest.mark.slow
def test_cmc_learns_from_depth(tmp_path):
    # The rgb tower sees the digit in random colours, the depth tower its ink alone: what the
    # two views share is the digit's shape, and kNN on the concatenated features must beat the
    # random encoder. 8 px digits take the mild `digits` crops: `simclr-cifar` (the default for
    # colour images up to 64 px) crops to 8 % of an 8 px digit and fell below the random encoder
    # (docs/methods-queues.md).
    source = rgbd_digits(tmp_path / "rgbd.npz")
    settings = {"data.source": source, "method.augment": "digits"}
    learned, random = digits_knn(
        tmp_path, RGBD_RUN | settings | {"optim.name": "adamw", "optim.lr": 1e-3}, epochs=40
    )
    print(f"cmc rgb+depth kNN: learned {learned:.3f} random {random:.3f}")
    assert learned > random + 0.05


def test_augment_crops_all_channels_jointly_and_colours_only_rgb():
    from selfsup.augment import build_augment
    from selfsup.augment.pipeline import colour_channels

    assert colour_channels(4, RGBD) == (0, 1, 2)
    assert colour_channels(4, (("depth", 1), ("rgb", 3))) == (1, 2, 3)
    assert colour_channels(4, (("images", 4),)) == () and colour_channels(3) == (0, 1, 2)
    g = torch.Generator().manual_seed(0)
    pattern = torch.randint(0, 256, (16, 1, 12, 12), generator=g, dtype=torch.uint8)
    # Every channel the same picture and colour off: crops and flips are shared, so the four
    # output channels stay equal.
    same = build_augment("simclr-cifar", 8, 4, colour_channels=())
    out = same(pattern.expand(-1, 4, -1, -1), generator=torch.Generator().manual_seed(1))
    assert out.shape == (16, 4, 8, 8)
    assert all(torch.equal(out[:, c], out[:, 3]) for c in range(3))
    # Colour on RGB only: with the same draws (simclr-cifar draws its crops and flips before
    # its colour ops, and has no blur), depth is the colour-free view's depth, RGB is not.
    rgbd = torch.cat([torch.randint(0, 256, (16, 3, 12, 12), generator=g).byte(), pattern], 1)
    coloured = build_augment("simclr-cifar", 8, 4, colour_channels=(0, 1, 2))
    a = coloured(rgbd, generator=torch.Generator().manual_seed(2))
    b = same(rgbd, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a[:, 3], b[:, 3]) and not torch.equal(a[:, :3], b[:, :3])
    with pytest.raises(SelfsupError, match="1 or 3 channels"):
        build_augment("simclr", 8, 4)
