"""Text sources on files written in their real formats, and on the real data when present."""

from pathlib import Path

import pytest
from shared_data import stsb
from text_fixtures import CORPUS, write_sts

from selfsup.data import load_data
from selfsup.errors import SelfsupError


def test_text_file_one_sentence_a_line(tmp_path):
    file = tmp_path / "s.txt"
    file.write_text("first sentence\n\n  second one  \n")
    splits = load_data(f"text:{file}")
    assert splits.train.sentences == ["first sentence", "second one"] and splits.test is None


def test_text_file_errors(tmp_path):
    (tmp_path / "empty.txt").write_text("\n \n")
    with pytest.raises(SelfsupError, match="no sentences"):
        load_data(f"text:{tmp_path / 'empty.txt'}")
    with pytest.raises(SelfsupError, match="does not exist"):
        load_data(f"text:{tmp_path / 'nope.txt'}")
    (tmp_path / "latin.txt").write_bytes("ok\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(SelfsupError, match="line 2"):
        load_data(f"text:{tmp_path / 'latin.txt'}")


def test_csv_and_tsv_columns(tmp_path):
    (tmp_path / "a.csv").write_text('id,text\n1,"hello, world"\n2,second\n')
    assert load_data(f"csv:{tmp_path / 'a.csv'}#text").train.sentences == [
        "hello, world",
        "second",
    ]
    (tmp_path / "b.tsv").write_text("x\tone sentence\ny\tanother\n")
    assert load_data(f"csv:{tmp_path / 'b.tsv'}#1").train.sentences == ["one sentence", "another"]
    with pytest.raises(SelfsupError, match=r"no column 'body'.*id, text"):
        load_data(f"csv:{tmp_path / 'a.csv'}#body")
    with pytest.raises(SelfsupError, match="FILE#COLUMN"):
        load_data(f"csv:{tmp_path / 'a.csv'}")


def test_sts_pairs_share_distinct_sentences(tmp_path):
    splits = load_data(f"sts:{write_sts(tmp_path / 'sts')}")
    train = splits.train
    assert len(train.pairs) == 2 * len(CORPUS)
    assert len(set(train.sentences)) == len(train.sentences)
    first = train.sentences[int(train.pairs.first[0])]
    second = train.sentences[int(train.pairs.second[0])]
    assert (first, second) == (CORPUS[0], CORPUS[1])
    assert train.sentences[int(train.pairs.second[1])] == CORPUS[0] + ' "quoted"'
    assert set(train.pairs.genres) == {"main-news", "main-captions"}
    assert splits.test is not None and len(splits.test.pairs) == 2 * len(CORPUS)


def test_real_sts_benchmark():
    splits = load_data(f"sts:{stsb()}")
    assert len(splits.train.pairs) == 5749 and len(splits.test.pairs) == 1379
    assert float(splits.test.pairs.scores.min()) >= 0 and float(splits.test.pairs.scores.max()) <= 5


def test_wordnet_glosses_and_examples(tmp_path):
    (tmp_path / "data.noun").write_text(
        "  1 This software and database is being provided\n"
        "00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 | that which is perceived; "
        '"the entity was real"\n'
    )
    sentences = load_data(f"wordnet:{tmp_path}").train.sentences
    assert sentences == ["that which is perceived", "the entity was real"]
    with pytest.raises(SelfsupError, match="wordnet-base"):
        load_data(f"wordnet:{tmp_path / 'none'}")


@pytest.mark.skipif(not Path("/usr/share/wordnet/data.noun").is_file(), reason="no wordnet-base")
def test_real_wordnet():
    sentences = load_data("wordnet").train.sentences
    assert len(sentences) > 100_000 and all(s and '"' not in s[:1] for s in sentences[:1000])


def test_subset_keeps_the_pairs_whose_sentences_it_keeps(tmp_path):
    import torch

    train = load_data(f"sts:{write_sts(tmp_path / 'sts')}").train
    part = train.subset(torch.arange(0, len(train), 2))
    for a, b in zip(part.pairs.first.tolist(), part.pairs.second.tolist(), strict=True):
        original = [
            i
            for i in range(len(train.pairs))
            if train.sentences[int(train.pairs.first[i])] == part.sentences[a]
            and train.sentences[int(train.pairs.second[i])] == part.sentences[b]
        ]
        assert original
    assert len(part.pairs.genres) == len(part.pairs)
