"""BYOL: the momentum target, its EMA schedule, exact resume, convergence on digits."""

import pytest
import torch
from method_harness import assert_resume_exact, digits_knn

from selfsup.losses import normalized_mse
from selfsup.methods.byol import BYOL, BYOLConfig
from selfsup.models import ImageEncoderSpec, cosine_momentum

SPEC = ImageEncoderSpec("convnet", 3, 16, True, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
SMALL = {"method.proj_hidden_dim": 64, "method.proj_dim": 32, "method.pred_hidden_dim": 64}


def small_byol(**kwargs) -> BYOL:
    torch.manual_seed(0)
    cfg = BYOLConfig(proj_hidden_dim=32, proj_dim=16, pred_hidden_dim=32, **kwargs)
    return BYOL(SPEC, cfg, augment=None)


def first(module: torch.nn.Module) -> torch.Tensor:
    return next(module.parameters())


def test_target_starts_equal_has_no_gradient_and_stays_out_of_the_optimizer():
    method = small_byol()
    for (name, t), s in zip(
        method.target.named_parameters(),
        list(method.encoder.parameters()) + list(method.projector.parameters()),
        strict=True,
    ):
        assert torch.equal(t, s) and not t.requires_grad, name
    grouped = {id(p) for g in method.param_groups() for p in g["params"]}
    assert not grouped & {id(p) for p in method.target.parameters()}
    assert {id(p) for p in method.predictor.parameters()} <= grouped
    v = [torch.rand(6, 3, 16, 16), torch.rand(6, 3, 16, 16)]
    loss, _ = method.loss(v, {})
    loss.backward()
    assert all(p.grad is None for p in method.target.parameters())
    assert method.predictor[0].weight.grad is not None


def test_loss_is_symmetric_normalised_mse_against_the_target():
    method = small_byol()
    v1, v2 = torch.rand(6, 3, 16, 16), torch.rand(6, 3, 16, 16)
    torch.manual_seed(1)
    loss, _ = method.loss([v1, v2], {})
    p1 = method.predictor(method.projector(method.encoder(v1)))
    p2 = method.predictor(method.projector(method.encoder(v2)))
    with torch.no_grad():
        t1 = method.target["projector"](method.target["encoder"](v1))
        t2 = method.target["projector"](method.target["encoder"](v2))
    expected = normalized_mse(p1, t2) + normalized_mse(p2, t1)
    assert torch.allclose(loss, expected, atol=1e-5)


def test_after_step_moves_target_by_ema_at_the_cosine_momentum():
    method = small_byol(momentum_base=0.9)
    with torch.no_grad():
        for p in method.encoder.parameters():
            p.add_(1.0)
    before = first(method.target["encoder"]).clone()
    online = first(method.encoder).clone()
    method.after_step(0.5)
    tau = cosine_momentum(0.5, 0.9, 1.0)
    after = first(method.target["encoder"]).clone()
    assert torch.allclose(after, tau * before + (1 - tau) * online, atol=1e-6)
    assert method.momentum.item() == pytest.approx(tau)
    method.after_step(1.0)  # momentum 1 at the end: the target stops moving
    assert torch.equal(first(method.target["encoder"]), after)


def test_resume_is_exact(tmp_path, monkeypatch):
    state = assert_resume_exact(tmp_path, monkeypatch, {"method.name": "byol"} | SMALL)
    assert any(k.startswith("target.") for k in state)


@pytest.mark.slow
def test_converges_on_digits(tmp_path):
    learned, random = digits_knn(tmp_path, {"method.name": "byol"} | SMALL, epochs=20)
    print(f"byol digits kNN: learned {learned:.4f}, random {random:.4f}")
    assert learned > random + 0.05
