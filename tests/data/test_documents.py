"""The docs: source: sentence splitting, consecutive pairs that never cross a document, whole
documents held out, dictd dictionaries, and its errors."""

import gzip

import pytest

import selfsup
from selfsup.data import load_data
from selfsup.data.documents import dictionary_documents, split_sentences


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("One. Two! Three? Four", ["One.", "Two!", "Three?", "Four"]),
        ('He said "Go." Then he left.', ['He said "Go."', "Then he left."]),
        (
            "Dr. Smith met J. Doe, e.g. at home. It rained.",
            ["Dr. Smith met J. Doe, e.g. at home.", "It rained."],
        ),
        ("1. (Anat.) The belly. Also, the cavity.", ["1. (Anat.) The belly.", "Also, the cavity."]),
        ("See (Mil. Dict.) for more. Next one.", ["See (Mil. Dict.) for more.", "Next one."]),
        ("no capital. after this", ["no capital. after this"]),
        ("It ended in 1990. The next", ["It ended in 1990.", "The next"]),
        ("  spaced \n  out.  Yes.", ["spaced out.", "Yes."]),
        ("", []),
    ],
)
def test_split_sentences(text, want):
    assert split_sentences(text) == want


def docs_file(tmp_path, docs, sep="\n"):
    path = tmp_path / "docs.txt"
    path.write_text(sep.join(docs) + "\n")
    return path


def test_pairs_are_consecutive_within_documents_and_documents_are_held_out_whole(tmp_path):
    docs = [f"Doc {k} one. Doc {k} two. Doc {k} three." for k in range(20)]
    splits = load_data(f"docs:{docs_file(tmp_path, docs)}")
    for data in (splits.train, splits.test):
        for a, b in zip(data.sentences, data.positives, strict=True):
            ka, ia = a.split()[1], a.split()[2]
            kb, ib = b.split()[1], b.split()[2]
            assert ka == kb  # never across documents
            assert (ia, ib) in (("one.", "two."), ("two.", "three."))
    held = {s.split()[1] for s in splits.test.sentences}
    assert held == {"9", "19"}
    assert not held & {s.split()[1] for s in splits.train.sentences}
    assert len(splits.train) == 18 * 2


def test_paragraphs_separated_by_blank_lines(tmp_path):
    path = docs_file(tmp_path, ["First line. Goes\non here.", "Other doc. Two."], sep="\n\n")
    train = load_data(f"docs:{path}").train
    assert list(zip(train.sentences, train.positives, strict=True)) == [
        ("First line.", "Goes on here."),
        ("Other doc.", "Two."),
    ]


def test_a_dictd_dictionary_gives_its_definition_paragraphs(tmp_path):
    text = (
        'Abdomen \\Ab*do"men\\, n. [L. abdomen (a word of uncertain\n'
        "   etymol.): cf. F. abdomen.]\n"
        "   1. (Anat.) The belly. Also, the {cavity} of the belly.\n"
        "   [1913 Webster]\n\n"
        "   2. (Zool.) The posterior section. It is behind.\n"
        "   [1913 Webster]\n"
    )
    assert dictionary_documents(text) == [
        "1. (Anat.) The belly. Also, the cavity of the belly.",
        "2. (Zool.) The posterior section. It is behind.",
    ]
    path = tmp_path / "tiny.dict.dz"
    path.write_bytes(gzip.compress(text.encode()))
    train = load_data(f"docs:{path}").train
    assert train.sentences == ["1. (Anat.) The belly.", "2. (Zool.) The posterior section."]


def test_an_empty_file_is_refused(tmp_path):
    path = tmp_path / "empty.txt"
    path.write_text("\n \n")
    with pytest.raises(selfsup.SelfsupError, match="holds no documents"):
        load_data(f"docs:{path}")


def test_documents_of_one_sentence_are_refused(tmp_path):
    path = docs_file(tmp_path, ["Only one sentence here.", "And one here"])
    with pytest.raises(selfsup.SelfsupError, match="two sentences"):
        load_data(f"docs:{path}")


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(selfsup.SelfsupError, match="does not exist"):
        load_data(f"docs:{tmp_path / 'nope.txt'}")
