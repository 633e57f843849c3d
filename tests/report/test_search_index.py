"""Nearest-neighbour search: approximate indexes against exact search; a digits run end to end."""

import argparse
import itertools
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

import selfsup
import selfsup.search
from selfsup.data import load_data
from selfsup.errors import SelfsupError
from selfsup.search import (
    add_cli,
    build_index,
    load_index,
    make_index,
    normalize,
    query_image,
    recall_at_k,
    search,
)


@pytest.fixture(scope="module")
def indexed(run, tmp_path_factory):
    """The run with a flat index in a folder of its own (the shared run stays index-free)."""
    folder = tmp_path_factory.mktemp("digits-index")
    build_index(run, out=folder)
    return run, folder


def clustered(n, rng, centers, spread=0.5):
    picks = centers[rng.integers(len(centers), size=n)]
    return (picks + spread * rng.standard_normal(picks.shape)).astype(np.float32)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_index_recall_against_exact(kind):
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((40, 32))
    vectors, queries = clustered(20_000, rng, centers), clustered(300, rng, centers)
    exact, params = make_index(vectors, "flat")
    assert params == {"kind": "flat"}
    _, truth = exact.search(normalize(queries), 10)
    index, params = make_index(vectors, kind)
    assert params["kind"] == kind and ("nprobe" in params or "ef_search" in params)
    _, found = index.search(normalize(queries), 10)
    assert recall_at_k(found, truth) >= 0.9
    assert recall_at_k(truth, truth) == 1.0


def test_auto_picks_exact_for_small_sets_and_ivf_for_large(monkeypatch):
    vectors = np.random.default_rng(1).standard_normal((2_000, 8)).astype(np.float32)
    assert make_index(vectors)[1]["kind"] == "flat"
    monkeypatch.setattr(selfsup.search, "FLAT_LIMIT", 1_000)
    _, params = make_index(vectors)
    assert params["kind"] == "ivf" and params["nlist"] == 2_000 // 39
    with pytest.raises(SelfsupError, match="unknown index kind"):
        make_index(vectors, "annoy")


def test_a_test_image_finds_itself_first(indexed):
    run, folder = indexed
    index = load_index(run, index_dir=folder)
    meta = json.loads((folder / "index_ids.json").read_text())
    assert meta["count"] == 1797 == len(index.ids) and meta["params"] == {"kind": "flat"}
    assert index.ids[0] == "train/0" and index.ids[-1] == "test/359"
    test = load_data("digits").test
    hits = index.search(test.images[7], k=10)
    assert len(hits) == 10 and hits[0][0] == "test/7" and hits[0][1] == pytest.approx(1, abs=1e-4)
    assert all(a[1] >= b[1] for a, b in itertools.pairwise(hits))
    assert index.label_of("test/7") == str(int(test.labels[7]))
    # The same image as a PNG file, and as an RGB (H, W, C) array four times larger.
    Image.fromarray(test.images[7, 0].numpy()).save(folder / "query.png")
    assert index.search(folder / "query.png", k=1)[0][0] == "test/7"
    big = np.repeat(np.kron(test.images[7, 0].numpy(), np.ones((4, 4), np.uint8))[..., None], 3, 2)
    # converted to grey and resized to 8 px (antialiased) like any query: the same hits as that
    # small grey image, computed here with torchvision directly
    from torchvision.transforms.v2 import functional as TF

    grey = torch.from_numpy(big[..., 0]).unsqueeze(0)
    small = TF.resize(grey, [8, 8], antialias=True)
    assert index.search(big, k=3) == index.search(small, k=3)


def test_index_in_the_run_then_search_and_cli(run, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    add_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["index", str(run), "--kind", "hnsw", "--overwrite"])
    assert args.handler(args) == 0
    assert "indexed 1797 samples (kind hnsw, ef_search" in capsys.readouterr().out
    with pytest.raises(SelfsupError, match="already exists; pass --overwrite"):
        build_index(run)
    image = load_data("digits").train.images[3, 0].numpy()
    Image.fromarray(image).save(tmp_path / "q.png")
    assert search(run, tmp_path / "q.png", k=5)[0][0] == "train/3"
    args = parser.parse_args(["search", str(run), "--query", str(tmp_path / "q.png"), "-k", "4"])
    assert args.handler(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["rank", "id", "score", "label"] and len(lines) == 5
    assert lines[1].split()[:3] == ["1", "train/3", "1.0000"]


def test_text_and_missing_queries_are_refused(indexed):
    run, folder = indexed
    index = load_index(run, index_dir=folder)
    with pytest.raises(SelfsupError, match="text queries need a text encoder"):
        index.search("a handwritten seven")
    with pytest.raises(SelfsupError, match=r"query image .*missing\.png does not exist"):
        index.search("/no/such/missing.png")
    with pytest.raises(SelfsupError, match="k must be at least 1"):
        index.search(np.zeros((8, 8), np.uint8), k=0)


def test_query_images_fit_the_encoder():
    spec = SimpleNamespace(in_channels=1, image_size=8, backbone="convnet")
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    assert query_image(rgb, spec).shape == (1, 1, 8, 8)
    grey = torch.zeros(1, 8, 8, dtype=torch.uint8)
    colour = SimpleNamespace(in_channels=3, image_size=8, backbone="convnet")
    assert query_image(grey, colour).shape == (1, 3, 8, 8)
    with pytest.raises(SelfsupError, match="must be uint8"):
        query_image(np.zeros((8, 8), np.float32), spec)


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(SelfsupError, match="no index in"):
        load_index(tmp_path)
    with pytest.raises(SelfsupError, match="does not exist"):
        build_index(tmp_path / "nothing")
