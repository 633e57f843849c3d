"""The real data the tests read: `../shared/data` beside the checkout, or SELFSUP_SHARED_DATA.

A test that needs it and cannot find it fails (it never skips silently): CI must not stay green
while a convergence test quietly did not run.
"""

import os
import tarfile
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    """The folder of shared data (STS-B, the CIFAR-10 JPEG tarball)."""
    return Path(os.environ.get("SELFSUP_SHARED_DATA", CHECKOUT.parent / "shared" / "data"))


def require(path: Path, what: str) -> Path:
    """`path` if it exists, else fail the test naming what is missing and how to provide it."""
    if not path.exists():
        pytest.fail(
            f"{what} not found at {path}: put the shared data beside the checkout "
            "(../shared/data) or set SELFSUP_SHARED_DATA to its folder"
        )
    return path


def stsb() -> Path:
    """The STS Benchmark folder (sts-train.csv, sts-dev.csv, sts-test.csv)."""
    return require(shared_data() / "stsbenchmark", "STS-B")


def cifar10_jpg() -> Path:
    """The CIFAR-10 JPEG folders (train/, test/): the checkout's data/cifar10-jpg if extracted
    there, else the shared tarball extracted once into the test cache."""
    local = CHECKOUT / "data" / "cifar10-jpg"
    if (local / "train").is_dir():
        return local
    tarball = require(shared_data() / "cifar10-jpg.tar.gz", "the CIFAR-10 JPEG tarball")
    cache = Path(os.environ.get("SELFSUP_TEST_CACHE", Path.home() / ".cache" / "selfsup-tests"))
    root = cache / "cifar10-jpg"
    if not (root / "train").is_dir():
        partial = cache / "cifar10-jpg.partial"
        partial.mkdir(parents=True, exist_ok=True)
        with tarfile.open(tarball) as tar:
            tar.extractall(partial, filter="data")
        found = next(p.parent for p in partial.rglob("train") if p.is_dir())
        found.rename(root)
    return root
