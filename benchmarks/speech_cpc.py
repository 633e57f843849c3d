"""CPC checked the way its paper checks it, on speech made here with espeak-ng: pretrain CPC on
the training utterances, then linear probes on the frozen features for the speaker and for the
word, beside the random encoder of the same architecture and seed and MFCC features. Run by
hand; prints one table and the CPU.

    python benchmarks/speech_cpc.py                  # 10 words x 20 speakers x 6 reps, 10 epochs
    python benchmarks/speech_cpc.py --snr 5 20       # white noise at 5-20 dB SNR per utterance
    python benchmarks/speech_cpc.py --data /tmp/speech --set optim.lr=4e-4

The set (benchmarks/speech_espeak.py): every (word, speaker) pair is said `reps` times with its
own pitch and speed; the last `test_reps` repetitions of every pair are held out. CPC trains on
`wav:DATA/train` only (CPC's own defaults from selfsup; --set KEY=VALUE overrides any config
key). Probes (selfsup's linear probe: logistic regression on standardised features, weight
decay chosen on a validation part of the training rows), each trained on training rows and
scored on held-out rows:

- speaker: held-out utterances of the same speakers and words;
- word: held-out utterances of the same words and speakers (speakers overlap);
- word, new speakers: probe trained on the first half of the speakers, scored on the held-out
  utterances of the other half (the probe never saw these voices; the encoder trained on their
  other utterances).

Anchor, not comparable: van den Oord et al. (2018) report 97.4 % speaker classification on
LibriSpeech (251 speakers) from a linear probe on CPC features, 17.6 % from MFCC features.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy.fft import dct
from scipy.signal import get_window
from speech_espeak import generate, read_manifest  # benchmarks/ is the benchmark's folder
from store_memory import cpu_name

import selfsup
from selfsup.config import parse_scalar
from selfsup.data import load_data
from selfsup.data.series import SeriesData
from selfsup.embedding import encode_rows
from selfsup.evaluate.linear import linear_probe
from selfsup.models.registry import build_encoder

PROBES = ("speaker", "word", "word, new speakers")


def mfcc_features(data: SeriesData, rate: int, n_mfcc: int = 13, n_mels: int = 40) -> np.ndarray:
    """(N, 4 n_mfcc): mean and std over frames of the MFCCs and their deltas, per series (its
    valid steps only). 25 ms Hamming frames every 10 ms, pre-emphasis 0.97, 512-point FFT power,
    `n_mels` triangular mel filters (HTK mel scale) up to rate / 2, log, orthonormal DCT-II."""
    frame, hop, n_fft = round(0.025 * rate), round(0.010 * rate), 512
    filters = mel_filters(n_mels, n_fft, rate)
    window = get_window("hamming", frame)
    out = []
    for i in range(len(data)):
        x = data.series[i, 0].numpy().astype(np.float64)
        if data.mask is not None:
            x = x[: int(data.mask[i].sum())]
        x = np.append(x[0], x[1:] - 0.97 * x[:-1])
        x = np.pad(x, (0, max(0, frame - len(x))))
        starts = np.arange(0, len(x) - frame + 1, hop)
        frames = np.stack([x[s : s + frame] for s in starts]) * window
        power = np.abs(np.fft.rfft(frames, n_fft)) ** 2 / n_fft
        coeffs = dct(np.log(np.maximum(power @ filters.T, 1e-10)), type=2, norm="ortho")
        coeffs = coeffs[:, :n_mfcc]
        deltas = np.gradient(coeffs, axis=0) if len(coeffs) > 1 else np.zeros_like(coeffs)
        both = np.concatenate([coeffs, deltas], axis=1)
        out.append(np.concatenate([both.mean(0), both.std(0)]))
    return np.stack(out).astype(np.float32)


def mel_filters(n_mels: int, n_fft: int, rate: int) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters equally spaced on the HTK mel scale."""
    mels = np.linspace(0, 2595 * np.log10(1 + rate / 2 / 700), n_mels + 2)
    hz = 700 * (10 ** (mels / 2595) - 1)
    bins = np.fft.rfftfreq(n_fft, 1 / rate)
    lo, mid, hi = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    rising = (bins - lo) / (mid - lo)
    falling = (hi - bins) / (hi - mid)
    return np.maximum(0, np.minimum(rising, falling))


def encoder_features(encoder: torch.nn.Module, data: SeriesData) -> np.ndarray:
    """Pooled context features (N, D) of every series, its padding masked."""
    rows = {"series": data.series}
    if data.mask is not None:
        rows["mask"] = data.mask
    return encode_rows(encoder, rows, lambda batch: batch, batch_size=32).numpy()


def labels_of(data: SeriesData, manifest: dict[str, dict[str, str]], key: str) -> list[str]:
    """The manifest's `key` (speaker or word) of every loaded file, in the rows' order."""
    assert data.files is not None
    return [manifest[str(Path(f).resolve())][key] for f in data.files]


