"""`hf:DIR`: Hugging Face datasets on disk (save_to_disk folders and parquet files) that the
tests write themselves: images with labels, sentences, image-caption pairs; named columns, the
held-out split, streamed text, the store writer's items, bad input, and short training runs."""

import io
import json
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

import selfsup
import selfsup.data.hf as hf
from selfsup.cli import main
from selfsup.data import load_data
from selfsup.data.decode import decode_image_bytes
from selfsup.data.images import ImageData
from selfsup.data.lines import LazyLines
from selfsup.data.pairs import PairData
from selfsup.data.registry import source_modality
from selfsup.data.resize import resize_square
from selfsup.data.text import TextData
from selfsup.errors import SelfsupError

datasets = pytest.importorskip("datasets")

CLASSES = ["zero", "one", "two"]
SENTENCES = [
    "a man is playing a guitar",
    "a woman is slicing an onion",
    "the cat sits on the mat",
    "a dog runs in the park",
    "children are playing football outside",
    "the stock market fell sharply today",
]


def pixels(n: int, seed: int, size: int = 8, channels: int = 3) -> np.ndarray:
    """n random uint8 images (N, H, W, C) whose class shows in the brightness."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size, channels), dtype=np.uint8)


def png(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(out, format="PNG")
    return out.getvalue()


def image_set(n: int, seed: int, image_col="image", label_col="label", sizes=None):
    """A Dataset of PNG images (datasets.Image) with ClassLabel labels, and the pixels."""
    arrays = pixels(n, seed)
    cells = [png(a) for a in arrays]
    if sizes is not None:  # some images at another size
        cells = [png(pixels(1, seed + i, size)[0]) for i, size in enumerate(sizes)]
    features = datasets.Features(
        {image_col: datasets.Image(), label_col: datasets.ClassLabel(names=CLASSES)}
    )
    rows = {image_col: [{"bytes": c, "path": None} for c in cells], label_col: labels_of(n)}
    return datasets.Dataset.from_dict(rows, features=features), arrays


def labels_of(n: int) -> list[int]:
    return [i % len(CLASSES) for i in range(n)]


def as_tensor(arrays: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(arrays).permute(0, 3, 1, 2).contiguous()


@pytest.fixture(scope="module")
def image_dict(tmp_path_factory):
    """A DatasetDict (train 30, test 9) saved with save_to_disk: columns img, fine_label."""
    root = tmp_path_factory.mktemp("hf") / "images"
    train, train_px = image_set(30, 0, "img", "fine_label")
    test, test_px = image_set(9, 1, "img", "fine_label")
    datasets.DatasetDict(train=train, test=test).save_to_disk(str(root))
    return root, train_px, test_px


@pytest.fixture(scope="module")
def text_set(tmp_path_factory):
    """One Dataset (no test split) of sentences with labels and a blank row, saved to disk."""
    root = tmp_path_factory.mktemp("hf") / "text"
    sentences = [*(SENTENCES * 5), "   "]
    features = datasets.Features(
        {"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=CLASSES)}
    )
    ds = datasets.Dataset.from_dict(
        {"sentence": sentences, "label": labels_of(len(sentences))}, features=features
    )
    ds.save_to_disk(str(root))
    return root, sentences


def test_a_saved_dataset_dict_is_images_with_labels_and_its_test_split(image_dict):
    root, train_px, test_px = image_dict
    spec = f"hf:{root}#image=img,label=fine_label"
    assert source_modality(spec) == "image"
    splits = load_data(spec)
    assert isinstance(splits.train, ImageData) and isinstance(splits.test, ImageData)
    assert torch.equal(splits.train.images, as_tensor(train_px))
    assert torch.equal(splits.test.images, as_tensor(test_px))
    assert splits.train.labels.tolist() == labels_of(30)
    assert splits.train.labels.dtype == torch.int64
    assert splits.train.classes == CLASSES
    assert splits.test_from == "its test split"


def test_default_columns_are_found_and_printed(tmp_path, capsys):
    ds, arrays = image_set(12, 3)
    ds.save_to_disk(str(tmp_path / "d"))
    splits = load_data(f"hf:{tmp_path / 'd'}")
    assert torch.equal(splits.train.images, as_tensor(arrays)) and splits.test is None
    out = capsys.readouterr().out
    assert "image from column 'image'" in out and "label from column 'label' (3 classes)" in out


def test_parquet_files_laid_out_as_the_hub_lays_them_out(tmp_path, image_dict):
    root, train_px, test_px = image_dict
    saved = datasets.load_from_disk(str(root))
    folder = tmp_path / "pq" / "data"
    saved["train"].select(range(20)).to_parquet(str(folder / "train-00000-of-00002.parquet"))
    saved["train"].select(range(20, 30)).to_parquet(str(folder / "train-00001-of-00002.parquet"))
    saved["test"].to_parquet(str(folder / "test-00000-of-00001.parquet"))
    spec = f"hf:{tmp_path / 'pq'}#image=img,label=fine_label"
    assert source_modality(spec) == "image"
    splits = load_data(spec)
    assert torch.equal(splits.train.images, as_tensor(train_px))
    assert torch.equal(splits.test.images, as_tensor(test_px))
    assert splits.train.classes == CLASSES  # the ClassLabel survives in the parquet metadata
    one = load_data(f"hf:{folder / 'test-00000-of-00001.parquet'}#image=img,label=fine_label")
    assert torch.equal(one.train.images, as_tensor(test_px)) and one.test is None


def test_validation_is_the_held_out_split_when_there_is_no_test(tmp_path):
    train, _ = image_set(10, 0)
    val, val_px = image_set(4, 5)
    datasets.DatasetDict(train=train, validation=val).save_to_disk(str(tmp_path / "d"))
    splits = load_data(f"hf:{tmp_path / 'd'}")
    assert torch.equal(splits.test.images, as_tensor(val_px))
    assert splits.test_from == "its validation split"


def test_mixed_sizes_need_image_size_and_are_resized_with_it(tmp_path):
    ds, _ = image_set(4, 0, sizes=[8, 8, 12, 8])
    ds.save_to_disk(str(tmp_path / "d"))
    with pytest.raises(SelfsupError, match=r"different sizes.*--image-size N"):
        load_data(f"hf:{tmp_path / 'd'}")
    splits = load_data(f"hf:{tmp_path / 'd'}", image_size=6)
    assert splits.train.images.shape == (4, 3, 6, 6)
    big = as_tensor(pixels(1, 2, 12))
    assert torch.equal(splits.train.images[2], resize_square(big, 6)[0])


def test_sentences_with_labels_and_blank_rows_left_out(text_set):
    root, sentences = text_set
    spec = f"hf:{root}"
    assert source_modality(spec) == "text"
    splits = load_data(spec)
    assert isinstance(splits.train, TextData) and splits.test is None
    assert splits.train.sentences == SENTENCES * 5  # the blank last row is left out
    assert splits.train.labels.tolist() == labels_of(len(sentences))[:-1]
    assert splits.train.classes == CLASSES


def test_a_streamed_text_column_reads_rows_from_arrow_on_demand(text_set):
    root, _ = text_set
    eager = load_data(f"hf:{root}").train
    lazy = load_data(f"hf:{root}", stream_text="true").train
    assert isinstance(lazy.sentences, hf.ArrowLines) and isinstance(lazy.sentences, LazyLines)
    assert list(lazy.sentences) == eager.sentences
    assert torch.equal(lazy.labels, eager.labels)
    index = torch.tensor([7, 0, 3])
    assert lazy.subset(index).sentences.take([0, 1, 2]) == eager.subset(index).sentences
    copy = pickle.loads(pickle.dumps(lazy.sentences))  # reopens the dataset, copies no column
    assert copy._column is None and copy[:4] == eager.sentences[:4]


def test_an_unlabelled_streamed_column_holds_out_its_last_rows(tmp_path):
    rows = [f"sentence number {i}" for i in range(50)]
    datasets.Dataset.from_dict({"text": rows}).save_to_disk(str(tmp_path / "d"))
    splits = load_data(f"hf:{tmp_path / 'd'}", stream_text="true")
    assert list(splits.train.sentences) == rows[:45]
    assert list(splits.test.sentences) == rows[45:]


def test_image_caption_pairs(tmp_path):
    arrays = pixels(6, 0)
    features = datasets.Features({"image": datasets.Image(), "caption": datasets.Value("string")})
    rows = {
        "image": [{"bytes": png(a), "path": None} for a in arrays],
        "caption": [f"  a photo  of {i} " for i in range(5)] + [""],
    }
    datasets.Dataset.from_dict(rows, features=features).save_to_disk(str(tmp_path / "d"))
    spec = f"hf:{tmp_path / 'd'}"
    assert source_modality(spec) == "pair"
    with pytest.warns(UserWarning, match="1 train image.*empty caption"):
        splits = load_data(spec)
    assert isinstance(splits.train, PairData) and splits.train.labels is None
    assert splits.train.captions == [f"a photo of {i}" for i in range(5)]
    assert torch.equal(splits.train.images, as_tensor(arrays[:5]))
    assert source_modality(f"{spec}#image=image") == "image"


def test_string_labels_become_sorted_classes_shared_by_the_test_split(tmp_path):
    features = datasets.Features(
        {"text": datasets.Value("string"), "kind": datasets.Value("string")}
    )

    def part(kinds):
        return datasets.Dataset.from_dict(
            {"text": SENTENCES[: len(kinds)], "kind": kinds}, features=features
        )

    dd = datasets.DatasetDict(train=part(["b", "a", "c", "a"]), test=part(["c", "a"]))
    dd.save_to_disk(str(tmp_path / "d"))
    splits = load_data(f"hf:{tmp_path / 'd'}#text=text,label=kind")
    assert splits.train.classes == ["a", "b", "c"]
    assert splits.train.labels.tolist() == [1, 0, 2, 0] and splits.test.labels.tolist() == [2, 0]


def test_the_store_writers_items_decode_to_the_in_memory_pixels(tmp_path, image_dict):
    root, _, _ = image_dict
    saved = datasets.load_from_disk(str(root))
    saved["train"].to_parquet(str(tmp_path / "pq" / "train-00000-of-00001.parquet"))
    saved["test"].to_parquet(str(tmp_path / "pq" / "test-00000-of-00001.parquet"))
    for folder in (root, tmp_path / "pq"):
        spec = f"{folder}#image=img,label=fine_label"
        items = pickle.loads(pickle.dumps(hf.hf_image_items(spec)))  # crosses to processes
        memory = load_data(f"hf:{spec}", image_size=4)
        assert set(items) == {"train", "test"}
        for name, split in (("train", memory.train), ("test", memory.test)):
            part = items[name]
            assert len(part) == len(split) and part.classes == CLASSES
            assert part.labels == split.labels.tolist()
            assert part.name(0) == f"{name}/0"
            decoded = torch.stack(
                [
                    resize_square(decode_image_bytes(part.read(i), part.name(i)), 4)
                    for i in range(len(part))
                ]
            )
            assert torch.equal(decoded, split.images)


def test_the_store_writer_refuses_text(text_set):
    with pytest.raises(SelfsupError, match="a store holds images"):
        hf.hf_image_items(str(text_set[0]))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("{missing}", "does not exist"),
        ("{empty}", "neither a dataset folder written by save_to_disk.*nor parquet files"),
        (
            "{images}#image=picture",
            r"no column 'picture'; its columns are: img \(Image\), fine_label",
        ),
        ("{images}#image=fine_label", "column 'fine_label' holds ClassLabel, not images"),
        ("{images}#text=img", "column 'img' holds Image, not texts"),
        ("{images}#image", "cannot read 'image'.*write ROLE=COLUMN"),
        ("{images}#colour=img", "unknown role 'colour'"),
        ("{images}#image=img,image=img", "named twice"),
    ],
)
def test_bad_input_is_one_clear_error_before_any_image_is_decoded(
    tmp_path, image_dict, monkeypatch, spec, message
):
    def never(*args):
        raise AssertionError("an image was decoded before the error")

    monkeypatch.setattr(hf, "decode_image_bytes", never)
    (tmp_path / "empty").mkdir()
    spec = "hf:" + spec.format(
        missing=tmp_path / "nope", empty=tmp_path / "empty", images=image_dict[0]
    )
    with pytest.raises(SelfsupError, match=message):
        source_modality(spec)
    with pytest.raises(SelfsupError, match=message):
        load_data(spec)


def test_a_labelled_set_without_a_test_split_gets_the_runs_held_out_split(tmp_path):
    """Image pretraining through the command line; the run carves (and records) 20 %."""
    ds, _ = image_set(40, 0)
    ds.save_to_disk(str(tmp_path / "d"))
    run = tmp_path / "run"
    argv = ["pretrain", "--data", f"hf:{tmp_path / 'd'}", "--out", str(run), "--epochs", "1"]
    argv += ["--batch-size", "16", "--no-progress", "--eval-every", "0", "--protocols", "knn"]
    argv += ["--set", "train.report=false", "--set", "method.proj_hidden_dim=32"]
    assert main(argv) == 0
    held = json.loads((run / "heldout.json").read_text())
    assert held["count"] == 40 and len(held["test"]) == 8
    metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics if m["kind"] == "train"] == [1, 2]  # 32 rows, batch 16
    assert 0 <= json.loads((run / "eval.json").read_text())["selfsup"]["knn_top1"] <= 1


def test_text_pretraining_on_a_named_column(tmp_path, text_set, tiny_bert_folder):
    run = tmp_path / "run"
    argv = ["pretrain", "--data", f"hf:{text_set[0]}#text=sentence,label=none", "--out", str(run)]
    argv += ["--method", "simcse", "--epochs", "1", "--batch-size", "10", "--no-progress"]
    argv += ["--eval-every", "0", "--protocols", "geometry", "--set", "train.report=false"]
    argv += ["--set", f"model.path={tiny_bert_folder}", "--set", "train.amp=false"]
    argv += ["--set", "train.log_every=1"]
    assert main(argv) == 0
    metrics = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [m["loss"] for m in metrics if m["kind"] == "train"]
    assert len(losses) == 3 and all(np.isfinite(losses))  # 30 sentences, batch 10


@pytest.fixture(scope="module")
def tiny_bert_folder(tmp_path_factory):
    from text.text_fixtures import make_tiny_bert

    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def test_an_image_column_of_paths_reads_the_files_beside_the_dataset(tmp_path):
    arrays = pixels(3, 4)
    (tmp_path / "d" / "files").mkdir(parents=True)
    for i, a in enumerate(arrays):
        (tmp_path / "d" / "files" / f"{i}.png").write_bytes(png(a))
    rows = {"file": [f"files/{i}.png" for i in range(3)], "text": ["a", "b", "c"]}
    datasets.Dataset.from_dict(rows).to_parquet(str(tmp_path / "d" / "rows.parquet"))
    assert source_modality(f"hf:{tmp_path / 'd'}") == "text"  # a path column is named, not found
    splits = load_data(f"hf:{tmp_path / 'd'}#image=file")
    assert torch.equal(splits.train.images, as_tensor(arrays))


def test_an_unlabelled_test_split_is_left_aside_for_the_runs_own_carve(tmp_path):
    features = datasets.Features(
        {"text": datasets.Value("string"), "label": datasets.ClassLabel(names=CLASSES)}
    )
    train = datasets.Dataset.from_dict({"text": SENTENCES, "label": labels_of(6)}, features)
    test = datasets.Dataset.from_dict({"text": SENTENCES[:2], "label": [-1, -1]}, features)
    datasets.DatasetDict(train=train, test=test).save_to_disk(str(tmp_path / "d"))
    assert load_data(f"hf:{tmp_path / 'd'}").test is None
    partly = datasets.Dataset.from_dict({"text": SENTENCES, "label": [0, -1, 1, 2, 0, 1]}, features)
    partly.save_to_disk(str(tmp_path / "p"))
    with pytest.raises(SelfsupError, match="1 rows of its train split have no label"):
        load_data(f"hf:{tmp_path / 'p'}")


def test_a_set_too_large_for_memory_is_refused_after_one_image(tmp_path, monkeypatch):
    ds, _ = image_set(5, 0)
    ds.save_to_disk(str(tmp_path / "d"))
    decoded = []

    def counted(data, name):
        decoded.append(name)
        return decode_image_bytes(data, name)

    monkeypatch.setattr(hf, "decode_image_bytes", counted)
    monkeypatch.setattr(hf, "MEMORY_SHARE", 1e-12)
    with pytest.raises(SelfsupError, match=r"selfsup prepare hf:.* --out STORE"):
        load_data(f"hf:{tmp_path / 'd'}")
    assert len(decoded) == 1


def test_a_run_directory_inside_the_dataset_is_refused(tmp_path):
    ds, _ = image_set(12, 0)
    ds.save_to_disk(str(tmp_path / "d"))
    spec = f"hf:{tmp_path / 'd'}#image=image"
    argv = ["pretrain", "--data", spec, "--out", str(tmp_path / "d" / "run"), "--epochs", "1"]
    with pytest.raises(SelfsupError, match="lies inside the training data"):
        selfsup.pretrain(selfsup.make_config(**{"data.source": spec}), tmp_path / "d" / "run")
    assert main(argv) == 2
    assert not (tmp_path / "d" / "run").exists()


def test_a_binary_column_holds_images_only_when_named(tmp_path):
    arrays = pixels(3, 6)
    rows = {"blob": [png(a) for a in arrays], "text": ["a", "b", "c"]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "d"))
    assert source_modality(f"hf:{tmp_path / 'd'}") == "text"
    splits = load_data(f"hf:{tmp_path / 'd'}#image=blob")
    assert torch.equal(splits.train.images, as_tensor(arrays))


def test_prepare_writes_an_hf_image_column_into_a_store_as_memory_reads_it(tmp_path, image_dict):
    from selfsup.data.prepare_source import prepare

    root, _, _ = image_dict
    spec = f"{root}#image=img,label=fine_label"
    prepare(f"hf:{spec}", tmp_path / "store", 4, workers=1, progress=False)
    stored = load_data(f"store:{tmp_path / 'store'}")
    memory = load_data(f"hf:{spec}", image_size=4)
    for name in ("train", "test"):
        a, b = getattr(stored, name), getattr(memory, name)
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert stored.train.classes == CLASSES
