"""Evaluation in bounded memory (issue 21, item 4): the kNN bank scored in chunks with a running
top-k merge, a split's pixels converted a batch at a time, the raw-pixel baseline with one float
copy of its bank and, above `eval.raw_bank_limit` rows, a seeded, stratified sample that
eval.json names; on data that fits, the same figures as before."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from selfsup.config import Config
from selfsup.data.images import ImageData
from selfsup.embedding import encode_rows
from selfsup.evaluate import knn
from selfsup.evaluate.knn import knn_accuracy, knn_scores
from selfsup.evaluate.suite import EvalData, evaluate_with_baselines, format_table
from selfsup.modalities import get_modality, raw
from selfsup.modalities.raw import raw_pixel_features, sample_rows, standardised_pixels
from selfsup.models import ImageEncoderSpec, build_encoder


def signs(rows: int, gen: torch.Generator, dim: int = 16) -> torch.Tensor:
    """Rows of +-1: unit rows of +-1/4, whose cosines are sums of +-1/16, exact in float32 in
    any order of summation, and tie often (only 17 values)."""
    return (torch.randint(0, 2, (rows, dim), generator=gen) * 2 - 1).float()


def lower_row_reference(bank, labels, queries, k, t=0.1, classes=None):
    """The weighted vote over the k most similar bank rows, ties to the lower row: one full
    stable sort, the rule the chunked kNN keeps."""
    sims = F.normalize(queries, dim=1) @ F.normalize(bank, dim=1).T
    vals, idx = sims.sort(dim=1, descending=True, stable=True)
    classes = classes or int(labels.max()) + 1
    scores = torch.zeros(len(queries), classes)
    return scores.scatter_add_(1, labels[idx[:, :k]], (vals[:, :k] / t).exp())


def test_chunked_knn_equals_unchunked_with_ties():
    gen = torch.Generator().manual_seed(0)
    bank, queries = signs(300, gen), signs(80, gen)
    bank[100:140] = bank[:40]  # exact duplicates across chunks: ties at every similarity
    labels = torch.randint(0, 5, (300,), generator=gen)
    test_labels = torch.randint(0, 5, (80,), generator=gen)
    whole = knn_scores(bank, labels, queries, k=20, num_classes=5)
    assert torch.equal(whole, lower_row_reference(bank, labels, queries, 20))
    for bank_chunk, chunk in ((1, 40), (3, 7), (19, 80), (299, 5)):
        parts = knn_scores(
            bank, labels, queries, k=20, num_classes=5, chunk_size=chunk, bank_chunk=bank_chunk
        )
        assert torch.equal(parts, whole), (bank_chunk, chunk)
    acc = knn_accuracy(bank, labels, queries, test_labels, k=20)
    assert knn_accuracy(bank, labels, queries, test_labels, k=20, bank_chunk=2) == acc
    # a bank smaller than k, and chunks smaller than k
    small = knn_scores(bank[:9], labels[:9], queries, k=20, num_classes=5)
    assert torch.equal(small, knn_scores(bank[:9], labels[:9], queries, k=20, bank_chunk=4))


def test_chunked_knn_keeps_the_tie_rule_of_class_scores():
    # every query is equidistant from two bank rows of different classes: a tie of class
    # scores, which counts against the query however the bank is chunked
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).repeat(4, 1)
    labels = torch.tensor([0, 1]).repeat(4)
    queries = torch.ones(6, 2)
    for bank_chunk in (1, 3, 8):
        assert (
            knn_accuracy(bank, labels, queries, torch.zeros(6).long(), bank_chunk=bank_chunk) == 0
        )


def test_chunked_knn_predictions_on_continuous_features():
    gen = torch.Generator().manual_seed(1)
    centres = torch.randn(6, 24, generator=gen)
    labels = torch.randint(0, 6, (2000,), generator=gen)
    bank = centres[labels] + 0.8 * torch.randn(2000, 24, generator=gen)
    queries = torch.randn(300, 24, generator=gen)
    whole = knn_scores(bank, labels, queries, k=50)
    parts = knn_scores(bank, labels, queries, k=50, bank_chunk=37, chunk_size=64)
    # the matrix product may round the last bit differently for another chunk width (MKL)
    torch.testing.assert_close(parts, whole, rtol=1e-5, atol=1e-5)
    assert torch.equal(parts.argmax(1), whole.argmax(1))


def test_raw_baseline_chunked_equals_unchunked():
    gen = torch.Generator().manual_seed(2)
    bank = torch.randint(0, 256, (70, 3, 5, 5), dtype=torch.uint8, generator=gen)
    queries = torch.randint(0, 256, (33, 3, 5, 5), dtype=torch.uint8, generator=gen)
    b, q = standardised_pixels(bank, queries, chunk=4)
    assert torch.equal(b, raw_pixel_features(bank))
    assert torch.equal(q, raw_pixel_features(queries, reference=bank))
    none, q2 = standardised_pixels(bank, queries, with_bank=False, chunk=1)
    assert none is None and torch.equal(q2, q)


def test_sample_rows_is_seeded_exact_and_stratified():
    labels = torch.tensor([0] * 600 + [1] * 300 + [2] * 100)
    rows = sample_rows(1000, 100, labels, seed=0)
    assert len(rows) == 100 and len(set(rows.tolist())) == 100
    assert torch.equal(rows, rows.sort().values)
    assert torch.bincount(labels[rows]).tolist() == [60, 30, 10]
    assert torch.equal(rows, sample_rows(1000, 100, labels, seed=0))
    assert not torch.equal(rows, sample_rows(1000, 100, labels, seed=1))
    assert len(sample_rows(1000, 7, labels)) == 7  # shares 4.2, 2.1, 0.7: remainders fill it
    assert len(sample_rows(50, 10)) == 10


class Pool(nn.Module):
    """A fixed encoder: 4x4 average pooling of the pixels, flattened."""

    def __init__(self):
        super().__init__()
        self.spec = ImageEncoderSpec("convnet", 3, 8, True, (0.5,) * 3, (0.25,) * 3)
        self.out_dim = 12

    def preprocess(self, raw):
        return build_encoder(self.spec).preprocess(raw)

    def forward(self, x):
        return F.avg_pool2d(x.float() / 255, 4).flatten(1)


def colour_images(n: int, seed: int, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 4, (n,), generator=gen)
    base = torch.full((n, 3, size, size), 60.0)
    base[labels == 1, 0] = 190.0
    base[labels == 2, 1] = 190.0
    base[labels == 3, :2] = 150.0
    noise = torch.randint(-50, 50, base.shape, generator=gen)
    return (base + noise).clamp(0, 255).to(torch.uint8), labels


def memmapped(images: torch.Tensor, path) -> torch.Tensor:
    array = np.memmap(path, dtype=np.uint8, mode="w+", shape=tuple(images.shape))
    array[:] = images.numpy()
    array.flush()
    return torch.from_numpy(np.memmap(path, dtype=np.uint8, mode="r", shape=tuple(images.shape)))


def split(images, labels) -> ImageData:
    return ImageData(images, labels, ["a", "b", "c", "d"], "colours")


def test_memory_mapped_split_through_the_suite_gives_the_same_figures(tmp_path, monkeypatch):
    import warnings

    train, train_y = colour_images(1200, 0)
    test, test_y = colour_images(300, 1)
    cfg = Config()
    names = ("knn", "linear", "geometry")
    modality = get_modality("image")
    torch.manual_seed(0)
    encoder = Pool()
    in_memory = evaluate_with_baselines(
        encoder, modality, EvalData(split(train, train_y), split(test, test_y), "q"), cfg, names
    )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        data = EvalData(
            split(memmapped(train, tmp_path / "train.u8"), train_y),
            split(memmapped(test, tmp_path / "test.u8"), test_y),
            "q",
        )
    monkeypatch.setattr(knn, "BANK_CHUNK", 97)  # the 1,200 bank rows in 13 chunks
    monkeypatch.setattr(raw, "PIXEL_CHUNK", 50)
    on_disk = evaluate_with_baselines(encoder, modality, data, cfg, names)
    assert on_disk == in_memory
    assert in_memory["selfsup"]["knn_top1"] > 0.9 and "raw_sample" not in in_memory


def test_images_of_another_size_are_converted_per_batch():
    images, labels = colour_images(40, 3, size=12)  # the encoder takes 8 px
    encoder = Pool()
    rows = get_modality("image").tensors(split(images, labels), encoder)["image"]
    assert not isinstance(rows, torch.Tensor)  # nothing converted until rows are asked for
    whole = encoder.preprocess(images)
    assert len(rows) == 40 and torch.equal(rows[5:17], whole[5:17])
    assert torch.equal(rows[torch.tensor([3, 0, 39])], whole[torch.tensor([3, 0, 39])])
    feats = encode_rows(encoder, {"image": rows}, lambda b: b["image"], batch_size=7)
    assert torch.equal(feats, encode_rows(encoder, {"image": whole}, lambda b: b["image"]))
    same = get_modality("image").tensors(split(whole, labels), encoder)["image"]
    assert same is whole or same.data_ptr() == whole.data_ptr()  # the encoder's size: no copy


def test_raw_baseline_over_the_bound_is_a_stated_seeded_sample():
    train, train_y = colour_images(900, 4)
    test, test_y = colour_images(120, 5)
    data = EvalData(split(train, train_y), split(test, test_y), "colours: test split")
    cfg = Config()
    cfg.eval.raw_bank_limit = 300
    names = ("knn",)
    encoder = Pool()
    first = evaluate_with_baselines(encoder, get_modality("image"), data, cfg, names)
    again = evaluate_with_baselines(encoder, get_modality("image"), data, cfg, names)
    said = first["raw_sample"]
    assert said.startswith("raw_pixels: bank: a seeded sample of 300 of its 900 rows")
    assert "stratified by class" in said and "eval.raw_bank_limit" in said
    assert "queries" not in said.split("(")[0].replace("bank:", "")  # 120 queries kept whole
    assert first["raw_pixels"] == again["raw_pixels"]
    assert f"sampled: {said}" in format_table(first)
    cfg.eval.raw_bank_limit = 100
    both = evaluate_with_baselines(encoder, get_modality("image"), data, cfg, names)
    assert "queries: a seeded sample of 100 of its 120 rows" in both["raw_sample"]
    cfg.eval.raw_bank_limit = 900  # at the bound: the whole bank, nothing said
    whole = evaluate_with_baselines(encoder, get_modality("image"), data, cfg, names)
    assert "raw_sample" not in whole and set(whole["raw_pixels"]) == set(first["raw_pixels"])


@pytest.mark.parametrize("limit", [1, 0])
def test_raw_bank_limit_below_two_is_refused(limit):
    from selfsup.config import validate
    from selfsup.errors import SelfsupError

    cfg = Config()
    cfg.eval.raw_bank_limit = limit
    with pytest.raises(SelfsupError, match="raw_bank_limit"):
        validate(cfg)
