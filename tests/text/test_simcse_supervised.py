"""Supervised SimCSE: the loss against a plain loop, NLI/pair sources, 1-vs-2 gloo processes
(hard negatives split across ranks), a run that trains on triplets, exact resume."""

import json

import pytest
import torch
import torch.nn.functional as F
from method_harness import (
    assert_config_resumes_exactly,
    assert_gradients_close,
    run_two_processes,
)
from text_fixtures import CORPUS, TEXT_RUN, no_dropout_spec, write_sts

import selfsup
import selfsup.train
from selfsup.data import load_data
from selfsup.errors import SelfsupError
from selfsup.losses import supervised_info_nce
from selfsup.methods.simcse_supervised import SupervisedSimCSE, SupervisedSimCSEConfig

BATCH = 6


def reference_loss(a, p, n, t):
    """Eq. 5 of SimCSE written out with loops."""
    total = 0.0
    for i in range(len(a)):
        keys = list(p) + ([] if n is None else list(n))
        sims = torch.stack([F.cosine_similarity(a[i], k, dim=0) / t for k in keys])
        total = total - (sims[i] - torch.logsumexp(sims, dim=0))
    return total / len(a)


@pytest.mark.parametrize("with_negatives", [True, False])
def test_loss_matches_plain_loop_values_and_gradients(with_negatives):
    g = torch.Generator().manual_seed(0)
    a, p, n = (torch.randn(5, 7, generator=g, requires_grad=True) for _ in range(3))
    neg = n if with_negatives else None
    got = supervised_info_nce(a, p, neg, 0.1)
    want = reference_loss(a, p, neg, 0.1)
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    inputs = (a, p, n) if with_negatives else (a, p)
    for x, y in zip(
        torch.autograd.grad(got, inputs), torch.autograd.grad(want, inputs), strict=True
    ):
        assert torch.allclose(x, y, atol=1e-5)


def test_loss_rejects_bad_shapes():
    with pytest.raises(ValueError, match="one \\(N, D\\) shape"):
        supervised_info_nce(torch.randn(3, 4), torch.randn(2, 4))
    with pytest.raises(ValueError, match="hard negatives"):
        supervised_info_nce(torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 5))


