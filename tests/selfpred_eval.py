"""Convergence helpers of the self-prediction methods (issue 9): pretrain on a small image set,
then score the learned encoder and its random twin under a named protocol.

`method_harness.digits_knn` covers kNN on digits; these cover the other protocols (fine-tuning
with few labels) and other small data (digits resized, a CIFAR-10 subset written as a .npz).
"""

from pathlib import Path

import numpy as np
from method_harness import FAST
from shared_data import cifar10_jpg

import selfsup


def pretrain_scores(tmp_path: Path, overrides: dict, epochs: int) -> dict[str, dict]:
    """The evaluation rows ("selfsup", "random", ...) of a short run with `overrides`."""
    cfg = selfsup.make_config(**(FAST | {"train.epochs": epochs} | overrides))
    return selfsup.pretrain(cfg, tmp_path / "run").evaluation


def cifar_subset_npz(path: Path, per_class_train: int, per_class_test: int) -> Path:
    """The first `per_class_*` images of each class of the CIFAR-10 JPEG folders (sorted file
    names), as an `npy:` source: images, labels, test_images, test_labels (uint8 N, 3, 32, 32)."""
    from PIL import Image

    root = cifar10_jpg()
    classes = sorted(p.name for p in (root / "train").iterdir())
    arrays = {}
    for split, k, key in (("train", per_class_train, ""), ("test", per_class_test, "test_")):
        images, labels = [], []
        for label, name in enumerate(classes):
            for file in sorted((root / split / name).glob("*.jpg"))[:k]:
                rgb = np.asarray(Image.open(file).convert("RGB"))
                images.append(rgb.transpose(2, 0, 1))
                labels.append(label)
        arrays[key + "images"] = np.stack(images)
        arrays[key + "labels"] = np.array(labels)
    np.savez(path, **arrays)
    return path
