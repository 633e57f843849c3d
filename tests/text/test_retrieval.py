"""Retrieval figures on toy cases with known ranks; the retrieval source and protocol."""

import pytest
import torch

from selfsup.data import load_data
from selfsup.data.text import SentencePairs
from selfsup.errors import SelfsupError
from selfsup.evaluate.context import Features
from selfsup.evaluate.registry import PROTOCOLS, run_protocols
from selfsup.evaluate.retrieval import retrieval_scores


def test_known_ranks_give_known_recall_and_mrr():
    # documents are unit axes; query i points at document i with decreasing strength, so the
    # relevant document of query i is at rank given by `want`.
    docs = torch.eye(12)
    target = torch.tensor([0, 1, 2, 3])
    want = [1, 3, 7, 11]  # rank of the relevant document for each query
    queries = torch.zeros(4, 12)
    for q, (t, r) in enumerate(zip(target.tolist(), want, strict=True)):
        others = [d for d in range(12) if d != t][: r - 1]
        queries[q, others] = 1.0
        queries[q, t] = 0.5 if r > 1 else 1.0
    got = retrieval_scores(queries, docs, target)
    assert got["hit@1"] == pytest.approx(1 / 4)
    assert got["hit@5"] == pytest.approx(2 / 4)
    assert got["hit@10"] == pytest.approx(3 / 4)
    assert got["mrr@10"] == pytest.approx((1 + 1 / 3 + 1 / 7 + 0) / 4)
    assert "recall@1" not in got  # one relevant document per query: recall is the hit rate


def test_several_relevant_documents_count_the_best_ranked_one():
    docs = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    queries = torch.tensor([[1.0, 0.1]])
    relevant = torch.tensor([[False, True, True]])  # doc 0 wins, doc 2 comes second
    got = retrieval_scores(queries, docs, relevant)
    assert got["hit@1"] == 0.0 and got["mrr@10"] == pytest.approx(0.5)
    # BEIR: recall@k = relevant found in the top k / all relevant; recall_cap@k / min(k, all)
    assert got["recall@1"] == 0.0 and got["recall@5"] == 1.0
    assert got["recall_cap@1"] == 0.0 and got["recall_cap@5"] == 1.0


def test_beir_recalls_by_hand():
    """Query 0 has 3 relevant documents (ranks 1, 3, 4 of 6); query 1 has 1 (rank 2)."""
    docs = torch.eye(6)
    queries = torch.tensor([[6.0, 5, 4, 3, 2, 1], [1.0, 2, 0, 0, 0, 0]])
    relevant = torch.tensor(
        [[True, False, True, True, False, False], [True, False, False, False, False, False]]
    )
    got = retrieval_scores(queries, docs, relevant, ks=(1, 2, 3, 5))
    assert got["hit@1"] == 0.5 and got["hit@2"] == 1.0
    assert got["recall@1"] == pytest.approx((1 / 3 + 0) / 2)
    assert got["recall@3"] == pytest.approx((2 / 3 + 1) / 2)
    assert got["recall_cap@1"] == pytest.approx((1 + 0) / 2)
    assert got["recall_cap@3"] == pytest.approx((2 / 3 + 1) / 2)
    assert got["recall_cap@5"] == pytest.approx(1.0)


def test_ties_count_against_the_query_but_equal_relevant_documents_do_not():
    docs = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    query = torch.tensor([[1.0, 0.0]])
    # an irrelevant document ties with the relevant one: the relevant one ranks second
    assert retrieval_scores(query, docs, torch.tensor([1]))["hit@1"] == 0.0
    # two relevant documents tie with each other: the first of them is still first
    both = torch.tensor([[True, True, False]])
    got = retrieval_scores(query, docs, both, ks=(1, 2))
    assert got["hit@1"] == 1.0 and got["recall@2"] == 1.0 and got["mrr@10"] == 1.0
    # every document equal (a constant encoder): nothing is found, not everything
    flat = retrieval_scores(torch.ones(4, 2), torch.ones(20, 2), torch.arange(4))
    assert flat["hit@10"] == 0.0 and flat["mrr@10"] == 0.0


