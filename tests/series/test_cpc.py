"""CPC: the loss against a plain loop, negatives and accuracies on a toy whose answer is known,
1-vs-2 gloo gradients, exact resume, convergence on GunPoint (slow)."""

import pytest
import torch
from method_harness import FAST, assert_resume_exact, run_two_processes

import selfsup
from selfsup.errors import SelfsupError
from selfsup.losses import cpc_accuracy, cpc_info_nce
from selfsup.losses.predictive import sample_negatives
from selfsup.methods.cpc import CPC, CPCConfig
from selfsup.models.series import SeriesEncoderSpec

SPEC = SeriesEncoderSpec(2, (3, 3), (1, 2), 8, 6)


def reference_loss(pred, target, valid, negatives):
    """Plain loops: for each valid anchor, -log softmax of its own target among candidates."""
    b, t, _ = pred.shape
    total, count = 0.0, 0
    for i in range(b):
        for s in range(t):
            if not valid[i, s]:
                continue
            if negatives == "all":
                cands = [(j, u) for j in range(b) for u in range(t)]
            elif negatives == "batch":
                cands = [(j, s) for j in range(b)]
            else:
                cands = [(i, u) for u in range(t)]
            cands = [(j, u) for j, u in cands if valid[j, u]]
            scores = torch.stack([pred[i, s] @ target[j, u] for j, u in cands])
            pos = cands.index((i, s))
            total = total - (scores[pos] - torch.logsumexp(scores, 0))
            count += 1
    return total / count


@pytest.mark.parametrize("negatives", ["all", "batch", "same"])
def test_loss_matches_plain_reference_values_and_gradients(negatives):
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(3, 5, 4, generator=g, requires_grad=True)
    target = torch.randn(3, 5, 4, generator=g, requires_grad=True)
    valid = torch.ones(3, 5, dtype=torch.bool)
    valid[1, 3:] = False  # a padded sequence
    ours = cpc_info_nce(pred, target, valid, negatives)
    ref = reference_loss(pred, target, valid, negatives)
    assert torch.allclose(ours, ref, atol=1e-5)
    ga = torch.autograd.grad(ours, (pred, target))
    gb = torch.autograd.grad(ref, (pred, target))
    for a, b in zip(ga, gb, strict=True):
        assert torch.allclose(a, b, atol=1e-5)


def reference_sampled_loss(pred, target, valid, negatives, indices):
    """Plain loops: each valid anchor against its positive and the valid draws of its group
    (its sequence, or its step for "batch") that are not its positive."""
    b, t, _ = pred.shape
    total, count = 0.0, 0
    for i in range(b):
        for s in range(t):
            if not valid[i, s]:
                continue
            drawn = [divmod(int(j), t) for j in indices[s if negatives == "batch" else i]]
            cands = [(i, s)] + [c for c in drawn if c != (i, s)]
            scores = torch.stack([pred[i, s] @ target[j, u] for j, u in cands if valid[j, u]])
            total = total - (scores[0] - torch.logsumexp(scores, 0))
            count += 1
    return total / count


