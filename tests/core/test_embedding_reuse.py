"""The end of a run embeds each sample once per encoder (issue 19, item 18): inside
`reuse_features()`, `encode_rows` does not run the encoder again on a model input that the same
weights (the same module, or a copy loaded back from disk) have embedded."""

import copy

import torch
from torch import nn

from selfsup import embedding as features


class Counting(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(4, 3)
        self.seen = 0

    def forward(self, x):
        self.seen += len(x)
        return self.linear(x)


def take(batch):
    return batch["x"]


def test_each_row_is_embedded_once_per_weights():
    encoder = Counting()
    rows = {"x": torch.randn(10, 4)}
    plain = features.encode_rows(encoder, rows, take, batch_size=3)
    with features.reuse_features():
        first = features.encode_rows(encoder, rows, take, batch_size=3)
        assert encoder.seen == 20
        part = {"x": rows["x"][2:7]}
        again = features.encode_rows(encoder, part, lambda b: b["x"], batch_size=4)
        loaded = copy.deepcopy(encoder)  # the same weights, another module (the report's)
        loaded.seen = 0
        back = features.encode_rows(loaded, rows, take)
        assert encoder.seen == 20 and loaded.seen == 0
        with torch.no_grad():
            loaded.linear.weight.add_(1.0)  # other weights: embedded anew
        moved = features.encode_rows(loaded, part, take)
        assert loaded.seen == 5
    torch.testing.assert_close(first, plain)
    torch.testing.assert_close(again, plain[2:7])
    torch.testing.assert_close(back, plain)
    assert not torch.allclose(moved, plain[2:7])
    features.encode_rows(encoder, rows, take)  # outside the block: every row runs again
    assert encoder.seen == 30


class Widths(nn.Module):
    """Records the longest sentence of each batch; its feature is the sentence's length."""

    def __init__(self):
        super().__init__()
        self.widths = []

    def forward(self, batch):
        lengths = batch["attention_mask"].sum(dim=1)
        self.widths.append(int(lengths.max()))
        return lengths.float()[:, None]


def test_token_rows_are_embedded_in_order_of_length_and_returned_in_their_own():
    lengths = torch.tensor([1, 8, 2, 7, 1, 8])
    mask = (torch.arange(8)[None, :] < lengths[:, None]).long()
    rows = {"input_ids": mask * 5, "attention_mask": mask}
    encoder = Widths()
    out = features.encode_rows(encoder, rows, lambda b: b, batch_size=2)
    assert out.flatten().tolist() == lengths.float().tolist()
    assert encoder.widths == [8, 7, 1]  # (8, 8), (7, 2), (1, 1): padding only in one batch


def test_what_is_kept_is_bounded(monkeypatch):
    monkeypatch.setattr(features, "MEMO_ROWS", 4)
    encoder = Counting()
    rows = {"x": torch.randn(6, 4)}
    with features.reuse_features():
        first = features.encode_rows(encoder, rows, take, batch_size=3)  # keeps 3, not 6
        second = features.encode_rows(encoder, rows, take, batch_size=3)
    assert encoder.seen == 6 + 3
    torch.testing.assert_close(first, second)
