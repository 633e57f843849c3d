"""Series sources as people store them (issue 19): WAV folders honour --skip-corrupt and name
a zero-length file (items 3, 7)."""

import numpy as np
import pytest
from test_series import write_wav

from selfsup.data import load_data
from selfsup.errors import SelfsupError


def _wav_folder(root):
    t = np.arange(1600) / 16000
    for i in range(3):
        write_wav(root / f"tone{i}.wav", 16000, 0.3 * np.sin(2 * np.pi * (200 + 100 * i) * t))
    return root


def test_a_zero_length_wav_is_named_and_skip_corrupt_leaves_it_out(tmp_path):
    root = _wav_folder(tmp_path / "wav")
    write_wav(root / "silent.wav", 16000, np.zeros(0))
    with pytest.raises(SelfsupError, match=r"silent\.wav holds no samples.*--skip-corrupt"):
        load_data(f"wav:{root}")
    with pytest.warns(UserWarning, match=r"empty WAV files \(--skip-corrupt\): 1 .*silent\.wav"):
        data = load_data(f"wav:{root}", skip_corrupt=True).train
    assert len(data) == 3 and data.skipped == 1
    assert [f.rsplit("/", 1)[1] for f in data.files] == ["tone0.wav", "tone1.wav", "tone2.wav"]


def test_skip_corrupt_leaves_out_an_unreadable_wav(tmp_path):
    root = _wav_folder(tmp_path / "wav")
    (root / "broken.wav").write_bytes(b"RIFF not really")
    with pytest.raises(SelfsupError, match=r"broken\.wav.*--skip-corrupt"):
        load_data(f"wav:{root}")
    with pytest.warns(UserWarning, match=r": 1 \(first: .*broken\.wav"):
        data = load_data(f"wav:{root}", skip_corrupt=True).train
    assert len(data) == 3 and data.skipped == 1
