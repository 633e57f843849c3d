"""TS2Vec: the losses against plain loops (values and gradients), the encoder against the
reference's layout, padding that never changes a representation, the reference's crops within
each series' valid length, the SWA export, 1-vs-2 gloo gradients, exact resume, an end-to-end
run with `selfsup.load`, and convergence on a generated series set (slow)."""

import json

import numpy as np
import pytest
import torch
from method_harness import FAST, assert_config_resumes_exactly, run_two_processes, torch_threads
from synthetic_series import write_series_npz

import selfsup
from selfsup.cli import main
from selfsup.errors import SelfsupError
from selfsup.losses import (
    hierarchical_contrastive_loss,
    instance_contrastive_loss,
    temporal_contrastive_loss,
)
from selfsup.methods.ts2vec import TS2Vec, TS2VecConfig, crop_pattern
from selfsup.models.series import SeriesEncoderSpec, series_spec
from selfsup.models.ts2vec import Ts2VecEncoder, Ts2VecSpec

SMALL = Ts2VecSpec(2, hidden_dims=8, output_dims=12, depth=3)


def plain_nll(candidates: list[torch.Tensor], anchor: torch.Tensor, positive: int) -> torch.Tensor:
    scores = torch.stack([anchor @ c for c in candidates])
    return -(scores[positive] - torch.logsumexp(scores, 0))


def plain_instance(z1, z2):
    """At each step t, z1[i, t] against every other representation of step t (both views)."""
    b, t, _ = z1.shape
    if b == 1:
        return torch.tensor(0.0)
    total = []
    for s in range(t):
        reps = [z1[i, s] for i in range(b)] + [z2[i, s] for i in range(b)]
        for r in range(2 * b):
            others = [k for k in range(2 * b) if k != r]
            positive = others.index((r + b) % (2 * b))
            total.append(plain_nll([reps[k] for k in others], reps[r], positive))
    return torch.stack(total).mean()


def plain_temporal(z1, z2):
    """In series i, z1[i, t] against every other step of both views of series i."""
    b, t, _ = z1.shape
    if t == 1:
        return torch.tensor(0.0)
    total = []
    for i in range(b):
        reps = [z1[i, s] for s in range(t)] + [z2[i, s] for s in range(t)]
        for r in range(2 * t):
            others = [k for k in range(2 * t) if k != r]
            positive = others.index((r + t) % (2 * t))
            total.append(plain_nll([reps[k] for k in others], reps[r], positive))
    return torch.stack(total).mean()


def plain_halve(z):
    """Max over pairs of steps (t, t+1), an odd last step dropped."""
    t = z.shape[1] // 2
    return torch.stack([torch.maximum(z[:, 2 * s], z[:, 2 * s + 1]) for s in range(t)], 1)


def plain_hierarchical(z1, z2, alpha, temporal_unit):
    terms = []
    scale = 0
    while z1.shape[1] > 1:
        term = alpha * plain_instance(z1, z2)
        if scale >= temporal_unit:
            term = term + (1 - alpha) * plain_temporal(z1, z2)
        terms.append(term)
        scale += 1
        z1, z2 = plain_halve(z1), plain_halve(z2)
    terms.append(alpha * plain_instance(z1, z2))
    return torch.stack(terms).mean()


@pytest.mark.parametrize(
    ("b", "t", "alpha", "unit"), [(3, 7, 0.5, 0), (4, 6, 0.5, 1), (1, 5, 0.3, 0), (2, 1, 0.5, 0)]
)
def test_losses_match_plain_loops_values_and_gradients(b, t, alpha, unit):
    g = torch.Generator().manual_seed(b * 10 + t)
    z1 = torch.randn(b, t, 5, generator=g, requires_grad=True)
    z2 = torch.randn(b, t, 5, generator=g, requires_grad=True)
    pairs = [
        (instance_contrastive_loss(z1, z2), plain_instance(z1, z2)),
        (temporal_contrastive_loss(z1, z2), plain_temporal(z1, z2)),
        (
            hierarchical_contrastive_loss(z1, z2, alpha, unit),
            plain_hierarchical(z1, z2, alpha, unit),
        ),
    ]
    for ours, ref in pairs:
        assert torch.allclose(ours, ref, atol=1e-5), (ours, ref)
        if ref.requires_grad:
            ga = torch.autograd.grad(ours, (z1, z2), allow_unused=True)
            gb = torch.autograd.grad(ref, (z1, z2))
            for a, c in zip(ga, gb, strict=True):
                assert torch.allclose(a, c, atol=1e-5)


