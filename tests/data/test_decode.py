"""decode_image_file: deep grey images are scaled rather than clipped, EXIF orientation applies."""

import numpy as np
import pytest
import torch
from PIL import Image

from selfsup.data import decode as decode_module
from selfsup.data.decode import CorruptImageError, decode_image_bytes, decode_image_file
from selfsup.data.resize import resize_square

ORIENTATION = 0x0112


def test_16_bit_png_scales_by_bit_depth(tmp_path):
    values = np.array([[0, 257, 32896], [65535, 1000, 128]], dtype=np.uint16)
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    with Image.open(path) as im:
        assert im.mode.startswith("I;16")  # Pillow keeps all 16 bits
    out = decode_image_file(str(path))
    assert out.shape == (1, 2, 3)
    # 65535 -> 255: v * 255 / 65535 = v / 257, rounded; a dark 16-bit image stays dark.
    assert out[0].tolist() == [[0, 1, 128], [255, 4, 0]]


def test_mode_i_png_is_16_bit():
    """Older Pillow opens 16-bit PNGs as mode "I": a PNG holds at most 16 bits, so a dark one
    stays dark instead of being read as 8-bit values."""
    values = np.array([[0, 100, 200]], dtype=np.int32)
    assert decode_module._scale_to_uint8(values, "I", "PNG").tolist() == [[0, 0, 1]]
    assert decode_module._scale_to_uint8(values, "I", "TIFF").tolist() == [[0, 100, 200]]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([[0, 10000, 63000]], [[0, 39, 245]]),  # fits 16 bits: by the bit depth
        ([[0, 100, 255]], [[0, 100, 255]]),  # fits 8 bits: as is
        ([[-1000, 0, 1000]], [[0, 128, 255]]),  # negative: its own min..max
        ([[100000, 150000, 200000]], [[0, 128, 255]]),  # beyond 16 bits: min..max
    ],
)
def test_32_bit_integer_tiff(tmp_path, values, expected):
    path = tmp_path / "deep.tif"
    Image.fromarray(np.array(values, dtype=np.int32)).save(path)
    with Image.open(path) as im:
        assert im.mode == "I"
    assert decode_image_file(str(path))[0].tolist() == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([[0.0, 0.25, 0.5, 1.0]], [[0, 64, 128, 255]]),  # [0, 1]: x 255
        ([[0.0, 0.1, 0.2, 0.4]], [[0, 26, 51, 102]]),  # within [0, 1], not stretched
        ([[-2.0, 0.0, 2.0, 6.0]], [[0, 64, 128, 255]]),  # elsewhere: min..max
        ([[3.0, 3.0, 3.0, 3.0]], [[0, 0, 0, 0]]),  # constant outside [0, 1]
        ([[np.nan, 0.0, 2.0, np.inf]], [[0, 0, 255, 255]]),  # NaN as min, inf as max
    ],
)
def test_float_tiff(tmp_path, values, expected):
    path = tmp_path / "float.tif"
    Image.fromarray(np.array(values, dtype=np.float32)).save(path)
    with Image.open(path) as im:
        assert im.mode == "F"
    assert decode_image_file(str(path))[0].tolist() == expected


def _oriented(path, orientation: int, grey: bool = False) -> None:
    """A 16 x 32 (H x W) image, white in its stored top-left 8 x 8 block, black elsewhere."""
    pixels = np.zeros((16, 32), dtype=np.uint8)
    pixels[:8, :8] = 255
    image = Image.fromarray(pixels if grey else np.stack([pixels] * 3, axis=-1))
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    image.save(path, exif=exif, quality=95)


def _white_block(image) -> tuple[int, int]:
    """(row, column) of the white 8 x 8 block, in blocks."""
    blocks = image.float().mean(0).reshape(image.shape[1] // 8, 8, image.shape[2] // 8, 8)
    means = blocks.mean(dim=(1, 3))
    row, col = divmod(int(means.argmax()), means.shape[1])
    assert means.max() > 200 and np.sort(means.flatten().numpy())[-2] < 50
    return row, col


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".webp"])
@pytest.mark.parametrize("grey", [False, True])
def test_exif_rotation(tmp_path, suffix, grey):
    """Orientation 6: the stored image is displayed rotated 90 degrees clockwise, so the stored
    top-left block shows at the top right of a 32 x 16 image."""
    path = tmp_path / f"phone{suffix}"
    _oriented(path, 6, grey)
    out = decode_image_file(str(path))
    grey_stored = grey and suffix != ".webp"  # WebP stores grey as colour
    assert out.shape == (1 if grey_stored else 3, 32, 16)
    assert _white_block(out) == (0, 1)


