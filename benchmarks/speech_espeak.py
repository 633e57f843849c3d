"""Spoken words made on this machine with espeak-ng: a labelled WAV folder for selfsup's `wav:DIR`
source, words x speakers x repetitions, where a speaker is an espeak-ng English voice (accent)
with a voice variant (en-us+m3, en-gb-scotland+f2, ...) and every utterance has its own pitch
(-p) and speed (-s), and optionally white noise at its own SNR (--snr LOW HIGH, in dB), drawn
from a seeded generator: the same arguments write the same files.

    python benchmarks/speech_espeak.py OUT --words 10 --speakers 8 --reps 6 --test-reps 2

writes

    OUT/train/<speaker>/<word>-r<rep>.wav   the first reps - test_reps repetitions
    OUT/test/<speaker>/<word>-r<rep>.wav    the last test_reps repetitions (held out)
    OUT/manifest.csv                        split, file, speaker, word, rep, voice, pitch, speed,
                                            snr_db, noise_seed

The folder gives the speaker label (`wav:OUT/train` is a speaker-labelled source); the manifest
gives both labels of every file, which is what the probes read: one load of a folder gives its
rows in file order with their paths, and the manifest maps each path to its word, so the speaker
and word probes use the same rows and features. Files are 16-bit mono PCM at espeak-ng's rate
(22050 Hz), leading and trailing silence cut; selfsup resamples them to `data.sample_rate`.
espeak-ng is needed only here (Debian: apt-get install espeak-ng), not by selfsup.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# Speech Commands' ten command words, then the ten digits: short words of distinct sounds.
WORDS = (
    "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go",
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
)  # fmt: skip
# espeak-ng's English voices (accents) and its voice variants; speaker i is ACCENTS[i % 7] with
# VARIANTS[i % 11] (7 and 11 are coprime: 77 distinct speakers, neighbours differ in both).
ACCENTS = (
    "en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
)  # fmt: skip
VARIANTS = ("m1", "f1", "m2", "f2", "m3", "f3", "m4", "f4", "m5", "m6", "m7")
PITCH = (30, 70)  # espeak-ng -p (0-99, default 50), drawn per utterance
SPEED = (130, 200)  # espeak-ng -s words per minute (default 175), drawn per utterance
SILENCE = 0.01  # |sample| below this (of full scale) at the ends is cut
MARGIN_S = 0.01  # seconds of the cut silence kept at each end


@dataclass(frozen=True)
class Utterance:
    """One file to write: who says which word how, and where it goes."""

    split: str
    file: str  # relative to the output folder
    speaker: str
    word: str
    rep: int
    voice: str
    pitch: int
    speed: int
    snr_db: float | None  # white noise added at this signal-to-noise ratio (None: none)
    noise_seed: int


def speakers(n: int) -> list[str]:
    """The first `n` speakers, as espeak-ng voice names (accent+variant)."""
    most = len(ACCENTS) * len(VARIANTS)
    if not 1 <= n <= most:
        raise ValueError(f"speakers must be 1..{most}; got {n}")
    return [f"{ACCENTS[i % len(ACCENTS)]}+{VARIANTS[i % len(VARIANTS)]}" for i in range(n)]


def plan(
    words: int,
    n_speakers: int,
    reps: int,
    test_reps: int,
    seed: int,
    snr_db: tuple[float, float] | None = None,
) -> list[Utterance]:
    """Every utterance of the set, with its pitch, speed and noise (SNR uniform in `snr_db`)
    drawn from `seed` in a fixed order."""
    if not 1 <= words <= len(WORDS):
        raise ValueError(f"words must be 1..{len(WORDS)}; got {words}")
    if reps < 1 or not 0 <= test_reps < reps:
        raise ValueError(f"want reps >= 1 and 0 <= test_reps < reps; got {reps}, {test_reps}")
    if snr_db is not None and snr_db[0] > snr_db[1]:
        raise ValueError(f"the SNR range must be LOW HIGH with LOW <= HIGH; got {snr_db}")
    rng = np.random.default_rng(seed)
    spread = 0.0 if snr_db is None else snr_db[1] - snr_db[0]
    out = []
    for speaker, word, rep in itertools.product(speakers(n_speakers), WORDS[:words], range(reps)):
        split = "test" if rep >= reps - test_reps else "train"
        share = float(rng.random())  # drawn with or without noise: --snr adds noise, nothing else
        out.append(
            Utterance(
                split=split,
                file=f"{split}/{speaker}/{word}-r{rep:02d}.wav",
                speaker=speaker,
                word=word,
                rep=rep,
                voice=speaker,
                pitch=int(rng.integers(PITCH[0], PITCH[1] + 1)),
                speed=int(rng.integers(SPEED[0], SPEED[1] + 1)),
                snr_db=None if snr_db is None else round(snr_db[0] + share * spread, 2),
                noise_seed=int(rng.integers(2**31)),
            )
        )
    return out


def espeak() -> str:
    """The espeak-ng executable, or an error that says how to install it."""
    found = shutil.which("espeak-ng")
    if found is None:
        raise RuntimeError(
            "espeak-ng is not installed: on Debian/Ubuntu `apt-get install espeak-ng` "
            "(as root, or with sudo); .ci/run installs it"
        )
    return found


def trimmed(samples: np.ndarray, rate: int) -> np.ndarray:
    """int16 samples without the silence espeak-ng leaves at both ends (a margin kept)."""
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > SILENCE * 32768)
    if loud.size == 0:
        return samples
    margin = round(MARGIN_S * rate)
    return samples[max(0, loud[0] - margin) : loud[-1] + 1 + margin]


def noisy(samples: np.ndarray, snr_db: float | None, seed: int) -> np.ndarray:
    """int16 samples with white Gaussian noise at `snr_db` (of the samples' mean power)."""
    if snr_db is None:
        return samples
    x = samples.astype(np.float64)
    scale = np.sqrt(np.mean(x**2) / 10 ** (snr_db / 10))
    x = x + scale * np.random.default_rng(seed).standard_normal(len(x))
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def synthesise(u: Utterance, out: Path, exe: str, scratch: Path) -> None:
    """Write utterance `u` under `out`: espeak-ng's WAV, silence cut, 16-bit mono PCM."""
    raw = scratch / "espeak.wav"
    cmd = [exe, "-v", u.voice, "-p", str(u.pitch), "-s", str(u.speed), "-w", str(raw), u.word]
    subprocess.run(cmd, check=True, capture_output=True)
    with wave.open(str(raw), "rb") as w:
        if w.getsampwidth() != 2 or w.getnchannels() != 1:
            raise RuntimeError(f"espeak-ng wrote {w.getsampwidth() * 8}-bit x {w.getnchannels()}")
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), "<i2")
    target = out / u.file
    target.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(target), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(noisy(trimmed(samples, rate), u.snr_db, u.noise_seed).tobytes())


