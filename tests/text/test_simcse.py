"""SimCSE end to end on the tiny BERT: one process and two give the same gradients, resume is
exact, a run trains, evaluates on STS pairs beside TF-IDF, exports, searches by sentence."""

import json

import pytest
import torch
from method_harness import (
    assert_config_resumes_exactly,
    assert_gradients_close,
    run_two_processes,
)
from text_fixtures import CORPUS, TEXT_RUN, no_dropout_spec, write_sts

import selfsup
import selfsup.train
from selfsup.errors import SelfsupError
from selfsup.losses import info_nce
from selfsup.methods.simcse import SimCSE, SimCSEConfig, row_hashes

BATCH = 8
SENTENCES = [*CORPUS[:6], CORPUS[0], CORPUS[1]]  # two duplicates across the two halves


def make_method() -> SimCSE:
    torch.manual_seed(0)
    return SimCSE(no_dropout_spec(), SimCSEConfig(), augment=None)


def _batch(rows: slice):
    method = make_method()
    tokens = method.encoder.tokenize_all(SENTENCES)
    return {k: v[rows] for k, v in tokens.items()}


def half_batch(rank: int):
    batch = _batch(slice(rank * BATCH // 2, (rank + 1) * BATCH // 2))
    method = make_method()
    return method.views(batch), batch


def reference_gradients():
    """One process: the loss over the global batch, duplicates masked, written out plainly."""
    method = make_method()
    batch = _batch(slice(0, BATCH))
    z1 = method.mlp(method.encoder(batch))
    z2 = method.mlp(method.encoder(batch))
    h = row_hashes(batch["input_ids"], batch["attention_mask"])
    exclude = (h[:, None] == h[None, :]) & ~torch.eye(BATCH, dtype=torch.bool)
    info_nce(z1, z2, 0.05, exclude).backward()
    return {n: p.grad.clone() for n, p in method.named_parameters() if p.grad is not None}


@pytest.mark.timeout(180)
def test_two_gloo_processes_match_one_process_gradients():
    no_dropout_spec()  # build the model folder once, before the processes start
    assert_gradients_close(run_two_processes(make_method, half_batch), reference_gradients())


def test_duplicates_are_masked_as_negatives():
    method = make_method()
    batch = _batch(slice(0, BATCH))
    _, figures = method.loss(method.views(batch), batch)
    assert int(figures["duplicates"]) == 2


def config(tmp_path, tiny_bert, **extra):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(CORPUS * 8) + "\n")
    sts = write_sts(tmp_path / "sts")
    return selfsup.make_config(
        **TEXT_RUN
        | {
            "data.source": f"text:{corpus}",
            "method.name": "simcse",
            "model.path": str(tiny_bert),
            "train.batch_size": 16,
            "train.eval_every": 1,
            "eval.data": f"sts:{sts}",
        }
        | extra
    )


def test_simcse_run_trains_evaluates_exports_and_searches(tmp_path, tiny_bert):
    result = selfsup.pretrain(
        config(tmp_path, tiny_bert, **{"train.report": True}), tmp_path / "run"
    )
    ev = result.evaluation
    assert set(ev) == {"queries", "selfsup", "as_loaded", "tfidf"}
    assert -1 <= ev["selfsup"]["sts_spearman"] <= 1 and "sts_spearman" in ev["tfidf"]
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any(r["kind"] == "eval" and "sts_spearman" in r for r in records)
    assert "Nearest sentences" in (tmp_path / "run" / "report.html").read_text()
    encoder = selfsup.load(tmp_path / "run")
    assert selfsup.embed(encoder, ["a dog runs"]).shape == (1, 32)
    from selfsup.search import build_index, search

    build_index(tmp_path / "run")
    hits = search(tmp_path / "run", "a man is playing a guitar", k=3)
    assert hits[0][0] == "a man is playing a guitar"


def test_simcse_resume_after_ctrl_c_is_exact(tmp_path, tiny_bert, monkeypatch):
    cfg = config(tmp_path, tiny_bert, **{"train.eval_every": 0, "eval.protocols": ""})
    assert_config_resumes_exactly(tmp_path, monkeypatch, cfg, 7)


def test_text_run_errors(tmp_path, tiny_bert):
    with pytest.raises(SelfsupError, match="--model PATH"):
        selfsup.pretrain(config(tmp_path, tiny_bert, **{"model.path": None}), tmp_path / "r1")
    with pytest.raises(SelfsupError, match="CLIP's text tower"):
        scratch = config(tmp_path, tiny_bert, **{"model.text_tower": "scratch"})
        selfsup.pretrain(scratch, tmp_path / "r1b")
    with pytest.raises(SelfsupError, match="method 'simclr' trains on image or series data"):
        selfsup.pretrain(config(tmp_path, tiny_bert, **{"method.name": "simclr"}), tmp_path / "r2")
    with pytest.raises(SelfsupError, match="'knn' needs label"):
        selfsup.pretrain(config(tmp_path, tiny_bert, **{"eval.protocols": "knn"}), tmp_path / "r3")
