"""How `selfsup explore` holds up at 100,000 samples: builds the explorer's data for random
clustered embeddings with labels (80 % a training part, 20 % the held-out part the map shows,
as a run's held-out split; all of them with --map-all) and times what the page asks the
server for, over HTTP.

    OMP_NUM_THREADS=2 python benchmarks/explore_scale.py [--n 100000] [--dim 128] [--map-all]

Prints a table: the one-off computation (index, 2-D map, neighbour table, kNN per class) and
each endpoint's reply size and time (median of repeats). The embeddings are random (Gaussian
clusters), so the figures are of the machinery, not of any encoder.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
import urllib.request

import numpy as np
import torch

from selfsup.data.images import ImageData
from selfsup.explore.data import RunExplorer
from selfsup.explore.server import bind
from selfsup.modalities import get_modality
from selfsup.search import RunSamples


def synthetic(n: int, dim: int, classes: int, held_out: bool, seed: int = 0):
    """Unit-free Gaussian clusters (one per class, overlapping) and 8x8 images to show."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(classes, size=n)
    centres = rng.standard_normal((classes, dim)).astype(np.float32)
    vectors = centres[labels] + 1.5 * rng.standard_normal((n, dim)).astype(np.float32)
    images = torch.from_numpy(rng.integers(0, 256, (n, 1, 8, 8), dtype=np.uint8))
    cut = int(0.8 * n)
    names = [str(c) for c in range(classes)]
    if not held_out:  # one part: every sample is mapped (as with --data SOURCE)
        cut = n
    parts = [("train", ImageData(images[:cut], torch.from_numpy(labels[:cut]), names, "random"))]
    if cut < n:
        parts.append(
            ("test", ImageData(images[cut:], torch.from_numpy(labels[cut:]), names, "random"))
        )
    return RunSamples(get_modality("image"), parts), vectors


def timed(url: str, repeats: int) -> tuple[float, int]:
    """Median seconds of a GET of `url` and the reply's size in bytes."""
    times, size = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        with urllib.request.urlopen(url, timeout=600) as reply:
            size = len(reply.read())
        times.append(time.perf_counter() - start)
    return statistics.median(times), size


PAGE_TIMES = """() => {
  const m = window.selfsupExplore.state.maps[0];
  const median = (f) => {  // of 5 timings of 20 calls each: the page's clock is coarse
    const t = [];
    for (let i = 0; i < 5; i++) {
      const s = performance.now();
      for (let j = 0; j < 20; j++) f();
      t.push((performance.now() - s) / 20);
    }
    return t.sort((a, b) => a - b)[2] / 1000;
  };
  return [median(() => m.drawNow()), median(() => m.nearest(m.width / 2, m.height / 2))];
}"""


def browser_rows(url: str) -> list[tuple[str, float, int | None]]:
    """The page in headless Chromium (software canvas): load to the first map drawn, one full
    redraw (a zoom or pan step), the hover hit-test; none where Playwright or chromium is absent."""
    import shutil

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return []
    if shutil.which("chromium") is None:
        return []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        start = time.perf_counter()
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']", timeout=600_000)
        page.evaluate("() => new Promise(requestAnimationFrame)")  # the first frame is drawn
        loaded = time.perf_counter() - start
        draw, hover = page.evaluate(PAGE_TIMES)
        browser.close()
    return [
        ("page: open to the map drawn (Chromium)", loaded, None),
        ("page: redraw every point, a zoom/pan step (median)", draw, None),
        ("page: hover hit-test over every point (median)", hover, None),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--map-all",
        action="store_true",
        help="map every sample (no held-out part; no kNN panel) instead of the held-out 20 %%",
    )
    args = parser.parse_args()

    samples, vectors = synthetic(args.n, args.dim, args.classes, not args.map_all)
    start = time.perf_counter()
    ex = RunExplorer.from_vectors("random", samples, vectors)
    built = time.perf_counter() - start
    rows = [("build: all of it (once; cached in a run)", built, None)]
    rows += [(f"  {name}", seconds, None) for name, seconds in ex.timings.items()]

    server = bind("127.0.0.1", 0)
    server.explorers = [ex]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = server.url + "api/"
    rng = np.random.default_rng(1)
    some = rng.integers(ex.start, ex.stop, size=args.repeats)
    for name, path in [
        ("runs (summary)", "runs"),
        ("map (all mapped points)", "map?run=0"),
        ("sample (hover)", f"sample?run=0&row={some[0]}"),
        ("thumbnail (hover)", f"thumb?run=0&row={some[0]}"),
        ("neighbours, k=10 (click)", f"neighbours?run=0&row={some[0]}&k=10"),
        ("near-duplicates panel", "duplicates?run=0&threshold=0.02"),
        ("outliers panel", "outliers?run=0"),
        ("kNN accuracy panel", "accuracy?run=0"),
    ]:
        seconds, size = timed(base + path, args.repeats)
        rows.append((f"GET /api/{path.split('?')[0]}: {name}", seconds, size))
    clicks = []
    for row in some:  # different rows: no cache between them
        start = time.perf_counter()
        with urllib.request.urlopen(base + f"neighbours?run=0&row={row}&k=10") as reply:
            json.loads(reply.read())
        clicks.append(time.perf_counter() - start)
    rows.append(("neighbours of different rows, k=10 (median)", statistics.median(clicks), None))
    rows += browser_rows(server.url)
    server.shutdown()

    print(
        f"\n{args.n:,} samples ({ex.stop - ex.start:,} mapped), dimension {args.dim}, "
        f"{args.classes} classes; index {ex.index_params}; layout: {ex.layout}"
    )
    width = max(len(r[0]) for r in rows)
    print(f"{'what':<{width}}  {'ms':>10}  {'bytes':>10}")
    for what, seconds, size in rows:
        print(f"{what:<{width}}  {1000 * seconds:10.1f}  {'' if size is None else f'{size:,}':>10}")


if __name__ == "__main__":
    main()
