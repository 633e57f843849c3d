"""Lab conversion against hand-checked colours and the round trip."""

import pytest
import torch

from selfsup.augment.color_space import lab_to_rgb, rgb_to_lab


@pytest.mark.parametrize(
    "rgb, lab",
    [
        ((255, 255, 255), (100.0, 0.0, 0.0)),
        ((0, 0, 0), (0.0, 0.0, 0.0)),
        ((255, 0, 0), (53.24, 80.09, 67.20)),  # the standard sRGB red (D65)
        ((0, 0, 255), (32.30, 79.19, -107.86)),
    ],
)
def test_known_colours(rgb, lab):
    image = torch.tensor(rgb, dtype=torch.uint8).view(1, 3, 1, 1)
    got = rgb_to_lab(image).flatten()
    assert torch.allclose(got, torch.tensor(lab), atol=0.05), got


def test_round_trip_restores_the_image():
    rgb = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(lab_to_rgb(rgb_to_lab(rgb)), rgb, atol=1e-4)


def test_bad_shape_is_named():
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        rgb_to_lab(torch.rand(2, 1, 4, 4))
