"""The learned Mahalanobis metric: NCA's loss against a plain loop, a PSD metric, 1-vs-2 gloo
processes (negatives gathered), exact resume, frozen features, bad input, and kNN with the
learned metric against raw Euclidean kNN and a random map on digits (slow)."""

import pytest
import torch
from method_harness import (
    FAST,
    assert_gradients_close,
    assert_resume_exact,
    run_two_processes,
)

import selfsup
from selfsup.losses import nca_pairs
from selfsup.methods.mahalanobis import Mahalanobis, MahalanobisConfig
from selfsup.models import ImageEncoderSpec

SPEC = ImageEncoderSpec("convnet", 1, 8, True, (0.3,), (0.3,))
BATCH = 8


def reference_nca(z1, z2):
    u = torch.cat([z1, z2])
    m = len(u)
    total = 0
    for i in range(m):
        others = [j for j in range(m) if j != i]
        logits = torch.stack([-((u[i] - u[j]) ** 2).sum() for j in others])
        total = total - torch.log_softmax(logits, 0)[others.index((i + m // 2) % m)]
    return total / m


def test_nca_matches_a_plain_loop_values_and_gradients():
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(5, 3, generator=g, requires_grad=True) for _ in range(2))
    got, want = nca_pairs(a, b), reference_nca(a, b)
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    for x, y in zip(
        torch.autograd.grad(got, (a, b)), torch.autograd.grad(want, (a, b)), strict=True
    ):
        assert torch.allclose(x, y, atol=1e-5)
    with pytest.raises(ValueError, match="N >= 2"):
        nca_pairs(a[:1], b[:1])


def make_method(loss: str = "nca") -> Mahalanobis:
    torch.manual_seed(0)
    return Mahalanobis(SPEC, MahalanobisConfig(loss=loss, init="random"), augment=None)


def make_triplet() -> Mahalanobis:
    return make_method("triplet")


def test_the_metric_is_psd_and_the_export_is_the_map():
    method = make_method()
    a = method.encoder.metric()
    assert torch.linalg.eigvalsh(a).min() > -1e-5
    x = torch.randint(0, 256, (3, 1, 8, 8), dtype=torch.uint8)
    phi = method.encoder.inputs(x)
    d = phi[0] - phi[1]
    z = method.encoder(x)
    assert torch.allclose(d @ a @ d, ((z[0] - z[1]) ** 2).sum(), rtol=1e-4)
    square = Mahalanobis(SPEC, MahalanobisConfig(), augment=None).encoder.map.weight
    assert torch.allclose(square, torch.eye(64) / 8)  # the (scaled) identity start


def fixed_views():
    g = torch.Generator().manual_seed(1)
    return torch.rand(BATCH, 1, 8, 8, generator=g), torch.rand(BATCH, 1, 8, 8, generator=g)


def half_views(rank: int):
    v1, v2 = fixed_views()
    sl = slice(rank * BATCH // 2, (rank + 1) * BATCH // 2)
    return [v1[sl], v2[sl]], {}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("make", [make_method, make_triplet])
def test_two_gloo_processes_match_one_process_gradients(make):
    grads = run_two_processes(make, half_views)
    method = make()
    total, _ = method.loss(list(fixed_views()), {})
    total.backward()
    expected = {n: p.grad for n, p in method.named_parameters() if p.grad is not None}
    assert_gradients_close(grads, expected)


def test_resumes_exactly(tmp_path, monkeypatch):
    assert_resume_exact(tmp_path, monkeypatch, {"method.name": "mahalanobis"})


def test_frozen_features_feed_the_map(tmp_path):
    base = selfsup.pretrain(
        selfsup.make_config(**FAST | {"train.epochs": 1, "method.name": "simclr"}),
        tmp_path / "base",
    )
    assert base.encoder is not None
    cfg = selfsup.make_config(
        **FAST
        | {
            "train.epochs": 1,
            "method.name": "mahalanobis",
            "method.features": str(tmp_path / "base"),
        }
    )
    selfsup.pretrain(cfg, tmp_path / "map")
    encoder = selfsup.load(tmp_path / "map")
    assert encoder.kind == "mahalanobis" and encoder.base is not None
    assert encoder.in_dim == encoder.base.out_dim
    frozen = selfsup.load(tmp_path / "base")
    for name, p in frozen.state_dict().items():
        assert torch.equal(encoder.base.state_dict()[name], p), name  # never trained


def test_a_missing_feature_source_is_refused(tmp_path):
    cfg = selfsup.make_config(
        **FAST | {"method.name": "mahalanobis", "method.features": str(tmp_path / "nope")}
    )
    with pytest.raises(selfsup.SelfsupError, match=r"frozen-feature source .* does not exist"):
        selfsup.pretrain(cfg, tmp_path / "run")


def test_bad_parameters_are_named():
    with pytest.raises(selfsup.SelfsupError, match="loss must be"):
        selfsup.pretrain(
            selfsup.make_config(**{"method.name": "mahalanobis", "method.loss": "lmnn"})
        )


def euclidean_knn(train, test, k=5):
    from sklearn.neighbors import KNeighborsClassifier

    knn = KNeighborsClassifier(k).fit(train[0], train[1])
    return knn.score(test[0], test[1])


@pytest.mark.slow
def test_learned_metric_beats_raw_euclidean_and_a_random_map_on_digits(tmp_path):
    from selfsup.data import load_data
    from selfsup.models.registry import build_encoder

    cfg = selfsup.make_config(**FAST | {"method.name": "mahalanobis", "train.epochs": 10})
    selfsup.pretrain(cfg, tmp_path / "run")
    learned = selfsup.load(tmp_path / "run")
    torch.manual_seed(0)
    random = build_encoder(learned.spec).eval()
    data = load_data("digits")

    def features(encoder, images):
        with torch.no_grad():
            return encoder(encoder.preprocess(images)).numpy()

    y_train, y_test = data.train.labels.numpy(), data.test.labels.numpy()
    scores = {
        name: euclidean_knn(
            (features(enc, data.train.images), y_train), (features(enc, data.test.images), y_test)
        )
        for name, enc in (("learned", learned), ("random", random))
    }
    raw = (
        data.train.images.flatten(1).float().numpy(),
        data.test.images.flatten(1).float().numpy(),
    )
    scores["raw"] = euclidean_knn((raw[0], y_train), (raw[1], y_test))
    print(scores)
    assert scores["learned"] > scores["raw"] and scores["learned"] > scores["random"]


def test_listed_by_selfsup_methods(capsys):
    from selfsup.cli import main

    main(["methods"])
    assert "mahalanobis" in capsys.readouterr().out
