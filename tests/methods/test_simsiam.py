"""SimSiam: stop-gradient, the predictor's fixed learning rate, exact resume, convergence."""

import pytest
import torch
from method_harness import assert_resume_exact, digits_knn

from selfsup.config import OptimConfig
from selfsup.losses import negative_cosine
from selfsup.methods.simsiam import SimSiam, SimSiamConfig
from selfsup.models import ImageEncoderSpec
from selfsup.optim import build_optimizer, set_lr

SPEC = ImageEncoderSpec("convnet", 3, 16, True, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
SMALL = {"method.proj_hidden_dim": 64, "method.proj_dim": 32, "method.pred_hidden_dim": 16}
# SGD at the paper's ImageNet base lr 0.05 x batch / 256 (its CIFAR setting, 0.03 with weight
# decay 5e-4, is the method's default optimiser).
SGD = {"optim.name": "sgd", "optim.lr": 0.05, "optim.weight_decay": 5e-4}


def small_simsiam(**kwargs) -> SimSiam:
    torch.manual_seed(0)
    cfg = SimSiamConfig(proj_hidden_dim=32, proj_dim=16, pred_hidden_dim=8, **kwargs)
    return SimSiam(SPEC, cfg, augment=None)


def test_loss_stops_the_gradient_through_the_target_branch():
    method = small_simsiam()
    v1, v2 = torch.rand(6, 3, 16, 16), torch.rand(6, 3, 16, 16)
    z1 = method.projector(method.encoder(v1))
    z2 = method.projector(method.encoder(v2))
    p1, p2 = method.predictor(z1), method.predictor(z2)
    loss = (negative_cosine(p1, z2.detach()) + negative_cosine(p2, z1.detach())) / 2
    # Without the stop-gradient the gradient would differ: the check can fail.
    no_sg = (negative_cosine(p1, z2) + negative_cosine(p2, z1)) / 2
    params = list(method.encoder.parameters())
    g_ref = torch.autograd.grad(loss, params, retain_graph=True)
    g_no_sg = torch.autograd.grad(no_sg, params)
    torch.manual_seed(0)  # same module state: the views are fixed tensors, no randomness
    got, _ = method.loss([v1, v2], {})
    g_got = torch.autograd.grad(got, params)
    assert torch.allclose(got, loss, atol=1e-6)
    for a, b in zip(g_got, g_ref, strict=True):
        assert torch.allclose(a, b, atol=1e-6)
    assert any(not torch.allclose(b, c, atol=1e-6) for b, c in zip(g_ref, g_no_sg, strict=True))


def test_predictor_keeps_a_fixed_learning_rate():
    method = small_simsiam()
    groups = method.param_groups()
    assert len(groups) == 2 and groups[1]["fixed_lr"] is True
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in method.predictor.parameters()}
    opt = build_optimizer(groups, OptimConfig(name="sgd", lr=0.05), 256)
    set_lr(opt, 0.001, 0.9)
    lrs = {(g["fixed_lr"], g["lr"]) for g in opt.param_groups}
    assert lrs == {(False, 0.001), (True, 0.05)}


def test_without_predictor_there_is_one_group_and_the_projector_ends_in_batchnorm():
    method = small_simsiam(predictor=False)
    assert len(method.param_groups()) == 1
    assert isinstance(method.projector[-1], torch.nn.BatchNorm1d)


def test_resume_is_exact(tmp_path, monkeypatch):
    assert_resume_exact(tmp_path, monkeypatch, {"method.name": "simsiam"} | SMALL | SGD)


# The smallest heads (SMALL) reached only 0.844 against 0.833 at 20 epochs; these reach 0.925.
CONVERGE = {"method.proj_hidden_dim": 128, "method.proj_dim": 64, "method.pred_hidden_dim": 32}


@pytest.mark.slow
def test_converges_on_digits(tmp_path):
    # SGD at the paper's ImageNet base lr 0.05: the CIFAR one (0.03, the default) is slower on
    # digits, kNN 0.872 after 20 epochs and 0.900 after 40 (random 0.833); 0.05 reaches 0.914.
    overrides = {"method.name": "simsiam", "optim.lr": 0.05} | CONVERGE
    learned, random = digits_knn(tmp_path, overrides, epochs=20)
    print(f"simsiam digits kNN: learned {learned:.4f}, random {random:.4f}")
    assert learned > random + 0.05
