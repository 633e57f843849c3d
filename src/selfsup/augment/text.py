"""Token-level sentence augmentations, batched on token-id tensors with per-sample randomness.

Word deletion, span crop, token shuffling and masking: the discrete augmentations that
ConSERT (Yan et al. 2021) and the SimCSE paper (Gao et al. 2021, table 1: crop, word deletion,
MLM-style masking) compare with dropout. Each works on a whole batch (B, L) of token ids and
its attention mask at once: which tokens are hit, and where a crop starts, are drawn per
sentence from the global generator on the batch's device, with no per-sentence Python.

Special tokens ([CLS], [SEP], ...) and padding are never touched: only "content" tokens
(attention mask 1 and not a special id) are deleted, cropped, shuffled or masked. Deletion and
crop move the surviving tokens left (order kept) and pad the freed tail, so a row still reads
[CLS] ... [SEP] [PAD]...

Recipes by name (`--set method.augment=...`): "dropout" (none: the encoder's dropout alone),
or ops joined by "+", each with an optional ratio after ":", e.g. "delete:0.1+mask:0.15".
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from selfsup.errors import SelfsupError

# op -> default ratio: the fraction of a sentence's content tokens deleted / cropped away /
# masked (shuffle permutes them all and takes no ratio). SimCSE's table 1 uses 10% deletion
# and 10% crop; 15% masking is BERT's rate.
TOKEN_OPS = {"delete": 0.1, "crop": 0.1, "shuffle": 1.0, "mask": 0.15}
NO_AUGMENT = ("dropout", "none")


def content_mask(ids: Tensor, attention: Tensor, special_ids: Tensor) -> Tensor:
    """True at real tokens that are not special (the ones an augmentation may touch)."""
    return attention.bool() & ~torch.isin(ids, special_ids.to(ids.device))


def _count(content: Tensor, ratio: float) -> Tensor:
    """Per row: round(ratio * number of content tokens), kept below the row's content count
    for deletions (a sentence keeps at least one token when it has one)."""
    n = content.sum(dim=1)
    return torch.round(n.double() * ratio).long()


def _pick(content: Tensor, k: Tensor) -> Tensor:
    """True at k[i] content positions of row i chosen uniformly at random (per row)."""
    scores = torch.rand(content.shape, device=content.device)
    scores = scores.masked_fill(~content, 2.0)  # non-content ranks last
    rank = scores.argsort(dim=1).argsort(dim=1)  # 0 = first picked
    return (rank < k[:, None]) & content


def _compact(ids: Tensor, attention: Tensor, keep: Tensor, pad_id: int) -> tuple[Tensor, Tensor]:
    """Kept tokens moved left in their order; the rest becomes padding."""
    order = (~keep).to(torch.int8).argsort(dim=1, stable=True)
    kept = keep.gather(1, order)
    new_ids = ids.gather(1, order).masked_fill(~kept, pad_id)
    return new_ids, (attention.gather(1, order) * kept).to(attention.dtype)


def word_deletion(
    ids: Tensor, attention: Tensor, special_ids: Tensor, ratio: float, pad_id: int
) -> tuple[Tensor, Tensor]:
    """Delete round(ratio * n) of each row's n content tokens (at most n - 1), at random."""
    content = content_mask(ids, attention, special_ids)
    k = torch.minimum(_count(content, ratio), (content.sum(dim=1) - 1).clamp_min(0))
    keep = attention.bool() & ~_pick(content, k)
    return _compact(ids, attention, keep, pad_id)


def span_crop(
    ids: Tensor, attention: Tensor, special_ids: Tensor, ratio: float, pad_id: int
) -> tuple[Tensor, Tensor]:
    """Keep one contiguous span of n - round(ratio * n) content tokens (at least one), at a
    random start per row; special tokens stay."""
    content = content_mask(ids, attention, special_ids)
    n = content.sum(dim=1)
    length = (n - _count(content, ratio)).clamp_min(1)
    start = (torch.rand(n.shape, device=ids.device) * (n - length + 1)).floor().long()
    position = content.long().cumsum(dim=1) - 1  # index among the row's content tokens
    inside = (position >= start[:, None]) & (position < (start + length)[:, None])
    keep = attention.bool() & (~content | inside)
    return _compact(ids, attention, keep, pad_id)


