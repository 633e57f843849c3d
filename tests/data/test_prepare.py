"""selfsup prepare: image stores written from folders and in-memory sources, resumable."""

import multiprocessing
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from selfsup.cli import main
from selfsup.data import load_data
from selfsup.data import prepare as prepare_module
from selfsup.data.decode import decode_image_file
from selfsup.data.prepare_source import prepare
from selfsup.data.resize import resize_square
from selfsup.data.split import holdout_positions
from selfsup.data.store import open_store, read_index
from selfsup.errors import SelfsupError

STORE_FILES = ("images.u8", "labels.npy", "files.txt", "index.json")


def write_image(path: Path, size=(12, 10), mode="RGB", seed=0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
    pixels = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    Image.fromarray(pixels, mode).save(path, quality=90) if path.suffix == ".jpg" else (
        Image.fromarray(pixels, mode).save(path)
    )


def write_classes(root: Path, classes=("cat", "dog"), per_class=6, seed=0) -> list[Path]:
    """PNG and JPEG files of a few sizes in class folders; the paths in listing order."""
    paths = []
    for c, name in enumerate(classes):
        for i in range(per_class):
            ext = ".jpg" if i % 3 == 2 else ".png"
            path = root / name / f"{i:02d}{ext}"
            write_image(path, size=(12 + i, 10 + c), seed=seed + 10 * c + i)
            paths.append(path)
    return paths


def expected_rows(paths: list[Path], size: int) -> np.ndarray:
    """What load_folder gave before stores: decode_image_file, then resize_square."""
    return np.stack([resize_square(decode_image_file(str(p)), size).numpy() for p in paths])


def store_bytes(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in STORE_FILES if (out / name).exists()}


def test_folder_with_test_split(tmp_path):
    train = write_classes(tmp_path / "src" / "train")
    test = write_classes(tmp_path / "src" / "test", per_class=2, seed=100)
    result = prepare(f"folder:{tmp_path / 'src'}", tmp_path / "out", 8, workers=1)
    index = read_index(tmp_path / "out")
    assert index.shape == (16, 3, 8, 8) and index.splits == {"train": (0, 12), "test": (12, 16)}
    assert index.test_from is None and index.classes == ["cat", "dog"] and index.skipped == []
    splits = open_store(tmp_path / "out")
    # small images take no reduced decode: the pixels of the in-memory path, exactly
    assert np.array_equal(splits.train.images.numpy(), expected_rows(train, 8))
    assert np.array_equal(splits.test.images.numpy(), expected_rows(test, 8))
    assert splits.train.labels.tolist() == [0] * 6 + [1] * 6
    assert splits.test.labels.tolist() == [0, 0, 1, 1]
    files = (tmp_path / "out" / "files.txt").read_text().splitlines()
    assert files == [str(p.resolve()) for p in train + test]
    folder = load_data(f"folder:{tmp_path / 'src'}", image_size=8)
    assert torch.equal(folder.train.images, splits.train.images)
    assert result.decoded == 16 and "16 images" in result.summary()
    assert not (tmp_path / "out.partial").exists()
    assert sorted(os.listdir(tmp_path / "out")) == sorted(STORE_FILES)


def test_labelled_folder_without_test_split_holds_out_20_percent(tmp_path):
    paths = write_classes(tmp_path / "src", per_class=10)
    prepare(f"folder:{tmp_path / 'src'}", tmp_path / "out", 6, workers=1)
    index = read_index(tmp_path / "out")
    labels = torch.tensor([0] * 10 + [1] * 10)
    _, test = holdout_positions(20, labels, 0.2, 0)
    test = sorted(test.tolist())
    train = [i for i in range(20) if i not in test]
    assert index.splits == {"train": (0, 16), "test": (16, 20)}
    assert "4 of the source's 20 items held out" in index.test_from
    assert "stratified" in index.test_from
    files = (tmp_path / "out" / "files.txt").read_text().splitlines()
    assert files == [str(paths[i].resolve()) for i in train + test]
    splits = open_store(tmp_path / "out")
    assert splits.test.labels.tolist() == labels[test].tolist()
    assert np.array_equal(splits.test.images.numpy(), expected_rows([paths[i] for i in test], 6))
    prepare(f"folder:{tmp_path / 'src'}", tmp_path / "none", 6, workers=1, test_fraction=0)
    assert read_index(tmp_path / "none").splits == {"train": (0, 20)}


def test_unlabelled_folder_holds_out_only_when_asked(tmp_path):
    for i in range(10):
        write_image(tmp_path / "src" / f"{i}.png", seed=i)
    prepare(f"folder:{tmp_path / 'src'}", tmp_path / "a", 8, workers=1)
    assert read_index(tmp_path / "a").splits == {"train": (0, 10)}
    prepare(f"folder:{tmp_path / 'src'}", tmp_path / "b", 8, workers=1, test_fraction=0.3)
    index = read_index(tmp_path / "b")
    assert index.splits == {"train": (0, 7), "test": (7, 10)} and "at random" in index.test_from
    assert not index.labelled and open_store(tmp_path / "b").train.labels is None


def test_own_test_split_and_a_test_fraction_is_an_error(tmp_path):
    write_classes(tmp_path / "src" / "train", per_class=2)
    write_classes(tmp_path / "src" / "test", per_class=1)
    with pytest.raises(SelfsupError, match="test split of its own"):
        prepare(f"folder:{tmp_path / 'src'}", tmp_path / "out", 8, test_fraction=0.2)


def test_in_memory_source_resized_in_chunks(tmp_path):
    prepare("digits", tmp_path / "out", 12, chunk_rows=500)
    splits = open_store(tmp_path / "out")
    digits = load_data("digits", image_size=12)  # its own test split
    assert torch.equal(splits.train.images, digits.train.images)
    assert torch.equal(splits.test.images, digits.test.images)
    assert torch.equal(splits.test.labels, digits.test.labels)
    assert read_index(tmp_path / "out").test_from is None


def test_in_memory_source_without_test_split_holds_out_20_percent(tmp_path):
    rng = np.random.default_rng(0)
    labels = np.arange(30) % 3
    np.savez(
        tmp_path / "d.npz",
        images=rng.integers(0, 256, (30, 3, 10, 10), dtype=np.uint8),
        labels=labels,
    )
    prepare(f"npy:{tmp_path / 'd.npz'}", tmp_path / "out", 8)
    memory = load_data(f"npy:{tmp_path / 'd.npz'}", image_size=8).train
    _, test = holdout_positions(30, memory.labels, 0.2, 0)
    held = torch.zeros(30, dtype=torch.bool)
    held[test] = True
    splits = open_store(tmp_path / "out")
    assert torch.equal(splits.train.images, memory.images[~held])
    assert torch.equal(splits.test.images, memory.images[held])
    assert torch.equal(splits.test.labels, memory.labels[held])


def test_npz_with_test_arrays_keeps_its_test_split(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "d.npz",
        images=rng.integers(0, 256, (20, 3, 10, 10), dtype=np.uint8),
        labels=np.arange(20) % 2,
        test_images=rng.integers(0, 256, (6, 3, 10, 10), dtype=np.uint8),
        test_labels=np.arange(6) % 2,
    )
    prepare(f"npy:{tmp_path / 'd.npz'}", tmp_path / "out", 8)
    index = read_index(tmp_path / "out")
    assert index.splits == {"train": (0, 20), "test": (20, 26)} and index.test_from is None
    splits = open_store(tmp_path / "out")
    memory = load_data(f"npy:{tmp_path / 'd.npz'}", image_size=8)
    assert torch.equal(splits.test.images, memory.test.images)


def _interrupt_after(k: int):
    def hook(done: int) -> None:
        if done >= k:
            raise KeyboardInterrupt

    return hook


def test_resume_after_an_interruption_is_byte_identical(tmp_path, monkeypatch):
    write_classes(tmp_path / "src", per_class=7)  # 14 images: 7 chunks of 2
    source = f"folder:{tmp_path / 'src'}"
    prepare(source, tmp_path / "whole", 8, workers=1, chunk_rows=2)
    with pytest.raises(KeyboardInterrupt):
        prepare(source, tmp_path / "out", 8, workers=1, chunk_rows=2, on_chunk=_interrupt_after(3))
    assert not (tmp_path / "out").exists() and (tmp_path / "out.partial").is_dir()
    decoded = []
    real = prepare_module.decode_image_bytes

    def counting(data, name, min_size=None):
        decoded.append(name)
        return real(data, name, min_size)

    monkeypatch.setattr(prepare_module, "decode_image_bytes", counting)
    result = prepare(source, tmp_path / "out", 8, workers=1, chunk_rows=2)
    assert result.reused_chunks == 3 and result.decoded == 14 - 6 and len(decoded) == 14 - 6
    assert store_bytes(tmp_path / "out") == store_bytes(tmp_path / "whole")
    assert not (tmp_path / "out.partial").exists()


def test_resume_with_worker_processes(tmp_path):
    write_classes(tmp_path / "src", per_class=6)
    source = f"folder:{tmp_path / 'src'}"
    prepare(source, tmp_path / "whole", 8, workers=1)
    with pytest.raises(KeyboardInterrupt):
        prepare(source, tmp_path / "out", 8, workers=2, chunk_rows=2, on_chunk=_interrupt_after(2))
    result = prepare(source, tmp_path / "out", 8, workers=2, chunk_rows=2)
    assert result.reused_chunks >= 2 and result.decoded <= 12 - 4
    assert store_bytes(tmp_path / "out") == store_bytes(tmp_path / "whole")


def _build_and_die(source: str, out: str, k: int) -> None:
    def hook(done: int) -> None:
        if done >= k:
            os.kill(os.getpid(), signal.SIGKILL)

    prepare(source, out, 8, workers=1, chunk_rows=2, on_chunk=hook)


def test_resume_after_a_kill(tmp_path):
    write_classes(tmp_path / "src", per_class=5)
    source = f"folder:{tmp_path / 'src'}"
    prepare(source, tmp_path / "whole", 8, workers=1)
    child = multiprocessing.get_context("fork").Process(
        target=_build_and_die, args=(source, str(tmp_path / "out"), 2)
    )
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL
    result = prepare(source, tmp_path / "out", 8, workers=1, chunk_rows=2)
    assert result.reused_chunks == 2 and result.decoded == 10 - 4
    assert store_bytes(tmp_path / "out") == store_bytes(tmp_path / "whole")


def test_other_settings_in_a_partial_start_over(tmp_path):
    write_classes(tmp_path / "src", per_class=4)
    source = f"folder:{tmp_path / 'src'}"
    with pytest.raises(KeyboardInterrupt):
        prepare(source, tmp_path / "out", 8, workers=1, chunk_rows=2, on_chunk=_interrupt_after(1))
    with pytest.warns(UserWarning, match="another source or settings.*starting over"):
        result = prepare(source, tmp_path / "out", 6, workers=1, chunk_rows=2)
    assert result.reused_chunks == 0 and read_index(tmp_path / "out").image_size == 6
    prepare(source, tmp_path / "whole", 6, workers=1)
    assert store_bytes(tmp_path / "out") == store_bytes(tmp_path / "whole")


def test_existing_out_is_refused_unless_the_same(tmp_path):
    write_classes(tmp_path / "src", per_class=2)
    source = f"folder:{tmp_path / 'src'}"
    prepare(source, tmp_path / "out", 8, workers=1)
    before = store_bytes(tmp_path / "out")
    assert prepare(source, tmp_path / "out", 8, workers=1).up_to_date
    with pytest.raises(SelfsupError, match=r"already holds a store of .* other settings"):
        prepare(source, tmp_path / "out", 6, workers=1)
    assert store_bytes(tmp_path / "out") == before
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(SelfsupError, match="not an image store"):
        prepare(source, tmp_path / "mine", 8, workers=1)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    (tmp_path / "empty").mkdir()
    prepare(source, tmp_path / "empty", 8, workers=1)
    assert store_bytes(tmp_path / "empty") == before


def test_corrupt_image_error_and_skip(tmp_path):
    paths = write_classes(tmp_path / "src", per_class=3)
    (tmp_path / "src" / "cat" / "01b.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    source = f"folder:{tmp_path / 'src'}"
    with pytest.raises(SelfsupError, match=r"cannot decode image .*01b\.jpg"):
        prepare(source, tmp_path / "out", 8, workers=1, test_fraction=0)
    assert not (tmp_path / "out").exists()
    with pytest.warns(UserWarning, match="starting over"):  # the failed build's settings
        result = prepare(source, tmp_path / "out", 8, workers=2, chunk_rows=2, skip_corrupt=True)
    index = read_index(tmp_path / "out")
    assert index.skipped == [str((tmp_path / "src" / "cat" / "01b.jpg").resolve())]
    assert "1 skipped" in result.summary()
    splits = open_store(tmp_path / "out")
    assert len(splits.train) == 6 and splits.train.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert np.array_equal(splits.train.images.numpy(), expected_rows(paths, 8))
    files = (tmp_path / "out" / "files.txt").read_text().splitlines()
    assert files == [str(p.resolve()) for p in paths]


def test_all_grey_keeps_one_channel(tmp_path):
    paths = []
    for i in range(5):
        paths.append(tmp_path / "src" / f"{i}.png")
        write_image(paths[-1], mode="L", seed=i)
    prepare(f"folder:{tmp_path / 'src'}", tmp_path / "out", 8, workers=2, chunk_rows=2)
    images = open_store(tmp_path / "out").train.images
    assert images.shape == (5, 1, 8, 8)
    assert np.array_equal(images.numpy(), expected_rows(paths, 8))


def test_large_jpegs_decode_reduced(tmp_path):
    """A JPEG of at least 4 x the size decodes through draft: near the full decode."""
    for i in range(3):
        write_image(tmp_path / "src" / f"{i}.jpg", size=(96, 72), seed=i)
    prepare(f"folder:{tmp_path / 'src'}", tmp_path / "out", 16, workers=1)
    prepare(f"folder:{tmp_path / 'src'}", tmp_path / "full", 16, workers=1)
    reduced = open_store(tmp_path / "out").train.images.numpy().astype(int)
    paths = sorted((tmp_path / "src").glob("*.jpg"))
    full = expected_rows(paths, 16).astype(int)
    assert reduced.shape == full.shape and not np.array_equal(reduced, full)
    assert np.abs(reduced - full).mean() < 20  # random pixels: the worst case for scaling


def test_cli_prepare_then_pretrain_on_the_store(tmp_path, capsys):
    write_classes(tmp_path / "src", per_class=12)
    out = tmp_path / "store"
    assert (
        main(
            [
                *["prepare", f"folder:{tmp_path / 'src'}", "--out", str(out), "--image-size", "8"],
                *["--workers", "1", "--no-progress"],
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "24 images of 3x8x8 (train 19, test 5)" in printed and "0 skipped" in printed
    assert (
        main(["prepare", f"folder:{tmp_path / 'src'}", "--out", str(out), "--image-size", "8"]) == 0
    )
    assert "up to date" in capsys.readouterr().out
    assert (
        main(["prepare", f"folder:{tmp_path / 'src'}", "--out", str(out), "--image-size", "6"]) == 2
    )
    args = ["pretrain", "--data", f"store:{out}", "--epochs", "1", "--batch-size", "8"]
    args += ["--out", str(tmp_path / "run"), "--no-progress", "--protocols", "knn"]
    assert main(args) == 0
    assert (tmp_path / "run" / "encoder.safetensors").is_file()
