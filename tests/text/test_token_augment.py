"""Token augmentations: counts, special tokens and padding kept, shuffle a permutation, masking
ratio, per-sample randomness, recipes, and SimCSE using them."""

import pytest
import torch
from text_fixtures import CORPUS

import selfsup
from selfsup.augment.text import (
    build_token_augment,
    parse_token_recipe,
    span_crop,
    token_masking,
    token_shuffle,
    word_deletion,
)
from selfsup.errors import SelfsupError

CLS, SEP, PAD, MASK = 101, 102, 0, 103
SPECIAL = torch.tensor([PAD, CLS, SEP, MASK])


def batch(lengths=(10, 6, 20, 3), width=24):
    """Rows [CLS] w1..wn [SEP] [PAD]..., content ids distinct within a row (1000 + row*50 + j)."""
    ids = torch.full((len(lengths), width), PAD)
    mask = torch.zeros(len(lengths), width, dtype=torch.long)
    for r, n in enumerate(lengths):
        ids[r, 0], ids[r, n + 1] = CLS, SEP
        ids[r, 1 : n + 1] = 1000 + 50 * r + torch.arange(n)
        mask[r, : n + 2] = 1
    return ids, mask


def content(ids, mask):
    return [row[m.bool() & (row >= 1000)].tolist() for row, m in zip(ids, mask, strict=True)]


def check_frame(ids, mask):
    """[CLS] first, one [SEP] right after the last real token, padding (ids and mask) after."""
    for row, m in zip(ids, mask, strict=True):
        n = int(m.sum())
        assert row[0] == CLS and row[n - 1] == SEP and m[:n].all() and not m[n:].any()
        assert (row[n:] == PAD).all()


def test_deletion_removes_the_right_count_keeps_order_and_specials():
    torch.manual_seed(0)
    ids, mask = batch()
    out, out_mask = word_deletion(ids, mask, SPECIAL, 0.3, PAD)
    check_frame(out, out_mask)
    before, after = content(ids, mask), content(out, out_mask)
    for b, a in zip(before, after, strict=True):
        assert len(b) - len(a) == min(round(0.3 * len(b)), len(b) - 1)
        assert a == [t for t in b if t in a]  # order kept
    # per sample: the same sentence in two rows loses different words
    same = torch.stack([ids[2]] * 8), torch.stack([mask[2]] * 8)
    got = word_deletion(*same, SPECIAL, 0.3, PAD)[0]
    assert len({tuple(r.tolist()) for r in got}) > 1


def test_crop_keeps_one_contiguous_span():
    torch.manual_seed(1)
    ids, mask = batch()
    out, out_mask = span_crop(ids, mask, SPECIAL, 0.5, PAD)
    check_frame(out, out_mask)
    for b, a in zip(content(ids, mask), content(out, out_mask), strict=True):
        assert len(a) == max(len(b) - round(0.5 * len(b)), 1)
        start = b.index(a[0])
        assert b[start : start + len(a)] == a


def test_shuffle_is_a_permutation_of_content_only():
    torch.manual_seed(2)
    ids, mask = batch()
    out, out_mask = token_shuffle(ids, mask, SPECIAL)
    assert torch.equal(out_mask, mask)
    check_frame(out, out_mask)
    before, after = content(ids, mask), content(out, out_mask)
    assert all(sorted(a) == sorted(b) for a, b in zip(after, before, strict=True))
    assert after[2] != before[2]  # 20 tokens: the identity is (20!)^-1 likely


def test_masking_ratio_and_specials():
    torch.manual_seed(3)
    ids, mask = batch(lengths=(20, 20, 10, 0))
    out, out_mask = token_masking(ids, mask, SPECIAL, 0.25, MASK)
    assert torch.equal(out_mask, mask)
    masked = (out == MASK).sum(dim=1).tolist()
    assert masked == [5, 5, round(2.5), 0]
    assert torch.equal(out[ids < 1000], ids[ids < 1000])  # specials and padding untouched


def test_recipes_and_errors(tiny_bert):
    assert parse_token_recipe("dropout") == ()
    assert parse_token_recipe("delete+mask:0.2") == (("delete", 0.1), ("mask", 0.2))
    with pytest.raises(SelfsupError, match="unknown text augmentation 'swap'"):
        parse_token_recipe("swap")
    with pytest.raises(SelfsupError, match="must be in"):
        parse_token_recipe("delete:1.5")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert)
    aug = build_token_augment("crop:0.3+shuffle+mask", tok)
    enc = tok(CORPUS, padding="max_length", max_length=16, return_tensors="pt")
    out = aug({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]})
    assert (out["input_ids"][:, 0] == tok.cls_token_id).all()
    assert repr(aug) == "crop:0.3+shuffle+mask:0.15"


def test_simcse_trains_with_token_augmentations(tmp_path, tiny_bert):
    corpus = tmp_path / "c.txt"
    corpus.write_text("\n".join(CORPUS * 4) + "\n")
    cfg = selfsup.make_config(
        **{
            "data.source": f"text:{corpus}",
            "method.name": "simcse",
            "method.augment": "delete:0.2+shuffle",
            "model.path": str(tiny_bert),
            "train.batch_size": 8,
            "train.epochs": 1,
            "train.progress": False,
            "train.eval_every": 0,
            "train.report": False,
            "eval.protocols": "",
        }
    )
    selfsup.pretrain(cfg, tmp_path / "run")
    assert (tmp_path / "run" / "encoder.safetensors").is_file()
