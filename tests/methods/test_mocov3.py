"""MoCo v3: the loss against a plain reference, 1-vs-2 gloo processes (gathered keys), the
momentum schedule, exact resume and convergence on digits."""

import pytest
import torch
from method_harness import assert_resume_exact, digits_knn, run_two_processes_each_rank

from selfsup.losses import mocov3_contrastive
from selfsup.methods.mocov3 import MoCoV3, MoCoV3Config
from selfsup.models import ImageEncoderSpec

SPEC = ImageEncoderSpec("convnet", 3, 16, True, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
BATCH = 8


def reference_ctr(q, k, t, offset):
    total = 0.0
    for i in range(len(q)):
        sims = [torch.exp(torch.cosine_similarity(q[i], k[j], dim=0) / t) for j in range(len(k))]
        total = total - torch.log(sims[offset + i] / sum(sims))
    return 2 * t * total / len(q)


@pytest.mark.parametrize("offset", [0, 3])
def test_loss_matches_reference_values_and_gradients(offset):
    g = torch.Generator().manual_seed(0)
    q = torch.randn(3, 5, generator=g, requires_grad=True)
    k = torch.randn(7, 5, generator=g, requires_grad=True)
    got = mocov3_contrastive(q, k, 0.2, offset)
    want = reference_ctr(q, k, 0.2, offset)
    assert torch.allclose(got, want, atol=1e-6)
    for a, b in zip(
        torch.autograd.grad(got, [q, k]), torch.autograd.grad(want, [q, k]), strict=True
    ):
        assert torch.allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError):
        mocov3_contrastive(q, k, 0.2, 5)


def make_method() -> MoCoV3:
    torch.manual_seed(0)
    cfg = MoCoV3Config(proj_hidden_dim=16, proj_dim=8, pred_hidden_dim=16)
    return MoCoV3(SPEC, cfg, augment=None)


def test_projector_ends_in_batchnorm_without_affine_as_the_reference_build_mlp():
    """moco-v3's `_build_mlp(..., last_bn=True)`: the projector's last layer is followed by
    BatchNorm1d(affine=False), so in training its outputs have zero mean and unit variance
    per dimension; the predictor has no final BN."""
    method = make_method()
    last = method.projector[-1]
    assert isinstance(last, torch.nn.BatchNorm1d) and not last.affine
    assert not isinstance(method.predictor[-1], torch.nn.BatchNorm1d)
    z = method.projector(method.encoder(torch.rand(BATCH, 3, 16, 16)))
    assert torch.allclose(z.mean(0), torch.zeros(z.shape[1]), atol=1e-5)
    assert torch.allclose(z.var(0, unbiased=False), torch.ones(z.shape[1]), atol=1e-3)


def fixed_views():
    g = torch.Generator().manual_seed(1)
    return torch.rand(BATCH, 3, 16, 16, generator=g), torch.rand(BATCH, 3, 16, 16, generator=g)


def half_views(rank: int):
    v1, v2 = fixed_views()
    h = BATCH // 2
    return [v1[rank * h : (rank + 1) * h], v2[rank * h : (rank + 1) * h]], {}


def reference_gradients():
    """One process: each half through the networks alone (BatchNorm as on its rank), each
    query scored against the keys of the whole batch."""
    method = make_method()
    v1, v2 = fixed_views()
    h = BATCH // 2

    def run(net, v):
        return torch.cat([net(v[:h]), net(v[h:])])

    def query(x):
        return method.predictor(method.projector(method.encoder(x)))

    def key(x):
        return method.key_projector(method.key_encoder(x))

    q1, q2 = run(query, v1), run(query, v2)
    with torch.no_grad():
        k1, k2 = run(key, v1), run(key, v2)
    t = method.cfg.temperature
    (mocov3_contrastive(q1, k2, t) + mocov3_contrastive(q2, k1, t)).backward()
    return {n: p.grad.clone() for n, p in method.named_parameters() if p.requires_grad}


@pytest.mark.timeout(120)
def test_two_gloo_processes_match_one_process_gradients():
    results = run_two_processes_each_rank(make_method, half_views)
    expected = reference_gradients()
    for grads, _ in results:
        # only the trained networks have gradients: the momentum networks get none
        assert grads.keys() == expected.keys()
        assert not any(name.startswith("key_") for name in grads)
        for name, g in expected.items():
            assert torch.allclose(grads[name], g, atol=1e-5, rtol=1e-4), name


def test_momentum_schedule_and_teacher_out_of_optimizer():
    method = make_method()
    params = {id(p) for g in method.param_groups() for p in g["params"]}
    assert not any(id(p) in params for p in method.key_encoder.parameters())
    with torch.no_grad():
        for p in method.encoder.parameters():
            p.add_(1.0)
    before = [p.clone() for p in method.key_encoder.parameters()]
    method.after_step(1.0)  # momentum 1 at the end: the teacher does not move
    after = method.key_encoder.parameters()
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
    method.after_step(0.0)  # momentum 0.99 at the start
    pairs = zip(before, method.key_encoder.parameters(), method.encoder.parameters(), strict=True)
    for a, b, s in pairs:
        assert torch.allclose(b, 0.99 * a + 0.01 * s, atol=1e-6)


SMALL = {
    "method.name": "mocov3",
    "method.proj_hidden_dim": 64,
    "method.proj_dim": 32,
    "method.pred_hidden_dim": 64,
}


def test_resume_is_exact(tmp_path, monkeypatch):
    state = assert_resume_exact(tmp_path, monkeypatch, SMALL)
    assert any(k.startswith("key_encoder.") for k in state)


@pytest.mark.slow
def test_mocov3_learns_on_digits(tmp_path):
    learned, random = digits_knn(tmp_path, SMALL)
    print(f"mocov3 digits knn: learned {learned:.3f} random {random:.3f}")
    assert learned > random + 0.05


def test_a_step_on_a_vit_backbone():
    torch.manual_seed(0)
    spec = ImageEncoderSpec("vit-mini", 3, 16, True, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    cfg = MoCoV3Config(proj_hidden_dim=32, proj_dim=16, pred_hidden_dim=32)
    method = MoCoV3(spec, cfg, augment=None)
    v1, v2 = fixed_views()
    loss, _ = method.loss([v1, v2], {})
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in method.encoder.parameters() if p.requires_grad)
    before = [p.clone() for p in method.key_encoder.parameters()]
    with torch.no_grad():
        for p in method.encoder.parameters():
            p.add_(0.1)
    method.after_step(0.5)
    after = list(method.key_encoder.parameters())
    assert not all(torch.equal(a, b) for a, b in zip(before, after, strict=True))