def generate(
    out: str | Path,
    *,
    words: int = 10,
    n_speakers: int = 8,
    reps: int = 6,
    test_reps: int = 2,
    seed: int = 0,
    snr_db: tuple[float, float] | None = None,
) -> list[Utterance]:
    """Write the set under `out` (which must not hold one already) and its manifest.csv."""
    out = Path(out)
    if (out / "manifest.csv").exists():
        raise FileExistsError(f"{out} holds a speech set already (manifest.csv); pick a new folder")
    utterances = plan(words, n_speakers, reps, test_reps, seed, snr_db)
    exe = espeak()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        for u in utterances:
            synthesise(u, out, exe, Path(scratch))
    with open(out / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(Utterance.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(u.__dict__ for u in utterances)
    return utterances


def read_manifest(folder: str | Path) -> dict[str, dict[str, str]]:
    """The manifest of a set written by `generate`: absolute file path -> its row."""
    folder = Path(folder)
    with open(folder / "manifest.csv", newline="") as f:
        return {str((folder / row["file"]).resolve()): row for row in csv.DictReader(f)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="a new folder for the set")
    parser.add_argument("--words", type=int, default=10, help=f"1..{len(WORDS)}")
    parser.add_argument("--speakers", type=int, default=8, help="1..77")
    parser.add_argument("--reps", type=int, default=6, help="repetitions per (word, speaker)")
    parser.add_argument("--test-reps", type=int, default=2, help="of them held out in test/")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--snr", type=float, nargs=2, metavar=("LOW", "HIGH"), help="white noise, SNR in dB"
    )
    args = parser.parse_args()
    done = generate(
        args.out,
        words=args.words,
        n_speakers=args.speakers,
        reps=args.reps,
        test_reps=args.test_reps,
        seed=args.seed,
        snr_db=None if args.snr is None else tuple(args.snr),
    )
    print(f"wrote {len(done)} utterances under {args.out}")


if __name__ == "__main__":
    main()
