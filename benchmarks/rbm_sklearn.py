"""selfsup's RBM beside scikit-learn's BernoulliRBM on the same binarised digits: pseudo-likelihood,
logistic-regression accuracy on the hidden features, time per epoch; one markdown table.

The data is scikit-learn's RBM example (plot_rbm_logistic_classification.py): the 8x8 digits
nudged by one pixel in each direction (5x the images), scaled to [0, 1] per pixel, split 80/20
with random_state 0; then binarised (pixel > 0.5), since selfsup's RBM models binary pixels
(the example feeds the grey values as probabilities: that row is given for reference).
Both RBMs get the example's setting: 100 hidden units, learning rate 0.06 at batch 10, 10 epochs,
PCD-1 with batch-size chains; selfsup's through its training loop (`selfsup.pretrain` on an npz
of the same images, lr 0.06 * 256 / 10 per 256 samples). The classifier is the example's
LogisticRegression(C=6000) on p(h|v) of the training images, scored on the test images (lbfgs,
max_iter 5000: the example's newton-cg with tol=1 stops at its first iterate under scikit-learn
1.9.1 and scores 9.68 % on every input); raw binary pixels with C=100 (the example's raw-pixel
model) as reference.
Pseudo-likelihood (mean per test image, nats): scikit-learn's `score_samples` (one random
flipped pixel per image, D times its log-odds) with the same drawn pixels for both, and the
exact sum over all 64 pixels. Time per epoch: scikit-learn's `fit` wall time / n_iter; ours,
the training loop's own clock (step time, excluding start-up and evaluation) per epoch.

    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 taskset -c 0 \\
        python benchmarks/rbm_sklearn.py [--seeds 0 1 2] [--batch-sizes 10 100]

Wall times are speed figures only on a quiet machine, one thread each.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import convolve
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.neural_network import BernoulliRBM

import selfsup
from selfsup.losses import rbm_pseudo_loglik

HIDDEN, LR, BATCH, EPOCHS, C = 100, 0.06, 10, 10, 6000.0  # the example's setting


def nudged_digits() -> tuple[np.ndarray, np.ndarray]:
    """The example's data: each 8x8 digit and its four 1-pixel shifts, scaled to [0, 1]."""
    digits = load_digits()
    x, y = np.asarray(digits.data, "float32"), digits.target
    shifts = [
        [[0, 1, 0], [0, 0, 0], [0, 0, 0]],
        [[0, 0, 0], [1, 0, 0], [0, 0, 0]],
        [[0, 0, 0], [0, 0, 1], [0, 0, 0]],
        [[0, 0, 0], [0, 0, 0], [0, 1, 0]],
    ]
    moved = [
        np.stack([convolve(row.reshape(8, 8), mode="constant", weights=w).ravel() for row in x])
        for w in shifts
    ]
    x = np.concatenate([x, *moved])
    y = np.concatenate([y] * 5)
    x = (x - x.min(0)) / (x.max(0) + 0.0001)
    return x, y


def pseudo_likelihoods(w, b, c, x: np.ndarray, seed: int) -> tuple[float, float]:
    """Mean one-bit estimate (scikit-learn's draw with random_state=seed) and exact sum."""
    v = torch.from_numpy(x).double()
    w, b, c = (torch.as_tensor(np.asarray(t)).double() for t in (w, b, c))
    bits = torch.from_numpy(np.random.RandomState(seed).randint(0, v.shape[1], len(v)))
    one = rbm_pseudo_loglik(v, w, b, c, bits=bits).mean().item()
    return one, rbm_pseudo_loglik(v, w, b, c).mean().item()


def logistic_accuracy(train: np.ndarray, y_train, test: np.ndarray, y_test, c: float) -> float:
    clf = LogisticRegression(C=c, max_iter=5000)
    return float(clf.fit(train, y_train).score(test, y_test))


