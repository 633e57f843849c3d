"""SimCLR + rotation head: the loss against a plain reference, 1-vs-2 gloo gradients, exact
resume, convergence on digits."""

import pytest
import torch
import torch.nn.functional as F
from method_harness import (
    assert_gradients_close,
    assert_resume_exact,
    digits_knn,
    run_two_processes,
)

from selfsup.augment.pretext import four_rotations
from selfsup.losses import nt_xent
from selfsup.methods.simclr_rotation import SimCLRRotation, SimCLRRotationConfig
from selfsup.models import ImageEncoderSpec

SPEC = ImageEncoderSpec("convnet", 3, 8, True, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
BATCH = 8
SMALL = {
    "method.name": "simclr_rotation",
    "method.proj_hidden_dim": 32,
    "method.proj_dim": 16,
    "method.rotation_hidden_dim": 16,
}


def make_method() -> SimCLRRotation:
    torch.manual_seed(0)
    cfg = SimCLRRotationConfig(
        proj_hidden_dim=32, proj_dim=16, rotation_hidden_dim=16, rotation_weight=0.7
    )
    return SimCLRRotation(SPEC, cfg, augment=None)


def fixed_views() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(BATCH, 3, 8, 8, generator=g), torch.rand(BATCH, 3, 8, 8, generator=g)


def half_views(rank: int):
    v1, v2 = fixed_views()
    h = BATCH // 2
    sl = slice(rank * h, (rank + 1) * h)
    return [v1[sl], v2[sl]], {}


def test_loss_matches_plain_reference():
    method = make_method().eval()
    v1, v2 = fixed_views()
    loss, logs = method.loss([v1, v2], {})
    # reference: explicit NT-Xent over 2B rows and explicit rotation cross-entropy
    rotated = [torch.rot90(v1, k, (2, 3)) for k in range(4)]
    z = torch.cat(
        [method.projection_head(method.encoder(v1)), method.projection_head(method.encoder(v2))]
    )
    z = F.normalize(z, dim=1)
    sim = z @ z.T / method.cfg.temperature
    n, terms = 2 * BATCH, []
    for i in range(n):
        pos = (i + BATCH) % n
        others = torch.stack([sim[i, j] for j in range(n) if j != i])
        terms.append(-(sim[i, pos] - torch.logsumexp(others, 0)))
    contrastive = torch.stack(terms).mean()
    rot_terms = []
    for k in range(4):
        logits = method.rotation_head(method.encoder(rotated[k]))
        rot_terms += [-torch.log_softmax(logits[i], 0)[k] for i in range(BATCH)]
    ref = contrastive + 0.7 * torch.stack(rot_terms).mean()
    assert torch.allclose(loss, ref, atol=1e-5)
    assert torch.allclose(logs["contrastive"], contrastive, atol=1e-5)
    params = list(method.parameters())
    grads, ref_grads = torch.autograd.grad(loss, params), torch.autograd.grad(ref, params)
    for g, h in zip(grads, ref_grads, strict=True):
        assert torch.allclose(g, h, atol=1e-5)


def reference_gradients() -> dict[str, torch.Tensor]:
    """One process: each half through the network alone (BatchNorm as on its rank), NT-Xent over
    the whole batch, the rotation term the mean of the halves' (what DDP's averaging gives)."""
    method = make_method()
    v1, v2 = fixed_views()
    h = BATCH // 2
    z1, z2, rot = [], [], []
    for sl in (slice(0, h), slice(h, BATCH)):
        rotated, labels = four_rotations(v1[sl])
        feats = method.encoder(rotated)
        logits = method.rotation_head(feats)
        rot.append(F.cross_entropy(logits, labels))
        z1.append(method.projection_head(feats[:h]))
        z2.append(method.projection_head(method.encoder(v2[sl])))
    loss = nt_xent(torch.cat(z1), torch.cat(z2), method.cfg.temperature)
    (loss + 0.7 * (rot[0] + rot[1]) / 2).backward()
    return {n: p.grad.clone() for n, p in method.named_parameters()}


@pytest.mark.timeout(120)
def test_two_gloo_processes_match_one_process_gradients():
    grads = run_two_processes(make_method, half_views)
    expected = reference_gradients()
    assert_gradients_close(grads, expected)


def test_simclr_rotation_resumes_exactly(tmp_path, monkeypatch):
    assert_resume_exact(tmp_path, monkeypatch, SMALL)


@pytest.mark.slow
def test_simclr_rotation_learns_digits(tmp_path):
    learned, random = digits_knn(
        tmp_path, SMALL | {"method.proj_hidden_dim": 256, "method.proj_dim": 64}, epochs=20
    )
    print(f"simclr_rotation kNN: learned {learned:.4f} random {random:.4f}")
    assert learned > random + 0.05
