"""--format word2vec: gensim reads the table back, every vector equal, every word in order."""

import numpy as np
import pytest

import selfsup
from selfsup.errors import SelfsupError
from selfsup.exports.export import export

CORPUS = [
    "the king ruled the land and the queen ruled with him",
    "a man and a woman walked to the castle",
    "the queen spoke to the king about the land",
    "a woman is a queen and a man is a king",
]


@pytest.fixture(scope="module")
def word_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("w2v-export")
    corpus = tmp / "corpus.txt"
    corpus.write_text("\n".join(CORPUS * 5) + "\n")
    cfg = selfsup.make_config(
        **{
            "data.source": f"text:{corpus}",
            "method.name": "word2vec",
            "method.dim": 8,
            "method.min_count": 1,
            "method.sample": 0.0,
            "train.epochs": 1,
            "train.batch_size": 8,
            "train.progress": False,
            "train.eval_every": 0,
            "eval.protocols": "",
            "train.report": False,
        }
    )
    selfsup.pretrain(cfg, tmp / "run")
    return tmp / "run"


def test_gensim_reads_every_vector_back_exactly(word_run, tmp_path):
    gensim = pytest.importorskip("gensim")
    folder = export(word_run, "word2vec", tmp_path / "w2v")
    vectors = gensim.models.KeyedVectors.load_word2vec_format(str(folder / "vectors.txt"))
    table = selfsup.load(word_run)
    assert vectors.index_to_key == list(table.vocabulary.words)  # most frequent first
    np.testing.assert_array_equal(vectors.vectors, table.vectors.weight.detach().numpy())
    # a sentence as the run embeds it: the average of its words' vectors
    want = selfsup.embed(word_run, "the king ruled")[0]
    np.testing.assert_allclose(vectors[["the", "king", "ruled"]].mean(0), want, rtol=1e-6)


def test_other_kinds_are_refused_naming_the_formats_that_fit(digits_run, tmp_path):
    with pytest.raises(SelfsupError, match=r"kind 'image'.*--format onnx"):
        export(digits_run, "word2vec", tmp_path / "w2v")