def probes(
    train: np.ndarray,
    test: np.ndarray,
    labels: dict[str, tuple[list[str], list[str]]],
    seed: int,
) -> dict[str, float]:
    """Test accuracy of each probe in PROBES on these features (train rows, held-out rows);
    NaN for every probe when a feature is not finite (a diverged encoder is never scored) and
    for "word, new speakers" with fewer than two speakers."""
    if not (np.isfinite(train).all() and np.isfinite(test).all()):
        return dict.fromkeys(PROBES, float("nan"))

    def accuracy(names_fit: list[str], names_test: list[str], fit: np.ndarray, held: np.ndarray):
        classes = sorted(set(names_fit))
        y_fit = torch.tensor([classes.index(n) for n in names_fit])
        y_test = torch.tensor([classes.index(n) for n in names_test])
        result = linear_probe(
            torch.from_numpy(fit), y_fit, torch.from_numpy(held), y_test, seed=seed
        )
        return result["accuracy"]

    out = {
        "speaker": accuracy(*labels["speaker"], train, test),
        "word": accuracy(*labels["word"], train, test),
    }
    speakers_train, speakers_test = labels["speaker"]
    if len(set(speakers_train)) < 2:
        return {**out, "word, new speakers": float("nan")}
    first = set(sorted(set(speakers_train))[: len(set(speakers_train)) // 2])
    fit = [i for i, s in enumerate(speakers_train) if s in first]
    held = [i for i, s in enumerate(speakers_test) if s not in first]
    words_train, words_test = labels["word"]
    out["word, new speakers"] = accuracy(
        [words_train[i] for i in fit], [words_test[i] for i in held], train[fit], test[held]
    )
    return out


def run(args: argparse.Namespace, folder: Path, work: Path) -> dict[str, dict[str, float]]:
    """Pretrain CPC on folder/train and probe cpc, random and mfcc features; their accuracies."""
    overrides = {
        "data.source": f"wav:{folder / 'train'}",
        "method.name": "cpc",
        "train.epochs": args.epochs,
        "train.batch_size": args.batch_size,
        "train.seed": args.seed,
        "train.progress": False,
        "train.report": False,
        "train.eval_every": 0,
        "eval.data": f"wav:{folder / 'test'}",  # so that no training utterance is held out
        "eval.protocols": "knn",
        "eval.baselines": False,
    }
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key.strip()] = parse_scalar(value)
    cfg = selfsup.make_config(**overrides)
    start = time.perf_counter()
    result = selfsup.pretrain(cfg, work / "cpc")
    print(f"pretrained CPC in {time.perf_counter() - start:.0f} s ({result.run_dir})")
    learned = selfsup.load(result.run_dir)
    with torch.random.fork_rng():  # the random encoder as selfsup's own baseline row builds it
        torch.manual_seed(cfg.train.seed)
        initial = build_encoder(learned.spec)
    manifest = read_manifest(folder)
    train = load_data(f"wav:{folder / 'train'}", sample_rate=cfg.data.sample_rate).train
    test = load_data(f"wav:{folder / 'test'}", sample_rate=cfg.data.sample_rate).train
    labels = {
        k: (labels_of(train, manifest, k), labels_of(test, manifest, k))
        for k in ("speaker", "word")
    }
    print(
        f"probes: {len(train)} training and {len(test)} held-out utterances, "
        f"{len(set(labels['speaker'][0]))} speakers, {len(set(labels['word'][0]))} words "
        "(chance: one over each)"
    )
    features = {
        "cpc": (encoder_features(learned, train), encoder_features(learned, test)),
        "random": (encoder_features(initial, train), encoder_features(initial, test)),
        "mfcc": (
            mfcc_features(train, cfg.data.sample_rate),
            mfcc_features(test, cfg.data.sample_rate),
        ),
    }
    return {name: probes(*pair, labels, args.seed) for name, pair in features.items()}


def table(results: dict[str, dict[str, float]]) -> str:
    """One markdown table: a row per feature set, a column per probe (accuracy in %; "-" for
    a probe not scored)."""
    lines = ["| features | " + " | ".join(f"{p} acc" for p in PROBES) + " |"]
    lines.append("|---|" + "---|" * len(PROBES))
    for name, accs in results.items():
        cells = ["-" if np.isnan(accs[p]) else f"{100 * accs[p]:.1f}" for p in PROBES]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data", type=Path, help="a set written by speech_espeak.py (else one is made)"
    )
    parser.add_argument("--words", type=int, default=10)
    parser.add_argument("--speakers", type=int, default=20)
    parser.add_argument("--reps", type=int, default=6)
    parser.add_argument("--test-reps", type=int, default=2)
    parser.add_argument(
        "--snr", type=float, nargs=2, metavar=("LOW", "HIGH"), help="white noise, SNR in dB"
    )
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.data
        if folder is None:
            folder = Path(tmp) / "speech"
            made = generate(
                folder,
                words=args.words,
                n_speakers=args.speakers,
                reps=args.reps,
                test_reps=args.test_reps,
                seed=args.seed,
                snr_db=None if args.snr is None else tuple(args.snr),
            )
            print(f"made {len(made)} utterances with espeak-ng under {folder}")
        results = run(args, folder, Path(tmp))
    print()
    print(table(results))
    print(
        f"\nCPC {args.epochs} epochs, batch {args.batch_size}, seed {args.seed}, CPC's defaults"
        + (f" with {' '.join(args.set)}" if args.set else "")
        + f"; CPU: {cpu_name()}, torch threads {torch.get_num_threads()}."
    )
    print(
        "Anchor (not comparable): CPC paper, LibriSpeech 251 speakers, linear probe: "
        "CPC 97.4 %, MFCC 17.6 % speaker accuracy."
    )


if __name__ == "__main__":
    main()
