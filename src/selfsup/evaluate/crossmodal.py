"""Image-text retrieval: recall@K both ways on held-out pairs (image i is captioned by text i).

`recall_at_k` is the pure function; `image_text_retrieval_protocol` reads the caption embeddings
(and the caption texts) the pair modality puts into `Features.extra`. A query counts as found at
K when a matching candidate ranks among the K most cosine-similar ones, ties counted against the
query (matching candidates rank last among equal scores), so an encoder that maps everything to
one point scores 0. Where captions repeat (the cifar-captions template demo), every candidate
whose caption text equals the true caption is a match: the text cannot tell those pairs apart.
R@K is then the field's R@K with several ground truths (as COCO's five captions per image): the
fraction of queries with a match in the top K.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from selfsup.errors import SelfsupError
from selfsup.evaluate.context import Features
from selfsup.evaluate.retrieval import QUERY_CHUNK, ranks_of_relevant, require_finite

RECALL_KS = (1, 5, 10)


def recall_at_k(
    queries: torch.Tensor,
    candidates: torch.Tensor,
    ks: tuple[int, ...] = RECALL_KS,
    groups: torch.Tensor | None = None,
) -> dict[int, float]:
    """Recall@k of queries (N, D) against candidates (N, D) by cosine similarity: candidate i
    matches query i, and so does every candidate j with groups[j] == groups[i] when `groups`
    (N,) is given (pairs whose caption texts are equal). Ties count against the query."""
    if queries.shape != candidates.shape or queries.dim() != 2:
        raise SelfsupError(
            f"retrieval needs queries and candidates of one shape (N, D); got "
            f"{tuple(queries.shape)} and {tuple(candidates.shape)}"
        )
    require_finite(queries, candidates)
    n = len(queries)
    if groups is None:
        groups = torch.arange(n)
    groups = groups.to(queries.device)
    q = F.normalize(queries.float(), dim=1)
    c = F.normalize(candidates.float(), dim=1)
    ranks = []
    for start in range(0, n, QUERY_CHUNK):
        sims = q[start : start + QUERY_CHUNK] @ c.T
        matches = groups[start : start + QUERY_CHUNK, None] == groups[None, :]
        ranks.append(ranks_of_relevant(sims, matches)[:, 0])
    rank = torch.cat(ranks)
    return {k: float((rank <= k).float().mean()) for k in ks}


def caption_groups(captions: list[str]) -> torch.Tensor:
    """(N,) int64: one id per distinct caption text."""
    ids: dict[str, int] = {}
    return torch.tensor([ids.setdefault(c, len(ids)) for c in captions], dtype=torch.long)


def image_text_retrieval_protocol(features: Features) -> dict[str, float]:
    """i2t_r@K (image -> its caption) and t2i_r@K (caption -> its image), K in 1, 5, 10."""
    captions = features.extra.get("caption_features")
    if captions is None:
        return {}
    texts = features.extra.get("captions")
    groups = None if texts is None else caption_groups(list(texts))
    out = {}
    for k, v in recall_at_k(features.queries, captions, groups=groups).items():
        out[f"i2t_r@{k}"] = v
    for k, v in recall_at_k(captions, features.queries, groups=groups).items():
        out[f"t2i_r@{k}"] = v
    return out
