"""A hash per row of token ids, what SimCSE and sentence_order use to find a sentence repeated
in a batch (a repeated sentence is no negative of itself)."""

from __future__ import annotations

import torch

# Multipliers of a polynomial rolling hash over token ids, in int64 arithmetic (wrapping).
_HASH_BASE = 1_000_003
_HASH_MIX = 0x9E3779B97F4A7C15 - (1 << 64)  # the golden-ratio constant as a signed int64


def row_hashes(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """One int64 per row, equal for rows with the same tokens (padding ignored).

    h = sum_t (id_t + 1) * mask_t * BASE^t, then mixed by a multiply: vectorised over rows and
    tokens. Two different sentences share a hash with probability about 2^-64 per pair.
    """
    length = input_ids.shape[1]
    powers = torch.full((length,), _HASH_BASE, dtype=torch.int64, device=input_ids.device)
    powers = torch.cumprod(powers, dim=0)  # wraps in int64, which is all a hash needs
    tokens = (input_ids.long() + 1) * attention_mask.long()
    return (tokens * powers).sum(dim=1) * _HASH_MIX
