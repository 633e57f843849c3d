"""TS-TCC: the temporal-contrast loss and the method's temporal step against plain references
(the reference code's slicing, loops), the encoder's layout, masks and export, the reference's
augmentations, 1-vs-2 gloo gradients, exact resume, an end-to-end run and convergence (slow)."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from method_harness import FAST, assert_gradients_close, assert_resume_exact, run_two_processes
from synthetic_series import write_series_npz

import selfsup
from selfsup.augment.series import SeriesAugment, permute_segments, step_scaling
from selfsup.cli import main
from selfsup.errors import SelfsupError
from selfsup.export import load, save_encoder
from selfsup.losses import nt_xent, temporal_contrast
from selfsup.methods.tstcc import TSTCC, TSTCCConfig
from selfsup.models import build_encoder
from selfsup.models.series import series_spec
from selfsup.models.tstcc import TSTCCEncoderSpec

SPEC = TSTCCEncoderSpec(2, channels=16)
SMALL = {"hidden_dim": 8, "heads": 2, "mlp_dim": 8, "timesteps": 3}


def reference_tc(pred, target, valid):
    """The reference's `TC.forward` loss with loops: for each k, log-softmax over the rows of
    target_k @ pred_k^T, its diagonal summed over the valid (k, i), divided by their count."""
    total, count = 0.0, 0
    for k in range(pred.shape[0]):
        scores = target[k] @ pred[k].T
        for i in range(pred.shape[1]):
            if valid[k, i]:
                total = total - torch.log_softmax(scores[i], dim=0)[i]
                count += 1
    return total / count


def test_temporal_contrast_matches_plain_reference_values_and_gradients():
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(3, 5, 4, generator=g, requires_grad=True)
    target = torch.randn(3, 5, 4, generator=g, requires_grad=True)
    valid = torch.ones(3, 5, dtype=torch.bool)
    valid[2, 1] = valid[1, 1] = False  # a short series: no targets 2 and 3 steps ahead
    for mask in (None, valid):
        ours = temporal_contrast(pred, target, mask)
        ref = reference_tc(pred, target, valid if mask is not None else torch.ones_like(valid))
        assert torch.allclose(ours, ref, atol=1e-6)
        for a, b in zip(
            torch.autograd.grad(ours, (pred, target)),
            torch.autograd.grad(ref, (pred, target)),
            strict=True,
        ):
            assert torch.allclose(a, b, atol=1e-6)


def test_encoder_has_the_reference_layout_and_feature_lengths():
    """The reference's `features_len`: 24 latents for Epilepsy (178 steps), 18 for HAR (128)."""
    for length, steps in ((178, 24), (128, 18), (150, 21), (24, 5)):
        encoder = build_encoder(TSTCCEncoderSpec(1)).eval()
        z, valid = encoder.latents(torch.randn(2, 1, length))
        assert z.shape == (2, steps, 128) and valid is None
    convs = [m for m in encoder.modules() if isinstance(m, torch.nn.Conv1d)]
    assert [(c.out_channels, c.kernel_size[0], c.padding[0], c.bias) for c in convs] == [
        (32, 8, 4, None),
        (64, 8, 4, None),
        (128, 8, 4, None),
    ]
    assert [m.p for m in encoder.modules() if isinstance(m, torch.nn.Dropout)] == [0.35]
    assert series_spec(3, 100, "tstcc") == TSTCCEncoderSpec(3)


@pytest.mark.parametrize("pooling", ["mean", "max"])
def test_export_round_trip_preprocess_and_padding_gives_the_series_alone(tmp_path, pooling):
    torch.manual_seed(0)
    encoder = build_encoder(TSTCCEncoderSpec(3, pooling=pooling)).eval()
    save_encoder(encoder, tmp_path)
    assert json.loads((tmp_path / "encoder.json").read_text())["kind"] == "tstcc"
    loaded = load(tmp_path)
    assert loaded.spec == encoder.spec == TSTCCEncoderSpec.from_dict(encoder.spec.to_dict())
    x = loaded.preprocess(np.random.default_rng(0).normal(size=(4, 3, 60)))
    assert torch.allclose(encoder(x), loaded(x)) and loaded(x).shape == (4, 128)
    with pytest.raises(SelfsupError, match="series must be"):
        loaded.preprocess(np.zeros((2, 60)))
    # padding changes nothing: every length from 1 to 59 steps, padded to 60 = the series alone
    for n in (1, 2, 7, 33, 40, 59):
        mask = torch.ones(2, 60, dtype=torch.bool)
        mask[0, n:] = False
        padded = x[:2].clone()
        padded[0, :, n:] = 5.0  # whatever the padding holds
        full = loaded({"series": padded, "mask": mask})
        assert torch.allclose(full[0], loaded(x[:1, :, :n])[0], atol=1e-5), n
        assert torch.allclose(full[1], loaded(x[1:2])[0], atol=1e-5)
    with pytest.raises(SelfsupError, match="pooling"):
        TSTCCEncoderSpec(1, pooling="last")


