"""Retrieval: rank every document for each query by cosine similarity and score where the
relevant documents land.

Figures: hit@k (success@k: the fraction of queries with at least one relevant document in the
top k; what CLIP's and most dense-retrieval tables call R@k when a query has one relevant
document), MRR@10, and, when some query has several relevant documents, BEIR's two recalls:
recall@k (pytrec_eval's `recall_k`: relevant documents in the top k / all relevant ones) and
recall_cap@k (BEIR's `R_cap@k`: relevant documents in the top k / min(k, relevant ones)).

Ties count against the query: among documents of equal similarity the relevant ones rank last,
so an encoder that maps everything to one point scores 0, not 1. A document that is the query
itself (the same sentence) is not ranked, as BEIR ignores identical query and document ids.

`ranks_of_relevant` is the pure ranking core that image-text retrieval shares; the `retrieval`
protocol applies it to a `retrieval:FILE` source's (query, relevant document) rows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from selfsup.errors import SelfsupError
from selfsup.evaluate.context import Features, NonFiniteError

RECALL_AT = (1, 5, 10)
MRR_AT = 10
QUERY_CHUNK = 1024  # queries scored at once: a (chunk, documents) similarity matrix


def require_finite(*tensors: Tensor) -> None:
    """Raise NonFiniteError if any tensor holds NaN or inf (NaN never loses a comparison)."""
    for t in tensors:
        if not bool(torch.isfinite(t).all()):
            raise NonFiniteError("the embeddings to rank hold NaN or infinite values")


def ranks_of_relevant(sims: Tensor, relevant: Tensor, depth: int = 1) -> Tensor:
    """1-based positions of each query's best `depth` relevant candidates, ties against them.

    sims (Q, M) similarities, relevant (Q, M) bool. Candidates scoring -inf are never ranked
    ahead of anything (how a caller leaves a candidate out). The j-th best relevant candidate
    of a query sits at j + (irrelevant candidates scoring at least as high as it): relevant ones
    rank last among equals. Returns (Q, depth) int64; a query with fewer than j relevant
    candidates gets the largest int64 in column j (never within any top k).
    """
    m = sims.shape[1]
    irrelevant = sims.masked_fill(relevant, float("-inf")).sort(dim=1).values
    best = sims.masked_fill(~relevant, float("-inf")).topk(min(depth, m), dim=1).values
    ahead = m - torch.searchsorted(irrelevant.contiguous(), best.contiguous(), side="left")
    positions = torch.arange(1, best.shape[1] + 1, device=sims.device) + ahead
    missing = torch.arange(best.shape[1], device=sims.device) >= relevant.sum(1, keepdim=True)
    return positions.masked_fill(missing, torch.iinfo(torch.int64).max)


def retrieval_scores(
    query_emb: Tensor,
    doc_emb: Tensor,
    relevant: Tensor,
    ks: tuple[int, ...] = RECALL_AT,
    mrr_at: int = MRR_AT,
    exclude: Tensor | None = None,
) -> dict[str, float]:
    """hit@k, MRR@mrr_at and, with several relevant documents per query, recall@k and
    recall_cap@k of cosine retrieval (see the module docstring for each definition).

    query_emb (Q, D), doc_emb (M, D); `relevant` is (Q, M) bool (query i's relevant
    documents) or (Q,) int64 (one relevant document per query); `exclude` (Q, M) bool marks
    documents not ranked for a query (the query itself).
    """
    if query_emb.dim() != 2 or doc_emb.dim() != 2 or query_emb.shape[1] != doc_emb.shape[1]:
        raise SelfsupError(
            f"retrieval needs (Q, D) queries and (M, D) documents of one width, got "
            f"{tuple(query_emb.shape)} and {tuple(doc_emb.shape)}"
        )
    require_finite(query_emb, doc_emb)
    q, m = query_emb.shape[0], doc_emb.shape[0]
    if relevant.dim() == 1:
        if relevant.shape[0] != q or relevant.min() < 0 or relevant.max() >= m:
            raise SelfsupError(f"relevant must hold one document index in [0, {m}) per query")
        relevant = F.one_hot(relevant.long(), m).bool()
    if relevant.shape != (q, m):
        raise SelfsupError(f"relevant must be shaped ({q}, {m}), got {tuple(relevant.shape)}")
    if exclude is not None:
        relevant = relevant & ~exclude.to(relevant.device)
    if not bool(relevant.any(dim=1).all()):
        raise SelfsupError("every query needs at least one relevant document")
    queries = F.normalize(query_emb.float(), dim=1)
    docs = F.normalize(doc_emb.float(), dim=1)
    relevant = relevant.to(queries.device)
    counts = relevant.sum(dim=1).cpu()
    several = bool((counts > 1).any())
    depth = max(ks) if several else 1
    positions = []
    for start in range(0, q, QUERY_CHUNK):
        sims = queries[start : start + QUERY_CHUNK] @ docs.T
        if exclude is not None:
            left_out = exclude[start : start + QUERY_CHUNK].to(sims.device)
            sims = sims.masked_fill(left_out, float("-inf"))
        positions.append(ranks_of_relevant(sims, relevant[start : start + QUERY_CHUNK], depth))
    pos = torch.cat(positions).cpu()
    first = pos[:, 0].double()
    results = {f"hit@{k}": float((first <= k).double().mean()) for k in ks}
    results[f"mrr@{mrr_at}"] = float(torch.where(first <= mrr_at, 1.0 / first, 0.0).mean())
    if several:
        for k in ks:
            found = (pos <= k).sum(dim=1).double()
            results[f"recall@{k}"] = float((found / counts).mean())
            results[f"recall_cap@{k}"] = float((found / counts.clamp(max=k)).mean())
    return results


def retrieval_protocol(features: Features) -> dict[str, float]:
    """The `retrieval` protocol: the queries of the (query, document) rows against every
    distinct document of the file; a query's own sentence is never one of its candidates."""
    pairs = features.retrieval
    docs, doc_index = torch.unique(pairs.second, return_inverse=True)
    queries, query_index = torch.unique(pairs.first, return_inverse=True)
    relevant = torch.zeros(len(queries), len(docs), dtype=torch.bool)
    relevant[query_index, doc_index] = True
    itself = queries[:, None] == docs[None, :]
    kept = (relevant & ~itself).any(dim=1)  # a query relevant only to itself has nothing to find
    if not bool(kept.any()):
        raise SelfsupError("every (query, document) row pairs a sentence with itself")
    device = features.queries.device
    scores = retrieval_scores(
        features.queries[queries[kept]],
        features.queries[docs],
        relevant[kept].to(device),
        exclude=itself[kept].to(device),
    )
    return {f"retrieval_{k}": v for k, v in scores.items()}