@pytest.mark.parametrize("negatives", ["all", "batch", "same"])
def test_sampled_negatives_match_plain_reference_values_and_gradients(negatives):
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(4, 6, 3, generator=g, requires_grad=True)
    target = torch.randn(4, 6, 3, generator=g, requires_grad=True)
    valid = torch.ones(4, 6, dtype=torch.bool)
    valid[1, 4:] = False
    indices = sample_negatives((4, 6), negatives, 2, generator=g)
    assert indices.shape == (6 if negatives == "batch" else 4, 2)
    ours = cpc_info_nce(pred, target, valid, negatives, indices)
    ref = reference_sampled_loss(pred, target, valid, negatives, indices)
    assert torch.allclose(ours, ref, atol=1e-5)
    ga = torch.autograd.grad(ours, (pred, target))
    gb = torch.autograd.grad(ref, (pred, target))
    for a, b in zip(ga, gb, strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    # distinct codes, predictions 20 x their own: the positive always wins over the draws
    code = torch.eye(24).reshape(4, 6, 24)
    perfect = cpc_accuracy(20 * code, code, valid, negatives, indices)
    assert perfect == 1.0


@pytest.mark.parametrize("negatives", ["all", "batch", "same"])
def test_sample_negatives_draws_from_each_groups_set(negatives):
    b, t = 5, 7
    idx = sample_negatives((b, t), negatives, 3, generator=torch.Generator().manual_seed(0))
    rows, steps = idx // t, idx % t
    if negatives == "batch":
        assert idx.shape == (t, 3) and (steps == torch.arange(t)[:, None]).all()
    else:
        assert idx.shape == (b, 3)
    if negatives == "same":
        assert (rows == torch.arange(b)[:, None]).all()
    # over many draws every member of the group's set comes up: uniform over the set
    g = torch.Generator().manual_seed(1)
    many = torch.cat([sample_negatives((b, t), negatives, 3, generator=g)[0] for _ in range(300)])
    size = {"all": b * t, "batch": b, "same": t}[negatives]
    assert many.unique().numel() == size
    # a set of at most N negatives is used whole (exhaustive); N = 0 means every candidate
    assert sample_negatives((b, t), negatives, size - 1) is None
    assert sample_negatives((b, t), negatives, 0) is None


def test_num_negatives_bounds_the_candidates_of_the_method_step():
    """With N drawn negatives an untrained model's contrastive accuracy is near 1 / (N + 1),
    not 1 / (B T): the step scores N + 1 candidates per anchor."""
    torch.manual_seed(0)
    spec = SeriesEncoderSpec(1, (1,), (1,), 16, 16)
    method = CPC(spec, CPCConfig(prediction_steps=1, num_negatives=1), augment=None)
    series = torch.randn(64, 1, 33)
    _, figures = method.loss(
        method.views({"series": series, "mask": torch.ones(64, 33).bool()}), {}
    )
    assert 0.3 < figures["cpc_acc_k1"] < 0.8  # 2 candidates; exhaustive would be 2048
    with pytest.raises(ValueError, match="num_negatives"):
        CPCConfig(num_negatives=-1)


@pytest.mark.parametrize("negatives", ["all", "batch", "same"])
def test_method_loss_is_the_mean_over_steps_with_a_target_with_no_host_sync(negatives):
    """Padded so that steps k = 3..5 have no valid target in the batch: the loss is the mean of
    the per-step losses of k = 1, 2 only (as when such steps were skipped on the host), their
    accuracies are NaN, and every gradient is finite."""
    torch.manual_seed(0)
    cfg = CPCConfig(prediction_steps=12, negatives=negatives, num_negatives=0)
    method = CPC(SPEC, cfg, augment=None)
    series, mask = torch.randn(4, 2, 16), torch.ones(4, 16, dtype=torch.bool)
    mask[:, 10:] = False
    mask[1, 7:] = False  # valid latents: 3 of 6 (2 in sequence 1)
    loss, figures = method.loss(method.views({"series": series, "mask": mask}), {})
    z, valid = method.encoder.latents({"series": series, "mask": mask})
    c = method.encoder.context(z)
    steps = [
        reference_loss(method.predictors[k - 1](c[:, :-k]), z[:, k:], valid[:, k:], negatives)
        for k in range(1, 6)
        if valid[:, k:].any()
    ]
    assert len(steps) == 2 and torch.allclose(loss, torch.stack(steps).mean(), atol=1e-6)
    assert sorted(figures) == [f"cpc_acc_k{k}" for k in range(1, 6)]
    assert all(figures[f"cpc_acc_k{k}"].isnan() for k in (3, 4, 5))
    loss.backward()
    assert all(p.grad.isfinite().all() for p in method.parameters() if p.grad is not None)


def test_perfect_predictor_scores_one_and_random_gives_chance():
    # targets: distinct one-hot codes; predictions = 20 x their own target: always found
    b, t = 4, 6
    target = torch.eye(b * t).reshape(b, t, b * t)
    for negatives in ("all", "batch", "same"):
        assert cpc_accuracy(20 * target, target, None, negatives) == 1.0
        assert cpc_info_nce(20 * target, target, None, negatives) < 1e-6
    # random predictions: accuracy near 1 / (number of candidates)
    g = torch.Generator().manual_seed(0)
    pred, tgt = torch.randn(64, 8, 16, generator=g), torch.randn(64, 8, 16, generator=g)
    assert abs(cpc_accuracy(pred, tgt, None, "same") - 1 / 8) < 0.05
    assert abs(cpc_accuracy(pred, tgt, None, "batch") - 1 / 64) < 0.03
    with pytest.raises(SelfsupError, match="negatives"):
        cpc_info_nce(pred, tgt, None, "bogus")


def test_cpc_learns_a_periodic_signal_above_chance():
    """Sines of random phase and frequency: the future is predictable from the past, so a few
    steps of Adam lift the step-1 accuracy well above chance (1 / candidates)."""
    torch.manual_seed(0)
    spec = SeriesEncoderSpec(1, (3, 3), (1, 1), 16, 16)
    method = CPC(spec, CPCConfig(prediction_steps=2, negatives="same"), augment=None)
    t = torch.arange(40.0)
    opt = torch.optim.Adam(method.parameters(), lr=1e-2)

    def batch():
        phase, freq = torch.rand(16, 1) * 6.28, 0.2 + 0.3 * torch.rand(16, 1)
        x = torch.sin(freq * t + phase)[:, None]
        return {"series": x, "mask": torch.ones(16, 40, dtype=torch.bool)}

    _, figures = method.loss(method.views(batch()), {})
    start = figures["cpc_acc_k1"].item()
    for _ in range(60):
        loss, figures = method.loss(method.views(b := batch()), b)
        opt.zero_grad()
        loss.backward()
        opt.step()
    chance = 1 / 35  # 36 latent steps, 35 anchors and candidates for k = 1
    assert figures["cpc_acc_k1"].item() > max(start, chance) + 0.3
    assert set(figures) == {"cpc_acc_k1", "cpc_acc_k2"}


def make_method() -> CPC:
    torch.manual_seed(0)
    return CPC(SPEC, CPCConfig(prediction_steps=3), augment=None)


def fixed_series() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    mask = torch.ones(8, 20, dtype=torch.bool)
    mask[2, 14:] = False
    return torch.randn(8, 2, 20, generator=g), mask


def half_inputs(rank: int):
    x, mask = fixed_series()
    sl = slice(rank * 4, (rank + 1) * 4)
    return [{"series": x[sl], "mask": mask[sl]}], {}


@pytest.mark.timeout(120)
def test_two_gloo_processes_match_one_process_gradients():
    grads = run_two_processes(make_method, half_inputs)
    method = make_method()
    x, mask = fixed_series()
    # one process on the whole batch: no statistic mixes samples, so halves need no care
    loss, _ = method.loss([{"series": x, "mask": mask}], {})
    loss.backward()
    for name, p in method.named_parameters():
        assert torch.allclose(grads[name], p.grad, atol=1e-5, rtol=1e-4), name


def test_resume_is_exact(tmp_path, monkeypatch, capsys):
    import numpy as np

    g = np.random.default_rng(0)
    file = tmp_path / "toy.npz"
    np.savez(file, series=g.normal(size=(1437, 1, 16)).astype(np.float32))
    assert_resume_exact(
        tmp_path,
        monkeypatch,
        {
            "data.source": f"series:{file}",
            "method.name": "cpc",
            "method.prediction_steps": 2,
            "method.negatives": "same",
            "method.num_negatives": 3,  # drawn from 9 or 8 steps: the sampling RNG resumes
            "optim.name": "adamw",
            "optim.lr": 1e-3,
        },
    )


GUNPOINT = {
    "data.source": "ucr:GunPoint",
    "method.name": "cpc",
    "train.batch_size": 25,
    "optim.name": "adamw",
    "optim.lr": 5e-3,
    "eval.protocols": "knn",
    "eval.knn_k": 5,
}


@pytest.mark.slow
def test_gunpoint_knn_beats_random(tmp_path):
    """Mean over seeds 0 and 1: with 50 training series one seed's kNN moves by several points
    (measured: seed 0 learned 0.807 vs random 0.760, seed 1 0.833 vs 0.687)."""
    learned, random = [], []
    for seed in (0, 1):
        cfg = selfsup.make_config(**(FAST | GUNPOINT | {"train.epochs": 40, "train.seed": seed}))
        result = selfsup.pretrain(cfg, tmp_path / f"run{seed}")
        learned.append(result.evaluation["selfsup"]["knn_top1"])
        random.append(result.evaluation["random"]["knn_top1"])
    print(f"GunPoint kNN: learned {learned}, random {random}")
    assert sum(learned) / 2 > sum(random) / 2 + 0.05


@pytest.mark.parametrize("negatives", ["all", "batch", "same"])
def test_sampled_step_never_waits_for_the_device(negatives):
    """On the `meta` device every read of a value on the host raises: drawing and scoring the
    negatives reads none."""
    method = CPC(SPEC, CPCConfig(negatives=negatives, num_negatives=2), augment=None).to("meta")
    mask = torch.ones(6, 40, dtype=torch.bool)
    mask[1, 20:] = False
    batch = {"series": torch.randn(6, 2, 40).to("meta"), "mask": mask.to("meta")}
    loss, _ = method.loss(method.views(batch), batch)
    assert loss.device.type == "meta" and loss.shape == ()