@pytest.mark.parametrize(("orientation", "block"), [(1, (0, 0)), (3, (1, 3)), (8, (3, 0))])
def test_other_orientations(tmp_path, orientation, block):
    """1 upright, 3 rotated 180 degrees, 8 rotated 90 degrees counter-clockwise."""
    path = tmp_path / "photo.jpg"
    _oriented(path, orientation)
    assert _white_block(decode_image_file(str(path))) == block


def test_jpeg_fast_path_applies_orientation(tmp_path, monkeypatch):
    """The torchvision path itself turns the image (no fallback to Pillow)."""
    path = tmp_path / "phone.jpg"
    _oriented(path, 6)

    def no_pillow(path):
        raise AssertionError("fell back to Pillow")

    monkeypatch.setattr(decode_module, "_decode_pillow", no_pillow)
    assert _white_block(decode_image_file(str(path))) == (0, 1)


def _photo(path, size=(64, 48), mode="RGB", orientation=None) -> None:
    """A smooth gradient image (a JPEG scales it well), optionally with an EXIF orientation."""
    w, h = size
    x = np.linspace(0, 255, w)[None, :] * np.ones((h, 1))
    y = np.linspace(0, 255, h)[:, None] * np.ones((1, w))
    rgb = np.stack([x, y, 255 - x], axis=-1).astype(np.uint8)
    image = Image.fromarray(rgb).convert(mode)
    exif = Image.Exif()
    if orientation is not None:
        exif[ORIENTATION] = orientation
    image.save(path, exif=exif, quality=95)


@pytest.mark.parametrize(
    ("name", "mode"),
    [("a.jpg", "RGB"), ("g.jpg", "L"), ("c.jpg", "CMYK"), ("p.png", "P"), ("a.png", "RGBA")],
)
def test_bytes_decode_as_the_file(tmp_path, name, mode):
    """decode_image_bytes without min_size: the pixels of decode_image_file, format by format;
    with min_size, an image under 4 x that size on a side decodes the same too."""
    path = tmp_path / name
    _photo(path.with_suffix(".tmp.png"), mode="RGB")
    Image.open(path.with_suffix(".tmp.png")).convert(mode).save(path)
    data = path.read_bytes()
    expected = decode_image_file(str(path))
    assert torch.equal(decode_image_bytes(data, str(path)), expected)
    assert torch.equal(decode_image_bytes(data, str(path), min_size=16), expected)  # 48 < 4 x 16
    assert torch.equal(decode_image_bytes(data, "member-without-extension"), expected)


@pytest.mark.parametrize("mode", ["RGB", "L", "CMYK"])
def test_reduced_jpeg_decode(tmp_path, mode):
    """A JPEG of at least 4 x min_size decodes smaller (DCT scaling, both sides >= min_size)
    with the channels decode_image_file gives, and close to it after the same resize."""
    path = tmp_path / "big.jpg"
    _photo(path, size=(130, 97), mode=mode)
    full = decode_image_file(str(path))
    reduced = decode_image_bytes(path.read_bytes(), str(path), min_size=24)
    assert reduced.shape == (full.shape[0], 25, 33)  # min(130 // 24, 97 // 24) = 4: scale 1/4
    assert reduced.shape[1] >= 24
    a, b = resize_square(full, 24).int(), resize_square(reduced, 24).int()
    assert (a - b).abs().float().mean() < 3


def test_reduced_decode_keeps_the_exif_orientation(tmp_path):
    path = tmp_path / "phone.jpg"
    _photo(path, size=(128, 64), orientation=6)
    full = decode_image_file(str(path))
    reduced = decode_image_bytes(path.read_bytes(), str(path), min_size=16)
    assert full.shape == (3, 128, 64) and reduced.shape == (3, 32, 16)
    a = resize_square(full, 16).int()
    b = resize_square(reduced, 16).int()
    assert (a - b).abs().float().mean() < 3


def test_undecodable_bytes_name_the_item(tmp_path):
    with pytest.raises(CorruptImageError, match=r"cannot decode image shard-3/member\.jpg"):
        decode_image_bytes(b"\xff\xd8\xff\xe0 nope", "shard-3/member.jpg", min_size=8)
