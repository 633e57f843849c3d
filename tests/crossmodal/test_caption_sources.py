"""Caption sources say what they leave out: --skip-corrupt drops an undecodable image with its
caption and counts it (issue 19 item 3); empty captions and caption files with no image are
counted and named (item 17); every pair keeps its image path (search names images, item 8)."""

import pytest
from pair_fixtures import write_caption_csv, write_class_folders

from selfsup.data import load_data
from selfsup.errors import SelfsupError


def test_skip_corrupt_leaves_out_an_undecodable_image_of_a_caption_table(tmp_path):
    csv = write_caption_csv(tmp_path, 6)
    (tmp_path / "img" / "3.png").write_bytes(b"not a png")
    with pytest.raises(SelfsupError, match=r"cannot decode image .*3\.png.*--skip-corrupt"):
        load_data(f"captions:{csv}")
    with pytest.warns(UserWarning, match=r"undecodable images \(--skip-corrupt\): 1 .*3\.png"):
        data = load_data(f"captions:{csv}", skip_corrupt=True).train
    assert len(data) == 5 and data.skipped == 1
    assert "number 3" not in " ".join(data.captions)  # its caption went with it
    assert data.files == [str(tmp_path / "img" / f"{i}.png") for i in (0, 1, 2, 4, 5)]


def test_skip_corrupt_in_a_caption_folder_and_cifar_captions(tmp_path):
    root = write_class_folders(tmp_path / "cc", 3, 2)
    (root / "train" / "red" / "1.png").write_bytes(b"broken")
    with pytest.raises(SelfsupError, match="--skip-corrupt"):
        load_data(f"cifar-captions:{root}")
    with pytest.warns(UserWarning, match=r"undecodable images.*: 1 .*red/1\.png"):
        splits = load_data(f"cifar-captions:{root}", skip_corrupt=True)
    assert len(splits.train) == 11 and len(splits.train.labels) == 11
    assert str(root / "train" / "red" / "1.png") not in splits.train.files
    side = tmp_path / "side"
    write_caption_csv(side, 4)
    for i in range(4):
        (side / "img" / f"{i}.txt").write_text(f"caption {i}")
    (side / "img" / "0.png").write_bytes(b"broken")
    with pytest.warns(UserWarning, match=r"undecodable images.*: 1"):
        data = load_data(f"captions:{side / 'img'}", skip_corrupt=True).train
    assert data.captions == ["caption 1", "caption 2", "caption 3"]


def test_a_caption_folder_counts_what_it_leaves_out(tmp_path):
    root = tmp_path / "side"
    write_caption_csv(root, 5)
    img = root / "img"
    (img / "0.txt").write_text("a red square")
    (img / "1.txt").write_text("  \n")  # empty caption
    (img / "2.txt").write_text("a blue square")
    (img / "lonely.txt").write_text("a caption with no image")  # 3.png, 4.png: no caption
    with pytest.warns(UserWarning) as caught:
        data = load_data(f"captions:{img}").train
    message = str(caught[0].message)
    assert "images with no caption file: 2 (first: " in message and "3.png" in message
    assert "empty caption files: 1 (first: " in message and "1.txt" in message
    assert "caption files with no image: 1 (first: " in message and "lonely.txt" in message
    assert data.captions == ["a red square", "a blue square"] and data.skipped == 4