def sklearn_row(x_tr, y_tr, x_te, y_te, xb_te, seed: int, fit_on=None) -> dict:
    rbm = BernoulliRBM(
        n_components=HIDDEN, learning_rate=LR, batch_size=BATCH, n_iter=EPOCHS, random_state=seed
    )
    start = time.perf_counter()
    rbm.fit(x_tr if fit_on is None else fit_on)
    seconds = (time.perf_counter() - start) / EPOCHS
    one, exact = pseudo_likelihoods(
        rbm.components_, rbm.intercept_visible_, rbm.intercept_hidden_, xb_te, seed
    )
    sk_one = float(rbm.score_samples(xb_te).mean())  # its own draw: the same bits as `one`
    assert abs(sk_one - one) < 1e-6 * max(1.0, abs(one)), (sk_one, one)
    acc = logistic_accuracy(rbm.transform(x_tr), y_tr, rbm.transform(x_te), y_te, C)
    return {"pl_one": one, "pl_exact": exact, "acc": acc, "epoch_s": seconds}


def selfsup_row(x_tr, y_tr, x_te, y_te, seed: int, batch: int, root: Path) -> dict:
    images = (x_tr.reshape(-1, 1, 8, 8) * 255).astype(np.uint8)  # binary: 0 or 255
    test_images = (x_te.reshape(-1, 1, 8, 8) * 255).astype(np.uint8)
    data = root / f"digits-{seed}.npz"
    np.savez(data, images=images, labels=y_tr, test_images=test_images, test_labels=y_te)
    cfg = selfsup.make_config(
        **{
            "data.source": f"npy:{data}",
            "method.name": "rbm",
            "method.hidden": HIDDEN,
            "method.chains": batch,
            "optim.lr": LR * 256 / BATCH,  # linear scaling: LR at BATCH, LR * batch / BATCH
            "train.batch_size": batch,
            "train.epochs": EPOCHS,
            "train.seed": seed,
            "train.eval_every": 0,
            "train.progress": False,
            "train.report": False,
            "train.device": "cpu",
            "eval.protocols": "",
        }
    )
    result = selfsup.pretrain(cfg, root / f"run-{seed}-{batch}")
    rbm = result.encoder
    with torch.no_grad():
        one, exact = pseudo_likelihoods(
            rbm.weight, rbm.visible_bias, rbm.hidden_bias, x_te.astype(np.float64), seed
        )
        f_tr = rbm(torch.from_numpy(images)).numpy()
        f_te = rbm(torch.from_numpy(test_images)).numpy()
    acc = logistic_accuracy(f_tr, y_tr, f_te, y_te, C)
    seconds = len(x_tr) / result.samples_per_second
    return {"pl_one": one, "pl_exact": exact, "acc": acc, "epoch_s": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[BATCH])
    args = parser.parse_args()
    x, y = nudged_digits()
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.2, random_state=0)
    xb_tr, xb_te = (x_tr > 0.5).astype(np.float64), (x_te > 0.5).astype(np.float64)
    rows: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            rows.setdefault("scikit-learn BernoulliRBM, batch 10", []).append(
                sklearn_row(xb_tr, y_tr, xb_te, y_te, xb_te, seed)
            )
            for batch in args.batch_sizes:
                rows.setdefault(f"selfsup rbm, batch {batch}", []).append(
                    selfsup_row(xb_tr, y_tr, xb_te, y_te, seed, batch, Path(tmp))
                )
            # the example's own input: grey values in [0, 1] (scored on the binary test images)
            grey = sklearn_row(x_tr, y_tr, x_te, y_te, xb_te, seed)
            rows.setdefault("scikit-learn, fit on grey [0, 1] (the example's input)", []).append(
                grey
            )
    raw = logistic_accuracy(xb_tr, y_tr, xb_te, y_te, 100.0)
    print(
        f"\nNudged digits binarised: {len(x_tr)} train, {len(x_te)} test images; {HIDDEN} hidden, "
        f"lr {LR} at batch {BATCH}, {EPOCHS} epochs, PCD-1; seeds {args.seeds} (mean, min-max)\n"
    )
    print(
        "| model | logistic top-1 (%) | pseudo-LL, one bit (nats) | pseudo-LL, exact (nats) "
        "| s / epoch |"
    )
    print("|---|---|---|---|---|")
    for name, runs in rows.items():
        cells = []
        for key, scale in (("acc", 100), ("pl_one", 1), ("pl_exact", 1), ("epoch_s", 1)):
            values = np.array([r[key] for r in runs]) * scale
            cells.append(f"{values.mean():.2f} ({values.min():.2f}-{values.max():.2f})")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"| raw binary pixels (C=100) | {100 * raw:.2f} | - | - | - |")


if __name__ == "__main__":
    main()