def test_encoder_has_the_reference_layout():
    """Linear(C, 64), 10 blocks of 64 channels with dilation 2^i, a last block to 320 with a 1x1
    residual projection: the reference TSEncoder's parameter count for C = 1."""
    enc = Ts2VecEncoder(series_spec(1, 50, "ts2vec"))
    convs = [
        m for m in enc.blocks.modules() if isinstance(m, torch.nn.Conv1d) and m.kernel_size == (3,)
    ]
    assert [c.dilation[0] for c in convs[::2]] == [2**i for i in range(11)]
    block = 2 * (64 * 64 * 3 + 64)
    last = (64 * 320 * 3 + 320) + (320 * 320 * 3 + 320) + (64 * 320 + 320)
    assert sum(p.numel() for p in enc.parameters()) == (64 + 64) + 10 * block + last
    enc.eval()
    reps, valid = enc.timestamps(torch.randn(3, 1, 37))
    assert reps.shape == (3, 37, 320) and valid.all()


def test_padding_is_masked_input_and_never_wins_the_max_pool():
    """Padded steps are zero input whatever they hold (a value, NaN: as the reference's missing
    steps) and the series vector is the maximum over the valid steps only."""
    torch.manual_seed(0)
    enc = Ts2VecEncoder(SMALL).eval()
    x = torch.randn(3, 2, 20)
    mask = torch.ones(3, 20, dtype=torch.bool)
    mask[1, 11:] = False
    zeros, huge, nan = x.clone(), x.clone(), x.clone()
    zeros[1, :, 11:], huge[1, :, 11:], nan[1, :, 11:] = 0.0, 1e6, float("nan")
    reps, valid = enc.timestamps({"series": zeros, "mask": mask})
    assert valid.tolist() == mask.tolist()
    assert torch.equal(reps, enc.timestamps({"series": huge, "mask": mask})[0])
    assert torch.equal(reps, enc.timestamps(nan)[0])
    vector = enc({"series": huge, "mask": mask})
    assert torch.equal(vector[1], reps[1, :11].amax(0))
    assert torch.equal(vector[0], reps[0].amax(0))
    # the padded steps hold larger values than every valid one: still never the maximum
    assert torch.equal(enc.pool(reps.masked_fill(~mask[..., None], 1e9), mask), vector)


def test_timestamp_masking_and_dropout_only_while_training():
    torch.manual_seed(0)
    enc = Ts2VecEncoder(SMALL)
    x = torch.randn(4, 2, 30)
    enc.eval()
    assert torch.equal(enc(x), enc(x))
    enc.train()
    assert not torch.allclose(enc.timestamps(x)[0], enc.timestamps(x)[0])


def test_crop_pattern_is_the_references():
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        eleft, left, right, eright = crop_pattern(10, 0, g)
        assert 0 <= eleft <= left < right <= eright <= 10 and right - left >= 2
    with pytest.raises(ValueError):
        TS2VecConfig(max_train_length=1)


def make_method(spec=SMALL) -> TS2Vec:
    torch.manual_seed(0)
    return TS2Vec(spec, TS2VecConfig(), augment=None)


