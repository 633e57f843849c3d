"""Contrastive tension: the loss against a plain loop, two models trained apart, 1-vs-2 gloo
processes, exact resume, a run that exports the encoder."""

import math

import pytest
import torch
from method_harness import (
    assert_config_resumes_exactly,
    assert_gradients_close,
    run_two_processes,
)
from text_fixtures import CORPUS, TEXT_RUN, no_dropout_spec

import selfsup
from selfsup.losses import contrastive_tension
from selfsup.methods.contrastive_tension import ContrastiveTension, ContrastiveTensionConfig


def reference(first, second, k):
    n = len(first)
    pos = sum(-torch.log(torch.sigmoid(first[i] @ second[i])) for i in range(n)) / n
    neg = sum(
        -torch.log(1 - torch.sigmoid(first[i] @ second[j]))
        for i in range(n)
        for j in range(n)
        if i != j
    ) / (n * (n - 1))
    return (pos + k * neg) / (1 + k)


def test_loss_matches_plain_loop_values_and_gradients():
    g = torch.Generator().manual_seed(0)
    a, b = (torch.randn(5, 4, generator=g, requires_grad=True) for _ in range(2))
    got, want = contrastive_tension(a, b, 7.0), reference(a, b, 7.0)
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    for x, y in zip(
        torch.autograd.grad(got, (a, b)), torch.autograd.grad(want, (a, b)), strict=True
    ):
        assert torch.allclose(x, y, atol=1e-6)
    with pytest.raises(ValueError, match="at least 2"):
        contrastive_tension(a[:1], b[:1])
    # orthogonal embeddings of large norm: positives certain (0), negatives at chance (log 2)
    got = contrastive_tension(torch.eye(3) * 10, torch.eye(3) * 10, 1.0)
    assert got.item() == pytest.approx(0.5 * math.log(2), abs=1e-4)


def make_method() -> ContrastiveTension:
    torch.manual_seed(0)
    method = ContrastiveTension(no_dropout_spec(), ContrastiveTensionConfig(), augment=None)
    with torch.no_grad():  # the two models apart, as they are after some training
        for p in method.partner.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return method


def _batch(rows: slice):
    tokens = make_method().encoder.tokenize_all(CORPUS[:6])
    return {k: v[rows] for k, v in tokens.items()}


def half_batch(rank: int):
    batch = _batch(slice(3 * rank, 3 * rank + 3))
    return make_method().views(batch), batch


@pytest.mark.timeout(120)
def test_two_gloo_processes_match_one_process_gradients():
    no_dropout_spec()  # build the model folder once, before the processes start
    grads = run_two_processes(make_method, half_batch)
    method = make_method()
    batch = _batch(slice(0, 6))
    reference(method.partner(batch), method.encoder(batch), 7.0).backward()
    expected = {n: p.grad for n, p in method.named_parameters() if p.grad is not None}
    assert any(n.startswith("partner.") for n in expected)
    assert any(n.startswith("encoder.") for n in expected)
    assert_gradients_close(grads, expected)


def config(tmp_path, tiny_bert, **extra):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(CORPUS) + "\n")
    return selfsup.make_config(
        **TEXT_RUN
        | {
            "data.source": f"text:{corpus}",
            "method.name": "contrastive_tension",
            "model.path": str(tiny_bert),
            "eval.protocols": "",
        }
        | extra
    )


def test_resume_exact_and_models_trained_apart(tmp_path, tiny_bert, monkeypatch):
    state = assert_config_resumes_exactly(tmp_path, monkeypatch, config(tmp_path, tiny_bert), 7)
    key = next(k for k in state if k.startswith("partner.") and k.endswith("query.weight"))
    assert not torch.equal(state[key], state[key.replace("partner.", "encoder.")])
