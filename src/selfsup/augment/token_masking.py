"""BERT's masked-language-model corruption of token ids, batched with no per-sentence Python.

Devlin et al. 2019, "BERT", sec. 3.1 and appendix A.1: 15 % of the tokens are chosen as
prediction targets; a chosen token becomes [MASK] with probability 0.8, a random token with
probability 0.1 and stays unchanged with probability 0.1. Only the chosen positions count in
the loss. Whole-word masking (the later BERT release, "whole word masking" models) chooses
words instead of sub-tokens: every sub-token of a chosen word is a target, and each word is
chosen with probability 0.15, so about 15 % of the tokens are still targets (exactly so in
expectation, whatever the word lengths).

Everything is a pure function of tensors and a generator: each token (or word) is chosen
independently with the given probability (a Bernoulli draw, as in the BERT reference code's
collators), so rows of any length need no loop. Special tokens and padding are never chosen.
"""

from __future__ import annotations

import torch
from torch import Tensor

from selfsup.errors import SelfsupError


def word_starts_from_vocab(tokens: list[str]) -> Tensor:
    """A (V,) bool table: True for a vocabulary entry that begins a word.

    WordPiece marks continuations with a leading "##" (BERT, MiniLM); SentencePiece and
    byte-level BPE mark word beginnings with a leading "▁" or "Ġ" instead. Index it with token
    ids (`table[ids]`) to get the word starts of a batch without touching the tokenizer again.
    """
    if any(t.startswith("##") for t in tokens):
        return torch.tensor([not t.startswith("##") for t in tokens], dtype=torch.bool)
    for marker in ("▁", "Ġ"):
        if any(t.startswith(marker) for t in tokens):
            return torch.tensor([t.startswith(marker) for t in tokens], dtype=torch.bool)
    raise SelfsupError(
        "whole-word masking needs a WordPiece ('##' continuations), SentencePiece ('▁') or "
        "byte-level BPE ('Ġ') vocabulary; this tokenizer's vocabulary has none of these marks"
    )


def word_start_positions(word_start: Tensor) -> Tensor:
    """(B, L) long: for each position, the position of the first sub-token of its word.

    A position that is a word start points at itself; a continuation at the nearest word start
    on its left (position 0 when there is none).
    """
    positions = torch.arange(word_start.shape[1], device=word_start.device).expand_as(word_start)
    return torch.where(word_start, positions, 0).cummax(dim=1).values


def bert_masking(
    ids: Tensor,
    special: Tensor,
    *,
    mask_id: int,
    random_ids: Tensor,
    generator: torch.Generator | None = None,
    ratio: float = 0.15,
    mask_prob: float = 0.8,
    random_prob: float = 0.1,
    word_start: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Corrupt token ids (B, L) as BERT's MLM does; returns (corrupted ids, chosen mask).

    `special` (B, L) bool is True at positions that may never be chosen (special tokens and
    padding). Each other position is chosen with probability `ratio`; or, with `word_start`
    (B, L) bool (True at the first sub-token of each word), each word is chosen with
    probability `ratio` and all its sub-tokens with it. Each chosen token independently becomes
    `mask_id` with probability `mask_prob`, a token drawn uniformly from `random_ids` (1-D:
    the vocabulary without special tokens) with probability `random_prob`, and stays itself
    otherwise. Draws come from `generator` (the global generator of the ids' device if None).
    """
    if ids.dim() != 2 or special.shape != ids.shape:
        raise SelfsupError(
            f"bert_masking expects ids (B, L) and a special-token mask of the same shape, got "
            f"{tuple(ids.shape)} and {tuple(special.shape)}"
        )
    if not 0.0 < ratio < 1.0 or mask_prob < 0 or random_prob < 0 or mask_prob + random_prob > 1:
        raise SelfsupError(
            f"masking probabilities out of range: ratio={ratio} (in (0, 1)), mask={mask_prob}, "
            f"random={random_prob} (non-negative, summing to at most 1)"
        )
    if random_ids.numel() == 0 and random_prob > 0:
        raise SelfsupError("no token ids to draw random replacements from")
    device = ids.device
    choose = torch.rand(ids.shape, generator=generator, device=device)
    if word_start is not None:
        if word_start.shape != ids.shape:
            raise SelfsupError(
                f"word_start must be shaped like the ids {tuple(ids.shape)}, got "
                f"{tuple(word_start.shape)}"
            )
        # every sub-token reads the draw of its word's first sub-token
        choose = choose.gather(1, word_start_positions(word_start & ~special))
    chosen = (choose < ratio) & ~special.bool()
    action = torch.rand(ids.shape, generator=generator, device=device)
    pick = torch.randint(max(random_ids.numel(), 1), ids.shape, generator=generator, device=device)
    replacement = random_ids.to(device)[pick] if random_ids.numel() else ids
    out = torch.where(chosen & (action < mask_prob), torch.full_like(ids, mask_id), ids)
    is_random = chosen & (action >= mask_prob) & (action < mask_prob + random_prob)
    out = torch.where(is_random, replacement, out)
    return out, chosen
