"""benchmarks/speech_espeak.py at a tiny size: the folder it writes loads through selfsup's
`wav:` source with the speaker labels, 16 kHz lengths and both labels in the manifest, and the
same seed writes the same files. Needs espeak-ng (a Debian package, installed by .ci/run): like
the other tests of Debian packages, it skips where the package is absent, saying how to get it."""

import hashlib
import importlib.util
import shutil
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from selfsup.data import load_data
from selfsup.data.series import read_wav

ROOT = Path(__file__).resolve().parents[2]


def generator():
    """benchmarks/speech_espeak.py as a module (benchmarks/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "speech_espeak", ROOT / "benchmarks" / "speech_espeak.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["speech_espeak"] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def require_espeak() -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip(
            "espeak-ng is not installed: install the Debian package (`apt-get install -y "
            "espeak-ng`, as root; .ci/run does it) to run the speech generator's test"
        )


def digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_generated_speech_loads_as_a_labelled_wav_source(tmp_path):
    require_espeak()
    speech = generator()
    made = speech.generate(tmp_path / "a", words=2, n_speakers=2, reps=2, test_reps=1, seed=3)
    assert len(made) == 2 * 2 * 2
    speakers = speech.speakers(2)
    manifest = speech.read_manifest(tmp_path / "a")
    for split in ("train", "test"):
        data = load_data(f"wav:{tmp_path / 'a' / split}").train  # data.sample_rate 16000
        assert len(data) == 4 and data.num_channels == 1
        assert data.classes == sorted(speakers)
        rows = [manifest[str(Path(f).resolve())] for f in data.files]
        assert [r["split"] for r in rows] == [split] * 4
        assert [data.classes[i] for i in data.labels] == [r["speaker"] for r in rows]
        assert sorted(r["word"] for r in rows) == sorted(speech.WORDS[:2] * 2)
        lengths = data.mask.sum(1) if data.mask is not None else [data.length] * 4
        for f, n in zip(data.files, lengths, strict=True):
            with wave.open(f) as w:
                assert w.getframerate() == 22050  # espeak-ng's rate; resampled on loading
                seconds = w.getnframes() / w.getframerate()
            assert 0.1 < seconds < 2  # a word, silence cut
            assert abs(int(n) - seconds * 16000) <= 1
    # pitch and speed differ between utterances; the same seed writes the same bytes
    assert len({(u.pitch, u.speed) for u in made}) == len(made)
    speech.generate(tmp_path / "b", words=2, n_speakers=2, reps=2, test_reps=1, seed=3)
    assert digests(tmp_path / "a") == digests(tmp_path / "b")


def test_generator_refuses_a_folder_that_holds_a_set(tmp_path):
    require_espeak()
    speech = generator()
    speech.generate(tmp_path, words=1, n_speakers=1, reps=1, test_reps=0)
    with pytest.raises(FileExistsError, match=r"manifest\.csv"):
        speech.generate(tmp_path, words=1, n_speakers=1, reps=1, test_reps=0)


def test_noise_is_added_at_the_asked_signal_to_noise_ratio(tmp_path):
    require_espeak()
    speech = generator()
    sizes = {"words": 1, "n_speakers": 1, "reps": 2, "test_reps": 0}
    clean = speech.generate(tmp_path / "clean", **sizes)
    noisy = speech.generate(tmp_path / "noisy", **sizes, snr_db=(10, 10))
    # the same utterances (pitch, speed), with noise added
    assert [(u.pitch, u.speed) for u in clean] == [(u.pitch, u.speed) for u in noisy]
    assert len({(u.pitch, u.speed) for u in clean}) == 2
    for u in clean:
        (a, _), (b, _) = (read_wav(tmp_path / kind / u.file) for kind in ("clean", "noisy"))
        assert a.shape == b.shape
        power = np.mean(a.astype(np.float64) ** 2) / np.mean((b - a).astype(np.float64) ** 2)
        assert abs(10 * np.log10(power) - 10) < 0.5
