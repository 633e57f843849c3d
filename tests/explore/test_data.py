"""A run's explorer data: neighbours equal to `selfsup search`'s, the kNN panel equal to the
run's kNN evaluation, the cache, and every bad input's one clear error."""

import json
import shutil

import numpy as np
import pytest
from explore_fixtures import explorer
from PIL import Image

from selfsup.data import load_data
from selfsup.errors import SelfsupError
from selfsup.explore.data import CACHE_DIR, RunExplorer, check_run
from selfsup.search import build_index, load_index


@pytest.fixture(scope="module")
def digits_index(digits_run, tmp_path_factory):
    """`selfsup index` of the digits run, in a folder of its own."""
    folder = tmp_path_factory.mktemp("explore-digits-index")
    build_index(digits_run, out=folder)
    return load_index(digits_run, index_dir=folder)


def search_without(index, query, sample_id, k):
    """`selfsup search`'s k + 1 hits for a sample's input, the sample itself left out."""
    hits = [(i, s) for i, s in index.search(query, k + 1) if i != sample_id]
    return hits[:k]


def test_neighbours_are_what_search_finds_for_the_sample(digits_explorer, digits_index):
    ex = digits_explorer
    test = load_data("digits").test
    assert ex.start == 1797 - 360 and ex.stop == 1797 and ex.shown_what == "held-out samples"
    for i in (0, 7, 123, 359):
        row = ex.start + i
        assert ex.ids[row] == f"test/{i}"
        mine = ex.neighbours(row, 10)
        theirs = search_without(digits_index, test.images[i], f"test/{i}", 10)
        assert [n["id"] for n in mine] == [i for i, _ in theirs]
        assert [n["score"] for n in mine] == pytest.approx([s for _, s in theirs], abs=1e-4)
        assert all(n["id"] != f"test/{i}" for n in mine)
        label = str(int(test.labels[i]))
        assert [n["wrong"] for n in mine] == [n["label"] != label for n in mine]


def test_the_accuracy_panel_is_the_runs_knn_evaluation(digits_explorer, digits_run):
    panel = digits_explorer.class_accuracy()
    evaluated = json.loads((digits_run / "eval.json").read_text())["selfsup"]["knn_top1"]
    assert panel["available"] and panel["overall"] == pytest.approx(evaluated, abs=1e-6)
    assert sum(panel["count"]) == 360
    assert [row[c] for c, row in enumerate(panel["confusion"])] == panel["correct"]


def test_the_map_payload_and_summary(digits_explorer):
    ex = digits_explorer
    payload = ex.map_payload()
    m = ex.stop - ex.start
    assert len(payload) == 10 * m
    x = np.frombuffer(payload[: 4 * m], "<f4")
    colour = np.frombuffer(payload[8 * m :], "<u2")
    assert np.array_equal(x, ex.xy[:, 0]) and np.array_equal(colour, ex.labels[ex.start :])
    summary = ex.summary()
    assert summary["colour_by"] == "label"
    assert summary["layout"] == "t-SNE (scikit-learn; umap-learn is not installed)"
    assert summary["query"] == {"image": True, "text": False, "series": False}
    png = Image.open(__import__("io").BytesIO(ex.thumbnail(ex.start)))
    assert png.size == (8, 8)


def test_the_cache_is_read_back_and_redone_for_another_encoder(digits_run, digits_explorer, capsys):
    again = explorer(digits_run)
    assert "read the map and neighbours cached" in capsys.readouterr().err
    assert np.array_equal(again.xy, digits_explorer.xy)
    assert np.array_equal(again.knn_ids, digits_explorer.knn_ids)
    assert again.class_accuracy() == digits_explorer.class_accuracy()
    meta = digits_run / CACHE_DIR / "own" / "meta.json"
    saved = json.loads(meta.read_text())
    stale = {**saved, "key": {**saved["key"], "encoder": [0, 0]}}
    meta.write_text(json.dumps(stale))
    explorer(digits_run)
    assert "made for another encoder or data" in capsys.readouterr().err
    assert json.loads(meta.read_text())["key"] == saved["key"]


def test_text_neighbours_are_what_search_finds_for_the_sentence(text_explorer, text_run, tmp_path):
    ex = text_explorer
    build_index(text_run, out=tmp_path)
    index = load_index(text_run, index_dir=tmp_path)
    assert ex.start == 0 and ex.summary()["colour_by"] == "k-means cluster"
    for row in (0, 20, 41):
        sentence = ex.ids[row]
        mine = ex.neighbours(row, 5)
        theirs = search_without(index, sentence, sentence, 5)
        assert [n["id"] for n in mine] == [i for i, _ in theirs]
    reply = ex.query(text="a cat sleeps on the sofa", k=5)
    assert [n["id"] for n in reply["neighbours"]] == [
        i for i, _ in index.search("a cat sleeps on the sofa", 5)
    ]
    assert ex.class_accuracy() == {
        "available": False,
        "why": "no labels: the map is coloured by k-means clusters",
    }


