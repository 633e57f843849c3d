"""Retrieval: rank every document for each query by cosine similarity and score where the
relevant documents land: recall@1/5/10 and MRR@10 over the whole document set.

`retrieval_scores` is a pure function of embeddings and relevance, so image-text retrieval
(captions to images) reuses it; the `retrieval` protocol applies it to a `retrieval:FILE`
source's (query, relevant document) rows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from selfsup.errors import SelfsupError
from selfsup.evaluate.context import Features

RECALL_AT = (1, 5, 10)
MRR_AT = 10
QUERY_CHUNK = 1024  # queries scored at once: a (chunk, documents) similarity matrix


def retrieval_scores(
    query_emb: Tensor,
    doc_emb: Tensor,
    relevant: Tensor,
    ks: tuple[int, ...] = RECALL_AT,
    mrr_at: int = MRR_AT,
) -> dict[str, float]:
    """Recall@k and MRR@mrr_at of cosine retrieval.

    query_emb (Q, D), doc_emb (M, D); `relevant` is (Q, M) bool (query i's relevant
    documents) or (Q,) int64 (one relevant document per query). A query's rank is the 1-based
    position of its best-ranked relevant document among all M documents (ties counted against
    it: a document that scores equal to it ranks ahead). recall@k is the fraction of queries
    with rank <= k; MRR@k the mean of 1/rank over queries, 0 when rank > k.
    """
    if query_emb.dim() != 2 or doc_emb.dim() != 2 or query_emb.shape[1] != doc_emb.shape[1]:
        raise SelfsupError(
            f"retrieval needs (Q, D) queries and (M, D) documents of one width, got "
            f"{tuple(query_emb.shape)} and {tuple(doc_emb.shape)}"
        )
    q, m = query_emb.shape[0], doc_emb.shape[0]
    if relevant.dim() == 1:
        if relevant.shape[0] != q or relevant.min() < 0 or relevant.max() >= m:
            raise SelfsupError(f"relevant must hold one document index in [0, {m}) per query")
        relevant = F.one_hot(relevant.long(), m).bool()
    if relevant.shape != (q, m):
        raise SelfsupError(f"relevant must be shaped ({q}, {m}), got {tuple(relevant.shape)}")
    if not bool(relevant.any(dim=1).all()):
        raise SelfsupError("every query needs at least one relevant document")
    queries = F.normalize(query_emb.float(), dim=1)
    docs = F.normalize(doc_emb.float(), dim=1)
    relevant = relevant.to(queries.device)
    ranks = []
    for start in range(0, q, QUERY_CHUNK):
        sims = queries[start : start + QUERY_CHUNK] @ docs.T
        rel = relevant[start : start + QUERY_CHUNK]
        best = sims.masked_fill(~rel, float("-inf")).max(dim=1, keepdim=True).values
        # rank = 1 + documents scoring at least as high as the best relevant one, other than it
        ranks.append((sims >= best).sum(dim=1))
    rank = torch.cat(ranks).double().cpu()
    results = {f"recall@{k}": float((rank <= k).double().mean()) for k in ks}
    results[f"mrr@{mrr_at}"] = float(torch.where(rank <= mrr_at, 1.0 / rank, 0.0).mean())
    return results


def retrieval_protocol(features: Features) -> dict[str, float]:
    """The `retrieval` protocol: the queries of the (query, document) rows against every
    distinct document of the file."""
    pairs = features.retrieval
    docs, doc_index = torch.unique(pairs.second, return_inverse=True)
    queries, query_index = torch.unique(pairs.first, return_inverse=True)
    relevant = torch.zeros(len(queries), len(docs), dtype=torch.bool)
    relevant[query_index, doc_index] = True
    scores = retrieval_scores(
        features.queries[queries], features.queries[docs], relevant.to(features.queries.device)
    )
    return {f"retrieval_{k}": v for k, v in scores.items()}