def test_augmentations_are_the_references():
    """Weak: x times N(2, 1.1^2) per step (shared by channels); strong: 1..7 segments cut at
    random points, permuted, then jitter 0.8 (HAR's config)."""
    torch.manual_seed(0)
    x = torch.ones(4000, 2, 30)
    factor = step_scaling(x, sigma=1.1, mean=2.0)
    assert torch.equal(factor[:, 0], factor[:, 1])
    assert abs(factor.mean() - 2) < 0.02 and abs(factor[:, 0].std() - 1.1) < 0.02
    steps = torch.arange(30.0).expand(4000, 2, 30)
    perm = permute_segments(steps, max_segments=8)
    assert torch.equal(perm.sort(2).values, steps) and torch.equal(perm[:, 0], perm[:, 1])
    # segments: runs of consecutive steps; the reference draws 1..7 of them, uniformly
    runs = 1 + (perm[:, 0].diff(dim=1) != 1).sum(1)
    assert runs.max() <= 7 and (runs == 1).float().mean() > 1 / 7  # n = 1, or back in order
    weak, strong = SeriesAugment("ts-tcc-weak"), SeriesAugment("ts-tcc-strong")
    assert [op for op, _, _ in weak.recipe.steps] == ["step_scaling"]
    assert [op for op, _, _ in strong.recipe.steps] == ["permutation", "jitter"]
    assert strong.recipe.steps[1][2] == {"sigma": 0.8}


def make_method(**overrides) -> TSTCC:
    torch.manual_seed(0)
    return TSTCC(SPEC, TSTCCConfig(**(SMALL | overrides)), augment=None)


def test_temporal_step_equals_the_reference_slicing_and_honours_lengths():
    """The context from masked attention over all steps equals the reference's transformer on
    z[:, :t + 1]; t = floor(u (length - K)) per series; targets past a series' length are left
    out; the loss is the plain reference's on those predictions and targets."""
    method = make_method(timesteps=3).eval()
    g = torch.Generator().manual_seed(2)
    za, zb = torch.randn(4, 9, 16, generator=g), torch.randn(4, 9, 16, generator=g)
    length = torch.tensor([9, 9, 5, 3])
    loss, c = method.temporal(za, zb, length, 3, 0.99)
    preds, targets, valid = [], [], []
    for i in range(4):
        t = int(0.99 * max(int(length[i]) - 3, 1))
        assert t < max(int(length[i]) - 3, 1)
        ctx = method.context(za[i : i + 1, : t + 1], torch.ones(1, t + 1, dtype=torch.bool))
        assert torch.allclose(ctx, c[i : i + 1], atol=1e-5)
        preds.append(torch.stack([w(ctx[0]) for w in method.predictors]))
        targets.append(zb[i, [min(t + k, 8) for k in (1, 2, 3)]])
        valid.append(torch.tensor([t + k < length[i] for k in (1, 2, 3)]))
    ref = reference_tc(torch.stack(preds, 1), torch.stack(targets, 1), torch.stack(valid, 1))
    # t = 5, 5, 1, 0: all three targets valid but the last series' third (3 latents)
    assert torch.stack(valid, 1).sum() == 11 and not valid[3][2]
    assert torch.allclose(loss, ref, atol=1e-5)


def test_loss_is_tc_both_ways_plus_contextual_and_the_augment_flag_is_refused():
    method = make_method()
    g = torch.Generator().manual_seed(1)
    series, mask = torch.randn(6, 2, 40, generator=g), torch.ones(6, 40, dtype=torch.bool)
    mask[2, 25:] = False
    views = method.views({"series": series, "mask": mask})
    assert torch.equal(views[0]["mask"], mask) and not torch.equal(views[0]["series"], series)
    loss, figures = method.loss(views, {})
    assert set(figures) == {"temporal", "contextual"}
    assert torch.allclose(loss, figures["temporal"] + 0.7 * figures["contextual"])
    loss.backward()
    assert all(p.grad.isfinite().all() for p in method.parameters() if p.grad is not None)
    with pytest.raises(SelfsupError, match=r"method\.weak=series-warp"):
        TSTCC(SPEC, TSTCCConfig(**SMALL), augment=SeriesAugment("series-warp"))
    with pytest.raises(SelfsupError, match="unknown series recipe"):
        TSTCC.make_config({"weak": "nope"})


def fixed_views():
    g = torch.Generator().manual_seed(1)
    mask = torch.ones(8, 40, dtype=torch.bool)
    mask[3, 30:] = False
    x1, x2 = torch.randn(8, 2, 40, generator=g), torch.randn(8, 2, 40, generator=g)
    return {"series": x1, "mask": mask}, {"series": x2, "mask": mask}