def test_crops_overlap_and_stay_within_each_series_valid_length():
    method = make_method()
    torch.manual_seed(1)
    x = torch.randn(6, 2, 40)
    mask = torch.ones(6, 40, dtype=torch.bool)
    mask[2, 30:] = False
    normalised = method.encoder.normalise(x, mask)
    for step in range(30):
        method.set_counter("draws", step)
        a, b = method.views({"series": x, "mask": mask})
        n = a["overlap"]
        assert a["overlap"] == b["overlap"] and n >= 2
        assert torch.equal(a["series"][..., -n:], b["series"][..., :n])
        width_a, width_b = a["series"].shape[2], b["series"].shape[2]
        if width_a + width_b - n <= 30:  # the pattern fits series 2's 30 valid steps
            assert a["mask"].all() and b["mask"].all()
        # every crop is a contiguous window of the normalised series
        for view in (a, b):
            for i in range(6):
                found = [
                    s
                    for s in range(40 - view["series"].shape[2] + 1)
                    if torch.equal(
                        normalised[i, :, s : s + view["series"].shape[2]], view["series"][i]
                    )
                ]
                assert found, (step, i)


def test_method_refuses_other_encoders_and_too_short_series():
    with pytest.raises(SelfsupError, match=r"model\.backbone"):
        TS2Vec(SeriesEncoderSpec(2, (3,), (1,), 8, 6), TS2VecConfig(), augment=None)
    method = make_method()
    with pytest.raises(SelfsupError, match="too short"):
        method.views({"series": torch.randn(2, 2, 1), "mask": torch.ones(2, 1, dtype=torch.bool)})


def test_exported_encoder_is_the_average_over_every_step():
    """AveragedModel's arithmetic: the export is the mean of the initial weights and the
    weights after each step."""
    method = make_method()
    seen = [[p.detach().clone() for p in method.encoder.parameters()]]
    for k in range(3):
        with torch.no_grad():
            for p in method.encoder.parameters():
                p.add_(torch.randn_like(p) * (k + 1))
        seen.append([p.detach().clone() for p in method.encoder.parameters()])
        method.after_step((k + 1) / 3)
    assert method.exported() is method.averaged
    for i, p in enumerate(method.exported().parameters()):
        assert torch.allclose(p, torch.stack([s[i] for s in seen]).mean(0), atol=1e-6)
    assert method.counter("steps_averaged") == 4


def deterministic_method() -> TS2Vec:
    return make_method(
        Ts2VecSpec(2, hidden_dims=8, output_dims=12, depth=3, mask_p=0.0, dropout=0.0)
    )


def fixed_views() -> list[dict]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(8, 2, 24, generator=g)
    mask = torch.ones(8, 24, dtype=torch.bool)
    return [
        {"series": x[..., :14], "mask": mask[:, :14], "overlap": 9},
        {"series": x[..., 5:20], "mask": mask[:, 5:20], "overlap": 9},
    ]


def half_inputs(rank: int):
    sl = slice(rank * 4, (rank + 1) * 4)
    return [
        {k: (v[sl] if torch.is_tensor(v) else v) for k, v in view.items()} for view in fixed_views()
    ], {}


@pytest.mark.timeout(120)
def test_two_gloo_processes_match_one_process_gradients():
    """The instance-wise term contrasts against the global batch: two processes of four series
    give one process's gradients on all eight."""
    grads = run_two_processes(deterministic_method, half_inputs)
    method = deterministic_method()
    loss, _ = method.loss(fixed_views(), {})
    loss.backward()
    want = {n: p.grad for n, p in method.named_parameters() if p.grad is not None}
    assert want and grads.keys() == want.keys()
    for name, g in want.items():
        assert torch.allclose(grads[name], g, atol=1e-5, rtol=1e-4), name


RUN = FAST | {"method.name": "ts2vec", "train.batch_size": 8}