def test_nan_embeddings_are_refused_not_ranked_first():
    docs = torch.randn(5, 3)
    queries = torch.full((2, 3), float("nan"))
    with pytest.raises(SelfsupError, match="NaN"):
        retrieval_scores(queries, docs, torch.tensor([0, 1]))
    features = Features(queries=torch.cat([queries, docs]), retrieval=_pairs([0, 1], [2, 3]))
    with pytest.raises(SelfsupError, match=r"learned encoder of RUN at step 7.*not finite"):
        run_protocols(features, ("retrieval",), who="the learned encoder of RUN at step 7")


def test_a_query_is_never_its_own_candidate():
    """Sentence 0 is a query and also a document (relevant to query 1): it must not find
    itself first."""
    emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.1, 0.9]])
    pairs = _pairs([0, 1], [2, 0])  # query 0 -> doc 2, query 1 -> doc 0 (sentence 0)
    got = PROTOCOLS["retrieval"].run(Features(queries=emb, retrieval=pairs))
    assert got["retrieval_hit@1"] == 0.5  # query 0 finds doc 2 first; query 1 finds doc 2 first


def _pairs(first, second):
    n = len(first)
    return SentencePairs(torch.tensor(first), torch.tensor(second), torch.ones(n))


def test_bad_input_is_named():
    with pytest.raises(SelfsupError, match="one width"):
        retrieval_scores(torch.ones(2, 3), torch.ones(2, 4), torch.tensor([0, 1]))
    with pytest.raises(SelfsupError, match="at least one relevant"):
        retrieval_scores(torch.ones(1, 3), torch.ones(2, 3), torch.zeros(1, 2, dtype=torch.bool))


def test_source_and_protocol(tmp_path):
    f = tmp_path / "qd.tsv"
    f.write_text("query\tdocument\nq one\td one\nq two\td two\nq one\td three\n")
    data = load_data(f"retrieval:{f}").train
    assert data.sentences == ["q one", "d one", "q two", "d two", "d three"]
    # embeddings: q one close to d three, q two close to d two
    emb = torch.tensor([[1.0, 0, 0], [0, 0, 1], [0, 1, 0], [0, 1, 0.1], [1, 0, 0.1]])
    got = PROTOCOLS["retrieval"].run(Features(queries=emb, retrieval=data.retrieval))
    assert got["retrieval_hit@1"] == 1.0 and got["retrieval_mrr@10"] == 1.0
    # q one has two relevant documents (d one, d three): it finds one of them in the top 1
    assert got["retrieval_recall@1"] == pytest.approx((1 / 2 + 1) / 2)
    assert got["retrieval_recall_cap@1"] == 1.0
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\nx,y\n")
    with pytest.raises(SelfsupError, match="QUERY,DOCUMENT"):
        load_data(f"retrieval:{bad}")


def test_a_run_evaluates_retrieval_beside_tfidf(tmp_path, tiny_bert):
    from text_fixtures import CORPUS

    import selfsup

    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(CORPUS) + "\n")
    qd = tmp_path / "qd.jsonl"
    qd.write_text(
        "".join(
            f'{{"query": "{s.split()[-1]} {s.split()[1]}", "document": "{s}"}}\n' for s in CORPUS
        )
    )
    cfg = selfsup.make_config(
        **{
            "data.source": f"text:{corpus}",
            "method.name": "simcse",
            "model.path": str(tiny_bert),
            "train.batch_size": 5,
            "train.epochs": 1,
            "train.progress": False,
            "train.eval_every": 0,
            "train.report": False,
            "eval.data": f"retrieval:{qd}",
            "eval.protocols": "retrieval",
        }
    )
    ev = selfsup.pretrain(cfg, tmp_path / "run").evaluation
    for row in ("selfsup", "tfidf"):
        assert 0 <= ev[row]["retrieval_mrr@10"] <= 1
    assert ev["tfidf"]["retrieval_hit@10"] == 1.0  # 10 documents: all within the top 10
