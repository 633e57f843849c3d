"""The memory-mapped image store, read side: bad stores refused before training, training on a
store (the same weights as the same images in memory, exact resume), and the process's own
memory bounded whatever the store's size."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from method_harness import FAST, assert_config_resumes_exactly
from safetensors.torch import load_file

import selfsup
from selfsup.data import load_data
from selfsup.data.store import StoreIndex, write_index
from selfsup.errors import SelfsupError

# 96 training rows: 3 steps an epoch
SMALL = FAST | {"train.batch_size": 32, "train.epochs": 2}


def make_store(
    folder: Path,
    n_train: int = 96,
    n_test: int = 32,
    size: int = 12,
    channels: int = 3,
    labelled: bool = True,
    files: bool = True,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """A small store in `folder` with numpy alone (as `selfsup prepare` lays it out): random
    pixels whose mean depends on the class, so that labels mean something. Returns
    (images, labels) as written."""
    folder.mkdir(parents=True, exist_ok=True)
    n = n_train + n_test
    rng = np.random.default_rng(seed)
    labels = np.arange(n, dtype=np.int64) % 3
    images = rng.integers(0, 160, size=(n, channels, size, size), dtype=np.uint8)
    images += (labels * 40).astype(np.uint8)[:, None, None, None]
    images.tofile(folder / "images.u8")
    if labelled:
        np.save(folder / "labels.npy", labels)
    if files:
        (folder / "files.txt").write_text("".join(f"img{i}.png\n" for i in range(n)))
    splits = {"train": (0, n_train)} | ({"test": (n_train, n)} if n_test else {})
    write_index(
        folder,
        StoreIndex(
            shape=(n, channels, size, size),
            splits=splits,
            source="folder:somewhere",
            fingerprint="test",
            labelled=labelled,
            classes=["a", "b", "c"] if labelled else None,
        ),
    )
    return images, labels


def edit_index(folder: Path, **changes) -> None:
    path = folder / "index.json"
    d = json.loads(path.read_text())
    d.update(changes)
    path.write_text(json.dumps(d))


def refused(folder: Path, *words: str, **settings) -> str:
    with pytest.raises(SelfsupError) as err:
        load_data(f"store:{folder}", **settings)
    message = str(err.value)
    for word in words:
        assert word in message, message
    return message


def test_a_store_opens_as_views_of_its_memory_map(tmp_path):
    images, labels = make_store(tmp_path / "s")
    splits = load_data(f"store:{tmp_path / 's'}")
    assert splits.train.memory_mapped and splits.test.memory_mapped
    assert torch.equal(splits.train.images, torch.from_numpy(images[:96]))
    assert torch.equal(splits.test.labels, torch.from_numpy(labels[96:]))
    assert splits.train.classes == ["a", "b", "c"]
    # the test rows are the same map, right after the train rows: nothing was copied
    start = splits.train.images.data_ptr()
    assert splits.test.images.data_ptr() == start + 96 * 3 * 12 * 12


# --- bad input: each one clear error, from sizes and the index alone ---


@pytest.mark.parametrize("change", [-1, +1, -432])
def test_images_file_of_another_size_is_refused(tmp_path, change):
    make_store(tmp_path / "s")
    path = tmp_path / "s" / "images.u8"
    data = path.read_bytes()
    path.write_bytes(data[:change] if change < 0 else data + b"\0" * change)
    refused(tmp_path / "s", "truncated or its files do not belong together", "rebuild")


def test_missing_images_file_is_refused(tmp_path):
    make_store(tmp_path / "s")
    (tmp_path / "s" / "images.u8").unlink()
    refused(tmp_path / "s", "is missing")


@pytest.mark.parametrize(
    "labels, words",
    [
        (np.zeros(127, dtype=np.int64), ["(127,)", "int64 (128,)"]),
        (np.zeros(128, dtype=np.int32), ["int32"]),
        (np.full(128, 3, dtype=np.int64), ["labels from 3 to 3", "3 classes"]),
    ],
)
def test_labels_that_do_not_fit_the_index_are_refused(tmp_path, labels, words):
    make_store(tmp_path / "s")
    np.save(tmp_path / "s" / "labels.npy", labels)
    refused(tmp_path / "s", *words, "rebuild")


def test_unreadable_labels_are_refused(tmp_path):
    make_store(tmp_path / "s")
    (tmp_path / "s" / "labels.npy").write_bytes(b"not numpy")
    refused(tmp_path / "s", "cannot read", "labels.npy")


@pytest.mark.parametrize("lines", [127, 129])
def test_file_list_of_another_length_is_refused(tmp_path, lines):
    make_store(tmp_path / "s")
    (tmp_path / "s" / "files.txt").write_text("".join(f"x{i}\n" for i in range(lines)))
    refused(tmp_path / "s", f"names {lines} source items", "128 rows")


def test_file_list_without_a_last_newline_counts_its_last_line(tmp_path):
    make_store(tmp_path / "s")
    (tmp_path / "s" / "files.txt").write_text("\n".join(f"x{i}" for i in range(128)))
    assert len(load_data(f"store:{tmp_path / 's'}").train) == 96
    make_store(tmp_path / "t", files=False)  # the file list is optional
    assert len(load_data(f"store:{tmp_path / 't'}").train) == 96


@pytest.mark.parametrize(
    "splits, words",
    [
        ({"train": [0, 96], "test": [96, 129]}, ["'test'", "[96, 129]"]),  # past the end
        ({"train": [-1, 96], "test": [96, 128]}, ["'train'"]),
        ({"train": [0, 100], "test": [96, 128]}, ["overlaps"]),
        ({"train": [0, 90], "test": [96, 128]}, ["rows 90 to 95 in no split"]),
        ({"train": [0, 96]}, ["end at row 96", "128 rows"]),
        ({"train": [0, 96], "val": [96, 128]}, ["'val'"]),
        ({"train": [0, 96, 1], "test": [96, 128]}, ["'train'"]),
    ],
)
def test_split_ranges_that_do_not_cover_the_rows_once_are_refused(tmp_path, splits, words):
    make_store(tmp_path / "s")
    edit_index(tmp_path / "s", splits=splits)
    refused(tmp_path / "s", *words)


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"format": "another-store"}, ["another-store version 1", "selfsup-image-store"]),
        ({"version": 2}, ["version 2", "reads selfsup-image-store version 1"]),
        ({"shape": [128, 3, 12]}, ["[128, 3, 12]"]),
        ({"shape": [128, 2, 12, 12]}, ["C 1 or 3"]),
        ({"splits": 5}, ["not a readable store index"]),
    ],
)
def test_index_of_another_format_or_shape_is_refused(tmp_path, changes, words):
    make_store(tmp_path / "s")
    edit_index(tmp_path / "s", **changes)
    refused(tmp_path / "s", *words)


@pytest.mark.parametrize(
    "text", ["{not json", "[1, 2]", '{"format": "selfsup-image-store", "version": 1}']
)
def test_unreadable_index_is_refused(tmp_path, text):
    make_store(tmp_path / "s")
    (tmp_path / "s" / "index.json").write_text(text)
    refused(tmp_path / "s", "not a readable store index", "rebuild")


def test_a_folder_that_is_not_a_finished_store_is_refused(tmp_path):
    make_store(tmp_path / "s")
    (tmp_path / "s" / "index.json").unlink()  # as a writer leaves it before its last step
    refused(tmp_path / "s", "has no index.json", "selfsup prepare")
    refused(tmp_path / "nothing", "does not exist", "selfsup prepare")


def test_another_image_size_is_refused_with_the_command_that_rebuilds(tmp_path):
    make_store(tmp_path / "s")
    message = refused(tmp_path / "s", "holds 12 px images", "asks for 16 px", image_size=16)
    assert "selfsup prepare folder:somewhere --out NEW_DIR --image-size 16" in message
    edit_index(tmp_path / "s", test_from="every 4th row")
    same = load_data(f"store:{tmp_path / 's'}", image_size=12)
    assert same.train.memory_mapped and same.test_from == "every 4th row"


def test_a_labelled_store_without_test_rows_is_refused(tmp_path):
    make_store(tmp_path / "s", n_test=0)
    refused(tmp_path / "s", "no test split", "selfsup prepare folder:somewhere", "--image-size 12")
    make_store(tmp_path / "u", n_test=0, labelled=False)  # unlabelled: nothing to hold out
    splits = load_data(f"store:{tmp_path / 'u'}")
    assert splits.test is None and splits.train.labels is None


def test_a_bad_store_stops_the_run_before_its_folder_is_touched(tmp_path):
    make_store(tmp_path / "s")
    cfg = selfsup.make_config(**SMALL, **{"data.source": f"store:{tmp_path / 's'}"})
    selfsup.pretrain(cfg, tmp_path / "run")  # an earlier run in the folder
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}
    (tmp_path / "s" / "images.u8").write_bytes(b"\0" * 10)
    with pytest.raises(SelfsupError, match="truncated"):
        selfsup.pretrain(cfg, tmp_path / "run", overwrite=True)
    after = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}
    assert after == before


# --- training on a store ---


def as_npz(tmp_path: Path, images: np.ndarray, labels: np.ndarray, n_train: int) -> str:
    path = tmp_path / "same.npz"
    np.savez(
        path,
        images=images[:n_train],
        labels=labels[:n_train],
        test_images=images[n_train:],
        test_labels=labels[n_train:],
        classes=np.array(["a", "b", "c"]),
    )
    return f"npy:{path}"


@pytest.mark.parametrize("method", ["simclr", "supcon"])
def test_training_on_a_store_gives_the_weights_of_the_same_images_in_memory(tmp_path, method):
    images, labels = make_store(tmp_path / "s")
    weights = {}
    for name, source in [
        ("store", f"store:{tmp_path / 's'}"),
        ("memory", as_npz(tmp_path, images, labels, 96)),
    ]:
        cfg = selfsup.make_config(**SMALL, **{"data.source": source, "method.name": method})
        selfsup.pretrain(cfg, tmp_path / name)
        weights[name] = load_file(str(tmp_path / name / "encoder.safetensors"))
    assert weights["store"].keys() == weights["memory"].keys()
    for key, value in weights["store"].items():
        assert torch.equal(value, weights["memory"][key]), key


def test_a_store_run_evaluates_on_the_stores_test_rows(tmp_path):
    make_store(tmp_path / "s")
    overrides = SMALL | {"eval.protocols": "knn", "train.epochs": 1}
    cfg = selfsup.make_config(**overrides, **{"data.source": f"store:{tmp_path / 's'}"})
    result = selfsup.pretrain(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "heldout.json").exists()  # the store's own test rows
    assert "selfsup" in json.dumps(result.evaluation)


def test_training_fields_of_a_store_stay_views(tmp_path):
    from selfsup.modalities import get_modality
    from selfsup.run import build_method, training_fields

    make_store(tmp_path / "s")
    train = load_data(f"store:{tmp_path / 's'}").train
    cfg = selfsup.make_config(**SMALL, **{"method.name": "supcon"})
    modality = get_modality("image")
    method = build_method(cfg, modality, train)
    fields = training_fields(method, modality, train)
    assert fields["image"].data_ptr() == train.images.data_ptr()
    assert fields["image"].shape == train.images.shape
    assert torch.equal(fields["label"], train.labels)  # SupCon asks for the labels
    simclr = build_method(selfsup.make_config(**SMALL), modality, train)
    assert set(training_fields(simclr, modality, train)) == {"image"}  # SimCLR never sees them


def test_resume_on_a_store_is_exact(tmp_path, monkeypatch):
    make_store(tmp_path / "s")
    cfg = selfsup.make_config(**SMALL, **{"data.source": f"store:{tmp_path / 's'}"})
    assert_config_resumes_exactly(tmp_path, monkeypatch, cfg, 96 // 32 + 1)


def test_channel_stats_of_a_large_store_read_a_seeded_sample(monkeypatch):
    from selfsup.modalities import image

    monkeypatch.setattr(image, "STATS_SAMPLE_ROWS", 50)
    monkeypatch.setattr(image, "STATS_BLOCK_BYTES", 8 * 3 * 4 * 4 * 7)  # 7 rows a block
    x = torch.randint(0, 256, (400, 3, 4, 4), dtype=torch.uint8)
    x[200:] = 255  # the second half is white: a sample of the first rows alone would miss it
    exact = image.channel_stats(x)
    sampled = image.channel_stats(x, memory_mapped=True)
    assert sampled == image.channel_stats(x, memory_mapped=True)  # seeded: every run the same
    assert sampled != exact
    assert all(abs(a - b) < 0.1 for a, b in zip(sampled[0], exact[0], strict=True))
    monkeypatch.setattr(image, "STATS_SAMPLE_ROWS", 400)  # not larger than the sample: all rows
    every = image.channel_stats(x, memory_mapped=True)
    assert all(
        abs(a - b) < 1e-12 for a, b in zip(every[0] + every[1], exact[0] + exact[1], strict=True)
    )


# --- the process's own memory stays bounded ---

MEMORY_SCRIPT = textwrap.dedent(
    """
    import sys
    import threading
    import time
    import numpy as np
    import torch
    import selfsup
    from selfsup.data import load_data, store
    from selfsup.data.images import ImageData
    from selfsup.modalities import get_modality
    from selfsup.run import build_method, training_fields
    from selfsup.train import batch_of

    def rss_anon():
        for line in open("/proc/self/status"):
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024

    if sys.argv[2] == "copy":  # what the test must catch: the store read into memory
        def whole(folder, index):
            array = np.fromfile(folder / "images.u8", np.uint8)
            return torch.from_numpy(array.reshape(index.shape))
        store.open_images = whole

    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = selfsup.make_config(**{"method.name": "simclr"})
    modality = get_modality("image")
    # a first method on 64 rows loads what building one imports: the store adds nothing to it
    small = ImageData(torch.zeros(64, 3, 64, 64, dtype=torch.uint8), None, None, "warm-up")
    build_method(cfg, modality, small)
    del small
    start = rss_anon()
    peak, running = [start], [True]

    def watch():  # torch releases the GIL in its kernels: a brief peak is seen too
        while running[0]:
            peak[0] = max(peak[0], rss_anon())
            time.sleep(0.002)

    watcher = threading.Thread(target=watch)
    watcher.start()
    train = load_data("store:" + sys.argv[1]).train
    method = build_method(cfg, modality, train)  # channel statistics read the store
    data = training_fields(method, modality, train)
    order = torch.randperm(len(train))
    for rows in order.split(256):  # every row of the store, in random batches
        batch = batch_of(data, rows, torch.device("cpu"))
        assert batch["image"].shape[0] == len(rows)
    running[0] = False
    watcher.join()
    print(start, max(peak[0], rss_anon()), rss_anon())
    """
)


def anonymous_growth(folder: Path, mode: str) -> int:
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT, str(folder), mode],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=300,
    ).stdout
    start, peak, _ = map(int, out.split()[-3:])
    return peak - start


@pytest.mark.skipif(
    not Path("/proc/self/status").is_file(), reason="reads RssAnon in /proc (Linux)"
)
def test_anonymous_memory_stays_far_below_the_store_size(tmp_path):
    # 10,240 RGB images of 64 x 64: a 120 MiB store, more rows than the statistics' sample
    make_store(tmp_path / "s", n_train=9216, n_test=1024, size=64, files=False)
    size = (tmp_path / "s" / "images.u8").stat().st_size
    bound = size // 4
    grown = anonymous_growth(tmp_path / "s", "map")
    assert grown < bound, f"RssAnon grew {grown / 2**20:.1f} MiB for a {size / 2**20:.0f} MiB store"
    # the same measurement catches a store read into memory
    copied = anonymous_growth(tmp_path / "s", "copy")
    assert copied > bound, f"RssAnon grew only {copied / 2**20:.1f} MiB with the store copied"
