"""Image-text retrieval: recall@K both ways on held-out pairs (image i is captioned by text i).

`recall_at_k` is the pure function; `image_text_retrieval_protocol` reads the caption embeddings the
pair modality puts into `Features.extra`. A query counts as found at K when its own partner ranks
among the K most cosine-similar candidates (ties broken by the sort, as in CLIP's tables).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from selfsup.errors import SelfsupError
from selfsup.evaluate.context import Features

RECALL_KS = (1, 5, 10)


def recall_at_k(
    queries: torch.Tensor, candidates: torch.Tensor, ks: tuple[int, ...] = RECALL_KS
) -> dict[int, float]:
    """Recall@k of queries (N, D) against candidates (N, D) where candidate i is the one match
    of query i, by cosine similarity; computed in chunks of queries."""
    if queries.shape != candidates.shape or queries.dim() != 2:
        raise SelfsupError(
            f"retrieval needs queries and candidates of one shape (N, D); got "
            f"{tuple(queries.shape)} and {tuple(candidates.shape)}"
        )
    q = F.normalize(queries.float(), dim=1)
    c = F.normalize(candidates.float(), dim=1)
    ranks = []
    for start in range(0, len(q), 1024):
        sims = q[start : start + 1024] @ c.T
        own = sims[torch.arange(len(sims)), torch.arange(start, start + len(sims))]
        ranks.append((sims > own[:, None]).sum(dim=1))  # candidates strictly better than its own
    rank = torch.cat(ranks)
    return {k: float((rank < k).float().mean()) for k in ks}


def image_text_retrieval_protocol(features: Features) -> dict[str, float]:
    """i2t_r@K (image -> its caption) and t2i_r@K (caption -> its image), K in 1, 5, 10."""
    captions = features.extra.get("caption_features")
    if captions is None:
        return {}
    out = {}
    for k, v in recall_at_k(features.queries, captions).items():
        out[f"i2t_r@{k}"] = v
    for k, v in recall_at_k(captions, features.queries).items():
        out[f"t2i_r@{k}"] = v
    return out
