"""CLIP on two gloo processes (each its half of the batch, gathered columns, labels offset by
rank) gives the gradients of one process on the whole batch."""

import os
from pathlib import Path

import pytest
import torch
from method_harness import run_two_processes
from text.text_fixtures import make_tiny_bert

from selfsup.losses import clip_loss

BATCH = 8
LENGTH = 12
ENV = "SELFSUP_TEST_CLIP_BERT"  # the spawned processes find the tiny BERT folder here


def make_method():
    from selfsup.methods.clip import CLIP
    from selfsup.models import ImageEncoderSpec
    from selfsup.models.clip import ClipEncoderSpec
    from selfsup.models.text import TextEncoderSpec

    torch.manual_seed(0)
    spec = ClipEncoderSpec(
        ImageEncoderSpec("convnet", 3, 16, True, (0.5,) * 3, (0.25,) * 3),
        TextEncoderSpec(os.environ[ENV], max_length=LENGTH),
        embed_dim=8,
    )
    return CLIP(spec, CLIP.make_config({}), augment=None)


def fixed_batch() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(5, 50, (BATCH, LENGTH), generator=g)
    mask = torch.ones(BATCH, LENGTH, dtype=torch.long)
    mask[:, 8:] = torch.randint(0, 2, (BATCH, LENGTH - 8), generator=g).cummin(dim=1).values
    return {
        "image": torch.randint(0, 256, (BATCH, 3, 16, 16), dtype=torch.uint8, generator=g),
        "input_ids": ids,
        "attention_mask": mask,
    }


def half_inputs(rank: int):
    h = BATCH // 2
    batch = {k: v[rank * h : (rank + 1) * h] for k, v in fixed_batch().items()}
    return [batch["image"], {k: batch[k] for k in ("input_ids", "attention_mask")}], batch


def reference_gradients() -> dict[str, torch.Tensor]:
    """One process: each half through the towers alone (BatchNorm sees one rank's rows), the
    loss over the whole batch."""
    import torch.nn.functional as F

    method = make_method()
    images, texts = [], []
    for rank in range(2):
        views, _ = half_inputs(rank)
        images.append(F.normalize(method.encoder.encode_image(views[0]), dim=1))
        texts.append(F.normalize(method.encoder.encode_text(views[1]), dim=1))
    clip_loss(torch.cat(images), torch.cat(texts), method.scale()).backward()
    return {n: p.grad.clone() for n, p in method.named_parameters() if p.grad is not None}


@pytest.mark.timeout(120)
def test_two_gloo_processes_match_one_process_gradients(tmp_path):
    os.environ[ENV] = str(make_tiny_bert(Path(tmp_path) / "bert", dropout=0.0))
    try:
        grads = run_two_processes(make_method, half_inputs)
        want = reference_gradients()
    finally:
        del os.environ[ENV]
    assert "logit_scale" in want and want.keys() <= grads.keys()
    for name, g in want.items():
        assert torch.allclose(grads[name], g, atol=1e-5, rtol=1e-4), name
