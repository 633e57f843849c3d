"""Word-vector protocols: word similarity and 3CosAdd analogies against hand-computed answers,
coverage and restrict_vocab as gensim's, ties as misses, the PPMI baseline, and the benchmark
files themselves (gensim's test data: the `words` extra; a missing file FAILS here)."""

from __future__ import annotations

import pytest
import torch

from selfsup.errors import SelfsupError
from selfsup.evaluate.word_vectors import (
    ANALOGIES,
    SIMLEX,
    WORDSIM,
    analogy_accuracy,
    benchmark_file,
    ppmi_vectors,
    read_analogies,
    read_word_pairs,
    word_similarity,
)

WORDS = ["man", "woman", "king", "queen", "boy", "girl", "apple"]
# a gender axis (x) and a royalty axis (y): king - man + woman = queen exactly
TABLE = torch.tensor(
    [[1.0, 0, 0.2], [-1, 0, 0.2], [1, 1, 0], [-1, 1, 0], [1, -0.5, 0.1], [-1, -0.5, 0.1], [0, 0, 1]]
)


def test_word_similarity_is_spearman_over_known_pairs():
    pairs = [("man", "woman", 3.0), ("king", "queen", 2.0), ("man", "apple", 1.0), ("x", "y", 5)]
    figures = word_similarity(WORDS, TABLE, pairs)
    unit = TABLE / TABLE.norm(dim=1, keepdim=True)
    cos = [float(unit[0] @ unit[1]), float(unit[2] @ unit[3]), float(unit[0] @ unit[6])]
    from scipy.stats import spearmanr

    want = spearmanr([3.0, 2.0, 1.0], cos).statistic
    assert figures["spearman"] == pytest.approx(want)
    assert figures["pairs_known"] == 3 and figures["pairs"] == 4


def test_a_constant_table_has_no_ranking():
    figures = word_similarity(
        WORDS, torch.ones(7, 3), [("man", "woman", 1.0), ("king", "queen", 2)]
    )
    assert figures["spearman"] == 0.0


def test_analogies_by_3cosadd_skip_the_question_words_and_count_coverage():
    sections = [
        ("family", [("man", "woman", "king", "queen"), ("man", "king", "woman", "queen")]),
        ("other", [("man", "woman", "boy", "girl"), ("man", "woman", "zebra", "zebras")]),
    ]
    figures = analogy_accuracy(WORDS, TABLE, sections)
    assert figures["analogy_family_accuracy"] == 1.0
    assert figures["analogy_other_accuracy"] == 1.0
    assert figures["analogy_answerable"] == 3 and figures["analogy_questions"] == 4
    # restrict_vocab: only the first 4 words may appear in a question (gensim's rule)
    restricted = analogy_accuracy(WORDS, TABLE, sections, restrict_vocab=4)
    assert restricted["analogy_answerable"] == 2


def test_the_answer_is_never_a_question_word_and_a_tie_is_a_miss():
    # b - a + c lands on c itself (a == b): c is excluded, so the nearest other word answers
    table = torch.tensor([[1.0, 0], [1, 0], [0, 1], [0.1, 1], [0.2, 1]])
    words = ["a", "b", "c", "d", "e"]
    near = analogy_accuracy(words, table, [("s", [("a", "b", "c", "d")])])
    assert near["analogy_accuracy"] == 1.0
    tied = torch.tensor([[1.0, 0], [1, 0], [0, 1], [0.1, 1], [0.1, 1]])
    assert analogy_accuracy(words, tied, [("s", [("a", "b", "c", "d")])])["analogy_accuracy"] == 0


def test_ppmi_vectors_separate_words_by_their_contexts():
    # words 0, 1 share contexts (2, 3); words 4, 5 share contexts (6, 7)
    sentences = [[2, 0, 3], [2, 1, 3], [6, 4, 7], [6, 5, 7]] * 10
    vectors = ppmi_vectors(sentences, size=8, window=1, dim=7)
    unit = vectors / vectors.norm(dim=1, keepdim=True).clamp_min(1e-9)
    assert float(unit[0] @ unit[1]) > 0.9
    assert abs(float(unit[0] @ unit[4])) < 0.1


def test_the_benchmark_files_are_there_and_read():
    # CI installs the `words` extra (gensim): this test must fail, not skip, without it
    assert len(read_word_pairs(benchmark_file(WORDSIM))) == 353
    assert len(read_word_pairs(benchmark_file(SIMLEX))) == 999
    sections = read_analogies(benchmark_file(ANALOGIES))
    assert len(sections) == 14 and sum(len(q) for _, q in sections) == 19544
    assert (
        sections[1][0] == "capital-world"
        and ("boy", "girl", "brother", "sister") in dict(sections)["family"]
    )


def test_a_missing_benchmark_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("SELFSUP_WORD_EVAL_DIR", str(tmp_path))
    with pytest.raises(SelfsupError, match=r"no nothing\.txt found"):
        benchmark_file("nothing.txt")
    (tmp_path / "pairs.tsv").write_text("# a comment\nnot a row\n")
    with pytest.raises(SelfsupError, match="holds no"):
        read_word_pairs(tmp_path / "pairs.tsv")