def test_resume_is_exact_and_the_average_is_exported(tmp_path, monkeypatch):
    file = write_series_npz(tmp_path / "toy.npz", n_train=40, n_test=8, length=24)
    cfg = selfsup.make_config(**(RUN | {"data.source": f"series:{file}"}))
    state = assert_config_resumes_exactly(tmp_path, monkeypatch, cfg, interrupt_call=7)
    assert state["steps_averaged"] == 1 + 2 * 5  # 40 series at batch 8: 5 steps an epoch
    saved = json.loads((tmp_path / "straight" / "encoder.json").read_text())
    assert saved["kind"] == "ts2vec"
    encoder = selfsup.load(tmp_path / "straight")
    for name, p in encoder.state_dict().items():
        assert torch.equal(p, state[f"averaged.{name}"]), name


def test_end_to_end_run_loads_and_embeds(tmp_path):
    file = write_series_npz(tmp_path / "toy.npz", n_train=32, n_test=16, length=40)
    cfg = selfsup.make_config(
        **(RUN | {"data.source": f"series:{file}", "eval.protocols": "knn", "eval.knn_k": 5})
    )
    result = selfsup.pretrain(cfg, tmp_path / "run")
    assert (
        json.loads((tmp_path / "run" / "config.json").read_text())["config"]["model"]["backbone"]
        == "ts2vec"
    )
    assert np.isfinite(result.evaluation["selfsup"]["knn_top1"])
    encoder = selfsup.load(tmp_path / "run")
    series = np.load(file)["test_series"]
    vectors = selfsup.embed(encoder, series)
    assert vectors.shape == (16, 320) and np.isfinite(vectors).all()
    with torch.no_grad():
        direct = encoder.eval()(torch.from_numpy(series)).numpy()
    assert np.allclose(vectors, direct, atol=1e-5)
    # `selfsup embed` takes series data for this encoder of kind ts2vec (its `modality`)
    out = tmp_path / "emb.npy"
    assert main(["embed", str(tmp_path / "run"), "--out", str(out), "--split", "test"]) == 0
    assert np.allclose(np.load(out), vectors, atol=1e-5)


def test_simclr_trains_the_ts2vec_encoder_on_series():
    """A method reading the modality's main field ("series") runs on the ts2vec encoder."""
    from selfsup.augment.series import SeriesAugment
    from selfsup.methods import get_method

    cls = get_method("simclr")
    method = cls(series_spec(2, 40, "ts2vec"), cls.make_config({}), SeriesAugment("series-default"))
    batch = {"series": torch.randn(4, 2, 40), "mask": torch.ones(4, 40, dtype=torch.bool)}
    loss, _ = method.loss(method.views(batch), batch)
    assert loss.isfinite()


@pytest.mark.slow
def test_ts2vec_beats_random_encoder_and_raw_signal(tmp_path):
    """The generated set (motifs at random positions: raw kNN about 0.45, DTW 1-NN 0.79) at the
    reference's budget: 200 steps at batch 8 (160 series: 20 steps an epoch, 10 epochs).
    Measured (seed 0, one thread): kNN 0.750 vs random 0.635 vs raw 0.505; linear 0.870 vs
    random 0.855 vs raw 0.370. A random dilated CNN max-pooled over time is already a strong
    feature map for a linear probe, so the linear figure is only required not to fall below it."""
    file = write_series_npz(tmp_path / "synth.npz")
    cfg = selfsup.make_config(
        **(
            RUN
            | {
                "data.source": f"series:{file}",
                "train.epochs": 10,
                "eval.protocols": "knn,linear",
                "eval.knn_k": 5,
            }
        )
    )
    with torch_threads(1):
        ev = selfsup.pretrain(cfg, tmp_path / "run").evaluation
    rows = ("selfsup", "random", "raw_signal")
    print({r: (ev[r]["knn_top1"], ev[r]["linear_top1"]) for r in rows})
    assert ev["selfsup"]["knn_top1"] > ev["random"]["knn_top1"] + 0.05
    assert ev["selfsup"]["knn_top1"] > ev["raw_signal"]["knn_top1"] + 0.1
    assert ev["selfsup"]["linear_top1"] > ev["raw_signal"]["linear_top1"] + 0.2
    assert ev["selfsup"]["linear_top1"] >= ev["random"]["linear_top1"] - 0.02
