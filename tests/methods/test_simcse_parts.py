"""SimCSE's pieces that need no text model: the row hash that finds duplicate sentences."""

import torch

from selfsup.methods.simcse import row_hashes


def test_row_hashes_agree_exactly_with_row_equality():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 30522, (64, 12), generator=g)
    mask = torch.ones_like(ids)
    lengths = torch.randint(3, 13, (64,), generator=g)
    mask[torch.arange(12)[None, :] >= lengths[:, None]] = 0
    ids = ids * mask  # padding token 0 after each sentence
    ids[10], mask[10] = ids[3], mask[3]  # two duplicates
    ids[40], mask[40] = ids[3], mask[3]
    h = row_hashes(ids, mask)
    same_hash = h[:, None] == h[None, :]
    same_row = torch.tensor(
        [
            [bool(torch.equal(ids[i] * mask[i], ids[j] * mask[j])) for j in range(64)]
            for i in range(64)
        ]
    )
    assert torch.equal(same_hash, same_row)
    assert same_hash.sum() == 64 + 6  # the diagonal and the 3 duplicate pairs, both ways


def test_padding_length_does_not_change_the_hash():
    ids = torch.tensor([[101, 7, 8, 102, 0, 0], [101, 7, 8, 102, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 0, 0]])
    short = row_hashes(ids[:, :4], mask[:, :4])
    assert torch.equal(row_hashes(ids, mask), short)
    other = ids.clone()
    other[1, 2] = 9
    h = row_hashes(other, mask)
    assert h[0] != h[1]
