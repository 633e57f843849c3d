"""Session fixtures of the explorer's tests: a one-epoch digits run (two, for side by side), a
tiny text run, their explorers, a server in a thread, and headless Chromium through Playwright."""

import itertools
import shutil
from pathlib import Path

import numpy as np
import pytest
from explore_fixtures import explorer

import selfsup

DIGITS = {
    "train.epochs": 1,
    "train.batch_size": 128,
    "train.progress": False,
    "train.eval_every": 0,
    "train.report": False,
    "eval.protocols": "knn",
    "method.proj_hidden_dim": 64,
    "method.proj_dim": 32,
}

SUBJECTS = ["a man", "a woman", "the cat", "a dog", "two children", "the president"]
VERBS = [
    "is playing a guitar",
    "sits on the mat",
    "runs in the park",
    "is cutting an onion",
    "gave a speech",
    "is reading a book",
    "sleeps on the sofa",
]
SENTENCES = [f"{s} {v}" for s, v in itertools.product(SUBJECTS, VERBS)]  # 42, all different


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory) -> Path:
    path = tmp_path_factory.getbasetemp() / "explore-digits"
    selfsup.pretrain(selfsup.make_config(**DIGITS), path)
    return path


@pytest.fixture(scope="session")
def digits_run_b(tmp_path_factory) -> Path:
    """A second digits run (another seed): the same samples, another encoder."""
    path = tmp_path_factory.getbasetemp() / "explore-digits-b"
    selfsup.pretrain(selfsup.make_config(**DIGITS, **{"train.seed": 1}), path)
    return path


@pytest.fixture(scope="session")
def text_run(tmp_path_factory) -> Path:
    from text.text_fixtures import TEXT_RUN, make_tiny_bert

    base = tmp_path_factory.getbasetemp()
    bert = make_tiny_bert(tmp_path_factory.mktemp("explore-bert"))
    corpus = base / "explore-corpus.txt"
    corpus.write_text("\n".join(SENTENCES) + "\n")
    config = {
        **TEXT_RUN,
        "data.source": f"text:{corpus}",
        "method.name": "simcse",
        "model.path": str(bert),
        "train.epochs": 1,
        "train.batch_size": 8,
        "eval.protocols": "geometry",
    }
    path = base / "explore-text"
    selfsup.pretrain(selfsup.make_config(**config), path)
    return path


@pytest.fixture(scope="session")
def series_run(tmp_path_factory) -> Path:
    """A one-epoch run on 200 small labelled waves (sine, square, saw; 64 steps), 40 held out."""
    base = tmp_path_factory.mktemp("explore-waves")
    rng = np.random.default_rng(0)
    t = np.linspace(0, 4 * np.pi, 64)
    shapes = [np.sin, lambda x: np.sign(np.sin(x)), lambda x: (x % (2 * np.pi)) / np.pi - 1]
    labels = rng.integers(3, size=200)
    phase = rng.uniform(0, 2 * np.pi, 200)
    waves = np.stack([shapes[y](t + p) for y, p in zip(labels, phase, strict=True)])
    waves = (waves + 0.1 * rng.standard_normal(waves.shape))[:, None].astype(np.float32)
    np.savez(
        base / "waves.npz",
        series=waves[:160],
        labels=labels[:160],
        test_series=waves[160:],
        test_labels=labels[160:],
    )
    waves_run = {"data.source": f"series:{base / 'waves.npz'}", "eval.baselines": False}
    selfsup.pretrain(selfsup.make_config(**DIGITS, **waves_run), base / "run")
    return base / "run", base / "waves.npz"


@pytest.fixture(scope="session")
def clip_run(tmp_path_factory) -> Path:
    """A tiny CLIP run (scratch text tower) on 24 + 12 captioned colour squares, 1 epoch."""
    from crossmodal.pair_fixtures import TINY_CLIP, write_class_folders

    base = tmp_path_factory.mktemp("explore-clip")
    root = write_class_folders(base / "squares", 6, 3)
    config = TINY_CLIP | {
        "data.source": f"cifar-captions:{root}",
        "train.batch_size": 8,
        "train.epochs": 1,
        "train.progress": False,
        "train.eval_every": 0,
        "train.report": False,
        "eval.knn_k": 3,
    }
    selfsup.pretrain(selfsup.make_config(**config), base / "run")
    return base / "run"


@pytest.fixture(scope="session")
def digits_explorer(digits_run):
    return explorer(digits_run)


@pytest.fixture(scope="session")
def text_explorer(text_run):
    return explorer(text_run)


@pytest.fixture(scope="session")
def browser():
    """Headless Debian Chromium driven by Playwright (no `playwright install`: CI has no
    access to its download site); skipped where either is missing."""
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium; .ci/run does)")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield chromium
        chromium.close()