def token_shuffle(ids: Tensor, attention: Tensor, special_ids: Tensor) -> tuple[Tensor, Tensor]:
    """Permute each row's content tokens at random among their own positions."""
    content = content_mask(ids, attention, special_ids)
    length = ids.shape[1]
    position = torch.arange(length, device=ids.device, dtype=torch.float64).expand(ids.shape)
    tail = length + position  # non-content positions sort last, in one order for both keys
    in_order = torch.where(content, position, tail).argsort(dim=1)
    shuffled = torch.where(content, torch.rand(ids.shape, device=ids.device).double(), tail)
    shuffled = shuffled.argsort(dim=1)
    out = ids.clone()
    out.scatter_(1, in_order, ids.gather(1, shuffled))
    return out, attention


def token_masking(
    ids: Tensor, attention: Tensor, special_ids: Tensor, ratio: float, mask_id: int
) -> tuple[Tensor, Tensor]:
    """Replace round(ratio * n) of each row's n content tokens by the mask token."""
    content = content_mask(ids, attention, special_ids)
    return ids.masked_fill(_pick(content, _count(content, ratio)), mask_id), attention


@dataclass
class TokenAugment:
    """A named chain of token ops, callable on {"input_ids", "attention_mask"} batches."""

    ops: tuple[tuple[str, float], ...]
    special_ids: Tensor
    pad_id: int
    mask_id: int | None

    def __call__(self, batch: dict[str, Tensor], view: int = 0) -> dict[str, Tensor]:
        ids, attention = batch["input_ids"], batch["attention_mask"]
        for op, ratio in self.ops:
            if op == "delete":
                ids, attention = word_deletion(ids, attention, self.special_ids, ratio, self.pad_id)
            elif op == "crop":
                ids, attention = span_crop(ids, attention, self.special_ids, ratio, self.pad_id)
            elif op == "shuffle":
                ids, attention = token_shuffle(ids, attention, self.special_ids)
            else:
                assert self.mask_id is not None
                ids, attention = token_masking(
                    ids, attention, self.special_ids, ratio, self.mask_id
                )
        return {"input_ids": ids, "attention_mask": attention}

    def __repr__(self) -> str:
        return "+".join(op if op == "shuffle" else f"{op}:{r:g}" for op, r in self.ops)


def parse_token_recipe(recipe: str) -> tuple[tuple[str, float], ...]:
    """ "delete:0.1+mask" -> (("delete", 0.1), ("mask", 0.15)); () for "dropout"/"none"."""
    if recipe.strip().lower() in NO_AUGMENT:
        return ()
    ops = []
    for part in recipe.split("+"):
        name, _, value = part.strip().lower().partition(":")
        if name not in TOKEN_OPS:
            raise SelfsupError(
                f"unknown text augmentation {name!r} in {recipe!r}; use dropout, or ops joined by "
                f"'+' from: {', '.join(TOKEN_OPS)} (each with an optional :RATIO)"
            )
        try:
            ratio = float(value) if value else TOKEN_OPS[name]
        except ValueError:
            raise SelfsupError(f"ratio {value!r} of {name!r} is not a number") from None
        if not 0.0 <= ratio < 1.0 and name != "shuffle":
            raise SelfsupError(f"ratio of {name!r} must be in [0, 1), got {ratio}")
        ops.append((name, ratio))
    return tuple(ops)


def build_token_augment(recipe: str | None, tokenizer) -> TokenAugment | None:
    """The recipe's TokenAugment for a transformers tokenizer, or None for dropout alone."""
    ops = parse_token_recipe(recipe or "dropout")
    if not ops:
        return None
    mask_id = tokenizer.mask_token_id
    if any(op == "mask" for op, _ in ops) and mask_id is None:
        raise SelfsupError("the 'mask' augmentation needs a tokenizer with a mask token")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    special = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)
    return TokenAugment(ops, special, pad_id, mask_id)