def make_eval_method() -> TSTCC:
    """Eval mode: BatchNorm on running statistics and no dropout, so that the halves on two
    ranks change nothing but what the method gathers (both losses over the global batch)."""
    return make_method().eval()


def half_views(rank: int):
    sl = slice(rank * 4, (rank + 1) * 4)
    return [{k: v[sl] for k, v in view.items()} for view in fixed_views()], {}


@pytest.mark.timeout(120)
def test_two_gloo_processes_match_one_process_gradients():
    grads = run_two_processes(make_eval_method, half_views)
    method = make_eval_method()
    loss, _ = method.loss(list(fixed_views()), {})
    loss.backward()
    want = {n: p.grad for n, p in method.named_parameters() if p.grad is not None}
    assert_gradients_close(grads, want)


def test_resume_is_exact(tmp_path, monkeypatch):
    g = np.random.default_rng(0)
    file = tmp_path / "toy.npz"
    np.savez(file, series=g.normal(size=(1437, 1, 24)).astype(np.float32))
    state = assert_resume_exact(
        tmp_path,
        monkeypatch,
        {
            "data.source": f"series:{file}",
            "method.name": "tstcc",
            "method.hidden_dim": 8,
            "method.heads": 2,
            "method.mlp_dim": 8,
            "method.timesteps": 2,
        },
    )
    assert state["draws"] == 2 * (1437 // 128)


def test_end_to_end_run_uses_its_backbone_and_loads(tmp_path):
    data = write_series_npz(tmp_path / "motifs.npz", n_train=64, n_test=32, length=64)
    cfg = selfsup.make_config(
        **(
            FAST
            | {
                "data.source": f"series:{data}",
                "method.name": "tstcc",
                "train.epochs": 2,
                "train.batch_size": 32,
                "eval.protocols": "knn",
                "eval.knn_k": 5,
            }
        )
    )
    result = selfsup.pretrain(cfg, tmp_path / "run")
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["config"]["model"]["backbone"] == "tstcc"
    assert result.evaluation["selfsup"]["knn_top1"] > 0
    encoder = selfsup.load(tmp_path / "run")
    assert encoder.kind == "tstcc" and encoder(torch.randn(3, 1, 64)).shape == (3, 128)
    # a kind of its own that serves series: `selfsup embed` takes the run's series data
    assert main(["embed", str(tmp_path / "run"), "--out", str(tmp_path / "e.npy")]) == 0
    assert np.load(tmp_path / "e.npy").shape == (96, 128)


@pytest.mark.slow
def test_motifs_learned_beats_random(tmp_path):
    """The motif set (tests/series/synthetic_series.py: raw kNN about 0.45): after training,
    kNN and the linear probe beat the random encoder of the same seed."""
    data = write_series_npz(tmp_path / "motifs.npz")
    cfg = selfsup.make_config(
        **(
            FAST
            | {
                "data.source": f"series:{data}",
                "method.name": "tstcc",
                "train.epochs": 40,
                "train.batch_size": 32,
                "eval.protocols": "knn,linear",
                "eval.knn_k": 5,
            }
        )
    )
    ev = selfsup.pretrain(cfg, tmp_path / "run").evaluation
    print(ev)
    assert ev["selfsup"]["knn_top1"] > ev["random"]["knn_top1"] + 0.05
    assert ev["selfsup"]["linear_top1"] > ev["random"]["linear_top1"]


def test_nt_xent_is_the_references_contextual_loss():
    """The reference's NTXentLoss (cosine, 2N anchors, the positive among the 2N - 1 others,
    summed then divided by 2N) is `nt_xent`."""
    g = torch.Generator().manual_seed(0)
    zi, zj = torch.randn(5, 4, generator=g), torch.randn(5, 4, generator=g)
    r = torch.cat([zj, zi])
    sim = F.cosine_similarity(r[:, None], r[None], dim=-1) / 0.2
    n = 5
    total = 0.0
    for a in range(2 * n):
        others = [b for b in range(2 * n) if b != a]
        pos = (a + n) % (2 * n)
        total = total - (sim[a, pos] - torch.logsumexp(sim[a, others], 0))
    assert torch.allclose(nt_xent(zi, zj, 0.2), total / (2 * n), atol=1e-5)


def test_other_series_methods_read_the_series_through_the_tstcc_backbone():
    """The kind `tstcc` serves the series modality: SimCLR's main field is "series"."""
    from selfsup.methods.simclr import SimCLR, SimCLRConfig

    torch.manual_seed(0)
    cfg = SimCLRConfig(proj_hidden_dim=8, proj_dim=4)
    method = SimCLR(TSTCCEncoderSpec(1), cfg, SeriesAugment("series-default"))
    batch = {"series": torch.randn(4, 1, 32)}
    loss, _ = method.loss(method.views(batch), batch)
    assert method.main_field == "series" and loss.isfinite()
