"""The generated sources with known factors: styled-digits (digit x colour) and styled-waves
(shape x amplitude x pitch), their factors independent, held out with their samples."""

import numpy as np
import pytest
import torch

from selfsup.data.registry import SOURCES, load_data, source_modality
from selfsup.data.styled import (
    AMPLITUDES,
    COLOURS,
    PERIODS,
    SHAPES,
    styled_digits,
    styled_waves,
    waveform,
)


def _independent(a: torch.Tensor, b: torch.Tensor, levels_a: int, levels_b: int) -> None:
    """Every pair of levels occurs, near its share under independence."""
    counts = torch.zeros(levels_a, levels_b)
    counts.index_put_((a, b), torch.ones(len(a)), accumulate=True)
    expected = counts.sum(1, keepdim=True) * counts.sum(0, keepdim=True) / len(a)
    assert (counts > 0).all()
    assert ((counts - expected).abs() <= 5 * expected.sqrt() + 2).all()


def test_styled_digits_are_grey_digits_in_a_colour():
    from sklearn.datasets import load_digits

    data = styled_digits()
    grey = torch.from_numpy(load_digits().images / 16.0).float()
    assert data.images.shape == (1797, 3, 8, 8) and data.images.dtype == torch.uint8
    assert data.factors.names == ("digit", "colour")
    digit, colour = data.factors.values.T
    assert torch.equal(digit, data.labels)
    rgb = torch.tensor(list(COLOURS.values()))
    for n in (0, 5, 100):
        want = (grey[n][None] * rgb[colour[n]][:, None, None]).mul(255).round()
        assert torch.equal(data.images[n].float(), want)
    _independent(digit, colour, 10, len(COLOURS))


def test_styled_waves_follow_their_factors():
    data = styled_waves(count=400)
    assert data.series.shape == (400, 1, 128) and data.mask is None
    shape, amplitude, pitch = data.factors.values.T
    assert data.factors.names == ("shape", "amplitude", "pitch")
    assert torch.equal(shape, data.labels)
    x = data.series[:, 0]
    peak = x.abs().amax(1)
    want = torch.tensor(AMPLITUDES)[amplitude]
    assert torch.allclose(peak, want, rtol=0.1)  # every shape reaches +-1 within a period
    # pitch: the number of upward zero crossings is the periods per series (+-1 at the edges)
    ups = ((x[:, :-1] < 0) & (x[:, 1:] >= 0)).sum(1)
    assert ((ups - torch.tensor(PERIODS)[pitch]).abs() <= 1).all()
    _independent(shape, amplitude, len(SHAPES), len(AMPLITUDES))


def test_waveform_shapes_by_hand():
    t = np.array([0.0, 0.25, 0.5, 0.75])
    assert np.allclose(waveform("sine", t), [0, 1, 0, -1], atol=1e-12)
    assert np.allclose(waveform("square", t), [1, 1, -1, -1])
    assert np.allclose(waveform("triangle", t), [-1, 0, 1, 0])
    assert np.allclose(waveform("sawtooth", t), [-1, -0.5, 0, 0.5])
    with pytest.raises(ValueError, match="unknown waveform"):
        waveform("noise", t)


@pytest.mark.parametrize("name,modality", [("styled-digits", "image"), ("styled-waves", "series")])
def test_registered_with_a_heldout_split_carrying_factors(name, modality):
    assert name in SOURCES and source_modality(name) == modality
    splits = load_data(name)
    assert splits.test is not None and "factors" in splits.test.serves
    assert len(splits.train.factors) == len(splits.train)
    assert len(splits.test.factors) == len(splits.test)
    assert abs(len(splits.test) - 0.2 * (len(splits.train) + len(splits.test))) <= 1
