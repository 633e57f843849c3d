"""Stratified, seeded subsets of a labelled image source written as one .npz, shared by the
benchmarks that run several methods on the same subset (imported as a sibling module: the
benchmarks run as scripts from this folder)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from selfsup.data import load_data


def stratified(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n positions, the same share of each class, in a seeded order."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per = n // len(classes)
    picks = [rng.permutation(np.flatnonzero(labels == c))[:per] for c in classes]
    return np.sort(np.concatenate(picks))


def subset_file(data: str, train: int, test: int, work: Path) -> Path:
    """An .npz of `train` training and `test` test images of `data` (stratified, seed 0)."""
    splits = load_data(data)
    assert splits.test is not None, f"{data} has no test split"
    tr_labels, te_labels = splits.train.labels.numpy(), splits.test.labels.numpy()
    a, b = stratified(tr_labels, train, 0), stratified(te_labels, test, 1)
    path = work / f"{data.replace(':', '_')}-{train}-{test}.npz"
    np.savez(
        path,
        images=splits.train.images.numpy()[a],
        labels=tr_labels[a],
        test_images=splits.test.images.numpy()[b],
        test_labels=te_labels[b],
    )
    return path