def write_triplets(folder, kind="csv"):
    """Triplets from the corpus: the anchor, the anchor reworded, another sentence."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        (s, s.replace("a ", "one ", 1), CORPUS[(i + 3) % len(CORPUS)]) for i, s in enumerate(CORPUS)
    ]
    if kind == "jsonl":
        path = folder / "nli.jsonl"
        lines = [
            json.dumps({"premise": a, "entailment": b, "contradiction": c}) for a, b, c in rows
        ]
        path.write_text("\n".join(lines) + "\n")
    else:
        path = folder / "nli.csv"
        path.write_text("sent0,sent1,hard_neg\n" + "".join(f"{a},{b},{c}\n" for a, b, c in rows))
    return path


def test_nli_and_pair_sources_sniff_headers_and_name_columns(tmp_path):
    csv_path = write_triplets(tmp_path / "c")
    data = load_data(f"nli:{csv_path}").train
    assert data.sentences[0] == CORPUS[0] and data.negatives[0] == CORPUS[3]
    jsonl = load_data(f"nli:{write_triplets(tmp_path / 'j', 'jsonl')}").train
    assert jsonl.sentences == data.sentences and jsonl.positives == data.positives
    pairs = load_data(f"pairs:{csv_path}#sent1,sent0").train
    assert pairs.sentences[0] == data.positives[0] and pairs.positives[0] == CORPUS[0]
    assert pairs.negatives is None
    tsv = tmp_path / "p.tsv"
    tsv.write_text("x\ty\nhello there\thi there\n")
    with pytest.raises(SelfsupError, match="no anchor or positive column among: x, y"):
        load_data(f"pairs:{tsv}")
    with pytest.raises(SelfsupError, match="no column 'nope'"):
        load_data(f"nli:{csv_path}#sent0,nope,hard_neg")
    sub = data.subset(torch.tensor([2, 0]))
    assert sub.positives == [data.positives[2], data.positives[0]]


def make_method() -> SupervisedSimCSE:
    torch.manual_seed(0)
    return SupervisedSimCSE(no_dropout_spec(), SupervisedSimCSEConfig(), augment=None)


def _batch(rows: slice):
    encoder = make_method().encoder
    out = encoder.tokenize_all(CORPUS[:BATCH])
    for prefix, shift in (("positive", 1), ("negative", 3)):
        sentences = [CORPUS[(i + shift) % len(CORPUS)] for i in range(BATCH)]
        out |= {f"{prefix}_{k}": v for k, v in encoder.tokenize_all(sentences).items()}
    return {k: v[rows] for k, v in out.items()}


def half_batch(rank: int):
    batch = _batch(slice(rank * BATCH // 2, (rank + 1) * BATCH // 2))
    return make_method().views(batch), batch


def reference_gradients():
    method = make_method()
    b = _batch(slice(0, BATCH))
    a = method.embed({"input_ids": b["input_ids"], "attention_mask": b["attention_mask"]})
    p = method.embed(
        {"input_ids": b["positive_input_ids"], "attention_mask": b["positive_attention_mask"]}
    )
    n = method.embed(
        {"input_ids": b["negative_input_ids"], "attention_mask": b["negative_attention_mask"]}
    )
    reference_loss(a, p, n, 0.05).backward()
    return {k: v.grad.clone() for k, v in method.named_parameters() if v.grad is not None}


@pytest.mark.timeout(120)
def test_two_gloo_processes_match_one_process_gradients():
    no_dropout_spec()  # build the model folder once, before the processes start
    assert_gradients_close(run_two_processes(make_method, half_batch), reference_gradients())


def config(tmp_path, tiny_bert, **extra):
    nli = write_triplets(tmp_path / "nli")
    sts = write_sts(tmp_path / "sts")
    return selfsup.make_config(
        **TEXT_RUN
        | {
            "data.source": f"nli:{nli}",
            "method.name": "simcse_sup",
            "model.path": str(tiny_bert),
            "eval.data": f"sts:{sts}",
        }
        | extra
    )


def test_run_on_triplets_trains_and_evaluates(tmp_path, tiny_bert):
    result = selfsup.pretrain(config(tmp_path, tiny_bert), tmp_path / "run")
    assert -1 <= result.evaluation["selfsup"]["sts_spearman"] <= 1
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any("hard_negative_cos" in r for r in records if r["kind"] == "train")


def test_plain_text_is_refused_with_a_clear_error(tmp_path, tiny_bert):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(CORPUS) + "\n")
    cfg = config(tmp_path, tiny_bert, **{"data.source": f"text:{corpus}"})
    with pytest.raises(SelfsupError, match="nli:FILE or pairs:FILE"):
        selfsup.pretrain(cfg, tmp_path / "run")


def test_resume_after_ctrl_c_is_exact(tmp_path, tiny_bert, monkeypatch):
    cfg = config(tmp_path, tiny_bert, **{"eval.protocols": "", "method.chunk_size": 4})
    # 10 triplets at batch 2: 5 steps an epoch
    assert_config_resumes_exactly(tmp_path, monkeypatch, cfg, 7)


def test_run_on_pairs_trains_without_hard_negatives(tmp_path, tiny_bert):
    nli = write_triplets(tmp_path / "nli")
    cfg = config(
        tmp_path,
        tiny_bert,
        **{"data.source": f"pairs:{nli}", "train.epochs": 1, "eval.protocols": ""},
    )
    selfsup.pretrain(cfg, tmp_path / "run")
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert train and all("hard_negative_cos" not in r and "positive_cos" in r for r in train)
