"""decode_image_file: deep grey images are scaled rather than clipped, EXIF orientation applies."""

import numpy as np
import pytest
from PIL import Image

from selfsup.data import decode as decode_module
from selfsup.data.decode import decode_image_file

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
