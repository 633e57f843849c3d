"""Autoencoder and denoising autoencoder: exact resume, pictures, noise options, convergence."""

import numpy as np
import pytest
import torch
from method_harness import assert_resume_exact, digits_knn

from selfsup.augment import build_augment
from selfsup.errors import SelfsupError
from selfsup.methods import get_method
from selfsup.methods.denoising_autoencoder import DenoisingAutoencoder
from selfsup.models import ImageEncoderSpec

SMALL = {"method.decoder_width": 16, "optim.name": "adamw", "optim.lr": 0.002}
# Measured: 20 epochs on digits, kNN learned vs random (see docs/methods-reconstruction.md).
CONVERGE = {"optim.name": "adamw", "optim.lr": 0.002, "optim.weight_decay": 0.05}


@pytest.mark.parametrize("name", ["autoencoder", "dae"])
def test_resume_is_exact(tmp_path, monkeypatch, name):
    state = assert_resume_exact(tmp_path, monkeypatch, {"method.name": name, **SMALL})
    assert any(k.startswith("decoder.") for k in state)


def _method(name, backbone="convnet", size=8, channels=1, recipe="digits", **params):
    """The method `name` for grey 8 px images (digits), built without data."""
    spec = ImageEncoderSpec(backbone, channels, size, True, (0.3,) * channels, (0.4,) * channels)
    cls = get_method(name)
    return cls(spec, cls.make_config(params), build_augment(recipe, size, channels))


@pytest.mark.parametrize("noise", ["gaussian", "masking", "salt_and_pepper"])
def test_dae_pictures_and_noise(noise):
    torch.manual_seed(0)
    method = _method("dae", decoder_width=16, noise=noise, fraction=0.5, sigma=0.3)
    assert isinstance(method, DenoisingAutoencoder)
    images = torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8)
    clean = images.float() / 255
    noised = method.encoder_input(clean)
    changed = (noised != clean).flatten(1).float().mean(1)
    if noise == "gaussian":
        assert (changed > 0.9).all()
    else:
        assert torch.allclose(changed, torch.full((5,), 0.5), atol=0.1)
    with torch.no_grad():
        pictures = method.figures({"image": images})
    ((title, grid),) = pictures.items()
    assert "input" in title and noise in title and "reconstruction" in title
    assert grid.dtype == np.uint8 and grid.ndim == 3 and grid.shape[2] == 3
    scale = 64 // 8
    assert grid.shape == (5 * 8 * scale + 6, 3 * 8 * scale + 4, 3)
    # the first column is the input, enlarged
    first = grid[1 : 1 + 8 * scale, 1 : 1 + 8 * scale, 0]
    assert np.array_equal(first[::scale, ::scale], images[0, 0].numpy())


def test_autoencoder_loss_and_pictures():
    torch.manual_seed(0)
    method = _method("autoencoder", decoder_width=16)
    images = torch.randint(0, 256, (6, 1, 8, 8), dtype=torch.uint8)
    views = method.views({"image": images})
    loss, _ = method.loss(views, {"image": images})
    loss.backward()
    assert loss.item() > 0 and method.decoder.out.weight.grad is not None
    assert method.watched is not None
    with torch.no_grad():
        (grid,) = method.figures({"image": images}).values()
    assert grid.shape[1] == 2 * 64 + 3


def test_bad_noise_is_a_clear_error():
    with pytest.raises(SelfsupError, match="noise must be one of"):
        _method("dae", noise="speckle")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["autoencoder", "dae"])
def test_converges_on_digits(tmp_path, name):
    learned, random = digits_knn(tmp_path, {"method.name": name, **CONVERGE}, epochs=20)
    print(name, learned, random)
    assert learned > random + 0.05
