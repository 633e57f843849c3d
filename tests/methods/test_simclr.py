"""SimCLR: one process on the global batch and two gloo processes on its halves give the same
gradients (`run_two_processes`, tests/method_harness.py, is shared by every method's version of
this test); 20 epochs on digits beat the random encoder. nt_xent against its reference:
tests/core/test_losses.py."""

import pytest
import torch
from method_harness import assert_gradients_close, run_two_processes

import selfsup
from selfsup.methods.simclr import SimCLR, SimCLRConfig
from selfsup.models import ImageEncoderSpec

SPEC = ImageEncoderSpec("convnet", 3, 16, True, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
BATCH = 8


def make_method() -> SimCLR:
    torch.manual_seed(0)
    return SimCLR(SPEC, SimCLRConfig(proj_hidden_dim=32, proj_dim=16), augment=None)


def fixed_views() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.rand(BATCH, 3, 16, 16, generator=g), torch.rand(BATCH, 3, 16, 16, generator=g)


def reference_gradients() -> dict[str, torch.Tensor]:
    """One process: each half goes through the network alone, as on its own rank (BatchNorm),
    and the loss is over the whole batch."""
    method = make_method()
    v1, v2 = fixed_views()
    h = BATCH // 2
    z1 = torch.cat(
        [
            method.projection_head(method.encoder(v1[:h])),
            method.projection_head(method.encoder(v1[h:])),
        ]
    )
    z2 = torch.cat(
        [
            method.projection_head(method.encoder(v2[:h])),
            method.projection_head(method.encoder(v2[h:])),
        ]
    )
    from selfsup.losses import nt_xent

    nt_xent(z1, z2, method.cfg.temperature).backward()
    return {n: p.grad.clone() for n, p in method.named_parameters()}


def half_views(rank: int):
    v1, v2 = fixed_views()
    h = BATCH // 2
    sl = slice(rank * h, (rank + 1) * h)
    return [v1[sl], v2[sl]], {}


@pytest.mark.timeout(120)
def test_two_gloo_processes_match_one_process_gradients():
    grads = run_two_processes(make_method, half_views)
    expected = reference_gradients()
    assert_gradients_close(grads, expected)


@pytest.mark.slow
def test_short_simclr_run_beats_random_encoder_under_knn(tmp_path):
    """Convergence on real data: 20 epochs on digits must clearly beat a random encoder."""
    cfg = selfsup.make_config(
        **{
            "train.epochs": 20,
            "train.progress": False,
            "train.eval_every": 0,
            "eval.protocols": "knn",
        }
    )
    result = selfsup.pretrain(cfg, tmp_path / "run")
    learned = result.evaluation["selfsup"]["knn_top1"]
    random = result.evaluation["random"]["knn_top1"]
    assert learned > random + 0.05, (learned, random)
