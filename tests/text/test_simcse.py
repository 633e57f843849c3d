"""SimCSE end to end on the tiny BERT: one process and two give the same gradients, resume is
exact, a run trains, evaluates on STS pairs beside TF-IDF, exports, searches by sentence."""

import json
import signal

import pytest
import torch
from safetensors.torch import load_file
from text_fixtures import CORPUS, make_tiny_bert, write_sts

import selfsup
import selfsup.train
from selfsup.errors import SelfsupError
from selfsup.losses import info_nce
from selfsup.methods.simcse import SimCSE, SimCSEConfig, row_hashes
from selfsup.models.text import TextEncoderSpec

BATCH = 8
SENTENCES = [*CORPUS[:6], CORPUS[0], CORPUS[1]]  # two duplicates across the two halves


def _spec() -> TextEncoderSpec:
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.gettempdir()) / "selfsup-tiny-bert-nodrop"
    if not (folder / "config.json").is_file():
        make_tiny_bert(folder, dropout=0.0)  # no dropout: both processes see the same views
    return TextEncoderSpec(str(folder))


def make_method() -> SimCSE:
    torch.manual_seed(0)
    return SimCSE(_spec(), SimCSEConfig(), augment=None)


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
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
    from method_harness import run_two_processes

    _spec()  # build the model folder once, before the processes start
    grads = run_two_processes(make_method, half_batch)
    expected = reference_gradients()
    assert expected
    for name, g in expected.items():
        assert torch.allclose(grads[name], g, atol=1e-5, rtol=1e-4), name


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
        **{
            "data.source": f"text:{corpus}",
            "method.name": "simcse",
            "model.path": str(tiny_bert),
            "optim.name": "adamw",
            "optim.lr": 1e-3,
            "train.batch_size": 16,
            "train.epochs": 2,
            "train.progress": False,
            "train.amp": False,
            "train.eval_every": 1,
            "train.report": False,
            "eval.data": f"sts:{sts}",
        }
        | extra
    )


def test_simcse_run_trains_evaluates_exports_and_searches(tmp_path, tiny_bert):
    result = selfsup.pretrain(
        config(tmp_path, tiny_bert, **{"train.report": True}), tmp_path / "run"
    )
    ev = result.evaluation
    assert set(ev) == {"queries", "selfsup", "untrained", "tfidf"}
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
    selfsup.pretrain(cfg, tmp_path / "straight")
    original = selfsup.train.training_step
    calls = {"n": 0}

    def interrupt(*args, **kwargs):
        out = original(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 7:
            signal.raise_signal(signal.SIGINT)
        return out

    monkeypatch.setattr(selfsup.train, "training_step", interrupt)
    with pytest.raises(SelfsupError, match="--resume"):
        selfsup.pretrain(cfg, tmp_path / "resumed")
    monkeypatch.undo()
    selfsup.pretrain(cfg, tmp_path / "resumed", resume=True)
    a = load_file(str(tmp_path / "straight" / "encoder.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "encoder.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_text_run_errors(tmp_path, tiny_bert):
    with pytest.raises(SelfsupError, match="--model PATH"):
        selfsup.pretrain(config(tmp_path, tiny_bert, **{"model.path": None}), tmp_path / "r1")
    with pytest.raises(SelfsupError, match="method 'simclr' reads images or series"):
        selfsup.pretrain(config(tmp_path, tiny_bert, **{"method.name": "simclr"}), tmp_path / "r2")
    with pytest.raises(SelfsupError, match="'knn' needs label"):
        selfsup.pretrain(config(tmp_path, tiny_bert, **{"eval.protocols": "knn"}), tmp_path / "r3")