def test_an_uploaded_image_finds_what_search_finds(digits_explorer, digits_index, tmp_path):
    test = load_data("digits").test
    path = tmp_path / "seven.png"
    Image.fromarray(test.images[7, 0].numpy()).save(path)
    reply = digits_explorer.query(upload=path.read_bytes(), name="seven.png", k=5)
    assert [n["id"] for n in reply["neighbours"]] == [i for i, _ in digits_index.search(path, 5)]
    assert reply["neighbours"][0]["id"] == "test/7"
    assert len(reply["xy"]) == 2


def test_bad_queries_get_one_clear_error(digits_explorer, text_explorer):
    with pytest.raises(SelfsupError, match=r"cannot decode query image notes\.png"):
        digits_explorer.query(upload=b"not an image at all", name="notes.png")
    with pytest.raises(SelfsupError, match="a sentence cannot be searched in this run"):
        digits_explorer.query(text="a photo of a seven")
    with pytest.raises(SelfsupError, match="text encoder: type a sentence"):
        text_explorer.query(upload=b"\x89PNG", name="x.png")
    with pytest.raises(SelfsupError, match="type a sentence"):
        text_explorer.query(text="   ")
    with pytest.raises(SelfsupError, match="no sample 'train/99999'"):
        digits_explorer.row(sample_id="train/99999")
    with pytest.raises(SelfsupError, match="out of range"):
        digits_explorer.row(row=10**6)


def test_runs_that_cannot_be_explored_are_refused_before_any_data(digits_run, tmp_path):
    with pytest.raises(SelfsupError, match="not a run directory"):
        check_run(tmp_path)
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    shutil.copy(digits_run / "config.json", unfinished / "config.json")
    with pytest.raises(SelfsupError, match="no exported encoder"):
        RunExplorer(unfinished)
    words = tmp_path / "words"
    words.mkdir()
    shutil.copy(digits_run / "config.json", words / "config.json")
    (words / "encoder.json").write_text(json.dumps({"kind": "word-vectors"}))
    with pytest.raises(SelfsupError, match="word-vector run"):
        check_run(words)


def test_data_of_another_modality_is_refused(digits_run):
    with pytest.raises(SelfsupError, match="holds text samples but the run's encoder reads image"):
        RunExplorer(digits_run, data="text:" + __file__)


def test_a_series_run_shows_sparklines_and_takes_npy_queries(series_run, tmp_path):
    series_run, waves = series_run
    ex = explorer(series_run)
    build_index(series_run, out=tmp_path)
    index = load_index(series_run, index_dir=tmp_path)
    sample = ex.sample(ex.start)
    test = load_data(f"series:{waves}").test
    assert sample["series"][0] == pytest.approx(test.series[0, 0].tolist(), abs=1e-4)
    assert ex.summary()["query"] == {"image": False, "text": False, "series": True}
    np.save(tmp_path / "wave.npy", test.series[3].numpy())
    reply = ex.query(upload=(tmp_path / "wave.npy").read_bytes(), name="wave.npy", k=5)
    assert [n["id"] for n in reply["neighbours"]] == [
        i for i, _ in index.search(tmp_path / "wave.npy", 5)
    ]
    assert reply["neighbours"][0]["id"] == "test/3"
    with pytest.raises(SelfsupError, match=r"wave\.png is neither a \.npy nor a \.wav file"):
        ex.query(upload=b"xx", name="wave.png")
    theirs = search_without(index, test.series[3:4].numpy(), "test/3", 5)
    assert [n["id"] for n in ex.neighbours(ex.start + 3, 5)] == [i for i, _ in theirs]


def test_a_clip_run_takes_sentences_and_images_and_shows_captions(clip_run, tmp_path):
    ex = explorer(clip_run)
    build_index(clip_run, out=tmp_path)
    index = load_index(clip_run, index_dir=tmp_path)
    assert ex.summary()["query"] == {"image": True, "text": True, "series": False}
    card = ex.sample(ex.start)
    assert card["image"] and card["text"] == index.text_of(ex.ids[ex.start])
    reply = ex.query(text="a photo of a red.", k=5)
    assert [n["id"] for n in reply["neighbours"]] == [
        i for i, _ in index.search("a photo of a red.", 5)
    ]
    picture = tmp_path / "square.png"
    picture.write_bytes(ex.thumbnail(ex.start))
    reply = ex.query(upload=picture.read_bytes(), name="square.png", k=5)
    assert [n["id"] for n in reply["neighbours"]] == [i for i, _ in index.search(picture, 5)]
