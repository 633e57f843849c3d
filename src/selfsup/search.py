"""Nearest-neighbour search over a run's embeddings with FAISS: build an index, then query it.

Vectors are L2-normalised and compared by inner product, so a score is a cosine similarity.
Below `FLAT_LIMIT` vectors the index is exact (flat); above it, IVF (or HNSW on request), with
its search breadth (nprobe / efSearch) calibrated on the data to reach `TARGET_RECALL`@10.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from selfsup.api import embed
from selfsup.data.decode import IMAGE_EXTENSIONS, CorruptImageError, decode_image_file
from selfsup.data.lines import LazyLines
from selfsup.data.registry import source_modality
from selfsup.data.series import read_wav, valid_lengths
from selfsup.data.split import Split
from selfsup.embedding import encode_rows, unit_rows
from selfsup.errors import SelfsupError
from selfsup.export import load
from selfsup.modalities import get_modality
from selfsup.models.encoder import preprocess_images
from selfsup.run_data import load_run_splits, run_config

INDEX_FILE = "index.faiss"
IDS_FILE = "index_ids.json"
INDEX_FORMAT = "selfsup-index/1"
KINDS = ("auto", "flat", "ivf", "hnsw")
FLAT_LIMIT = 50_000  # below this many vectors, exact search is fast enough
TARGET_RECALL = 0.95  # recall@10 against exact search that IVF/HNSW are tuned to reach


def _faiss():
    try:
        import faiss  # lazily: `selfsup --help` and the other commands need no FAISS
    except ImportError:  # pragma: no cover - faiss is a declared dependency
        raise SelfsupError("search needs faiss, which is missing: pip install faiss-cpu") from None
    return faiss


# ---------------------------------------------------------------- data and images of a run


def sample_ids(data: Any, split: str) -> list[str]:
    """One id per sample: its file path when the loader kept one, else `split/index`."""
    for name in ("files", "paths", "ids", "sentences"):
        values = getattr(data, name, None)
        if isinstance(values, LazyLines):  # read on demand: ids, not a copy of the corpus
            continue
        if values is not None and len(values) == len(data):
            return [str(v) for v in values]
    return [f"{split}/{i}" for i in range(len(data))]


def sample_texts(data: Split) -> list[str] | None:
    """The caption of each sample of image-caption data (shown beside its image), else None."""
    return None if data.captions is None else [str(c) for c in data.captions]


def query_series(query: Any, sample_rate: int | None = None) -> np.ndarray:
    """One query series as float32 (1, C, T): a `.npy` file or an array shaped (T,), (C, T) or
    (1, C, T) (NaN at its end is padding, cut), or a `.wav` file resampled to the run's rate."""
    if isinstance(query, (str, Path)):
        path = Path(query).expanduser()
        if not path.is_file():
            raise SelfsupError(
                f"query {query} is not a file; a series run is searched with a .npy file of "
                "one series (T,) or (C, T), or a .wav file"
            )
        if path.suffix.lower() == ".wav":
            x, rate = read_wav(path)
            x = x.mean(0, keepdims=True)
            if sample_rate and rate != sample_rate:
                from scipy.signal import resample_poly  # lazily: scipy only for a .wav query

                g = math.gcd(rate, sample_rate)
                x = resample_poly(x, sample_rate // g, rate // g, axis=1).astype(np.float32)
            array = x
        elif path.suffix.lower() == ".npy":
            try:
                array = np.load(path, allow_pickle=False)
            except ValueError as err:
                raise SelfsupError(f"cannot read query {path} as a numpy array: {err}") from None
        else:
            raise SelfsupError(
                f"query {path} is neither a .npy nor a .wav file; a series run is searched "
                "with one series"
            )
    else:
        array = np.asarray(query)
    if not np.issubdtype(array.dtype, np.number):
        raise SelfsupError(f"a query series must hold numbers, got {array.dtype}")
    array = np.asarray(array, dtype=np.float32)
    if array.ndim == 3 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or array.shape[1] == 0:
        raise SelfsupError(
            f"a query series must be one series (T,), (C, T) or (1, C, T); got shape "
            f"{tuple(array.shape)}"
        )
    length = int(valid_lengths(array[None], "the query series")[0])
    return array[None, :, :length]


def query_image(query: Any, spec: Any) -> torch.Tensor:
    """One query as uint8 (1, C, H, W) for an encoder of `spec`: a file path or an image array.

    Decoded and resized exactly as the data loaders do (`decode_image_file`, `resize_square`),
    so a query meets the index on the same footing. Text is refused: these encoders read images.
    """
    if isinstance(query, (str, Path)):
        path = Path(query).expanduser()
        if path.is_dir():
            raise SelfsupError(f"query {query} is a folder; pass one image file")
        if not path.is_file():
            text = str(query)
            if path.suffix.lower() in IMAGE_EXTENSIONS or "/" in text or "\\" in text:
                raise SelfsupError(f"query image {query} does not exist")
            raise SelfsupError(
                f"text queries need a text encoder, which this run does not have (its encoder "
                f"is an image encoder, backbone {spec.backbone!r}); pass an image file instead"
            )
        try:
            array = decode_image_file(str(path))
        except CorruptImageError:
            raise SelfsupError(f"cannot decode query image {path}; is it an image file?") from None
    else:
        array = torch.as_tensor(np.asarray(query))
        if array.dtype != torch.uint8:
            raise SelfsupError(f"a query array must be uint8 pixels, got {array.dtype}")
        if array.dim() == 4 and array.shape[0] == 1:
            array = array[0]
        if array.dim() == 2:
            array = array.unsqueeze(0)
        if array.dim() != 3:
            raise SelfsupError(
                f"a query array must be one image (C, H, W), (H, W, C) or (H, W); "
                f"got shape {tuple(array.shape)}"
            )
        if array.shape[0] not in (1, 3) and array.shape[-1] in (1, 3):
            array = array.permute(2, 0, 1)
        if array.shape[0] not in (1, 3):
            raise SelfsupError(f"a query image must have 1 or 3 channels, got {array.shape[0]}")
    return preprocess_images(array.unsqueeze(0), spec)


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), float32 and C-contiguous for FAISS."""
    return np.ascontiguousarray(unit_rows(np.asarray(vectors, dtype=np.float32)))


# ---------------------------------------------------------------- the FAISS index itself


def make_index(
    vectors: np.ndarray, kind: str = "auto", *, target_recall: float = TARGET_RECALL, seed: int = 0
) -> tuple[Any, dict[str, Any]]:
    """A FAISS inner-product index over unit `vectors`, plus its settings (kind, nprobe, ef).

    `auto` is exact below FLAT_LIMIT vectors, else IVF with nlist ~ 4 sqrt(N).
    """
    faiss = _faiss()
    if kind not in KINDS:
        raise SelfsupError(f"unknown index kind {kind!r}; choose from {', '.join(KINDS)}")
    x = normalize(vectors)
    n, d = x.shape
    if n == 0:
        raise SelfsupError("no vectors to index")
    if kind == "auto":
        kind = "flat" if n < FLAT_LIMIT else "ivf"
    params: dict[str, Any] = {"kind": kind}
    if kind == "flat":
        index = faiss.IndexFlatIP(d)
        index.add(x)
        return index, params
    if kind == "ivf":
        nlist = max(1, min(round(4 * math.sqrt(n)), n // 39))  # faiss wants >= 39 points a list
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        train = x if n <= 256 * nlist else x[rng.choice(n, 256 * nlist, replace=False)]
        index.cp.seed = seed
        index.train(train)
        index.add(x)
        params["nlist"] = nlist

        def set_breadth(value: int) -> None:
            index.nprobe = value

        values = [v for v in (1, 2, 4, 8, 16, 32, 64, 128, 256) if v < nlist] + [nlist]
        params["nprobe"] = _calibrate(index, x, set_breadth, values, target_recall, seed)
        return index, params
    index = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 80
    index.add(x)

    def set_ef(value: int) -> None:
        index.hnsw.efSearch = value

    values = [16, 32, 64, 128, 256, 512]
    params["ef_search"] = _calibrate(index, x, set_ef, values, target_recall, seed)
    return index, params


def _calibrate(index, x, set_breadth, values, target: float, seed: int, k: int = 10) -> int:
    """The smallest search breadth whose recall@k against exact search reaches `target`.

    The trial queries are indexed points moved by noise of about their nearest-neighbour
    distance, standing in for new samples (a point's own neighbours are easier to find).
    """
    faiss = _faiss()
    rng = np.random.default_rng(seed + 1)
    sample = x[rng.choice(len(x), min(200, len(x)), replace=False)]
    k = min(k, len(x))
    exact = faiss.IndexFlatIP(x.shape[1])
    exact.add(x)
    sims, _ = exact.search(sample, min(2, len(x)))
    spacing = float(np.sqrt(np.clip(2 - 2 * sims[:, -1], 0, None)).mean())
    noise = rng.standard_normal(sample.shape).astype(np.float32) * (spacing / np.sqrt(x.shape[1]))
    queries = normalize(sample + noise)
    _, truth = exact.search(queries, k)
    for value in values:
        set_breadth(value)
        _, found = index.search(queries, k)
        if recall_at_k(found, truth) >= target:
            return value
    return values[-1]


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of each row of `truth` (exact neighbour ids) present in the row of `found`."""
    hits = sum(len(set(f.tolist()) & set(t.tolist())) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


def apply_params(index: Any, params: dict[str, Any]) -> None:
    """Restore search-time settings that a saved index may not carry."""
    faiss = _faiss()
    if "nprobe" in params:
        faiss.extract_index_ivf(index).nprobe = int(params["nprobe"])
    if "ef_search" in params:
        index.hnsw.efSearch = int(params["ef_search"])


# ---------------------------------------------------------------- run-level API


@dataclass
class RunSamples:
    """The samples `selfsup index` embeds of a run: every sample of its data (train, then
    test), one id, label and caption each; `selfsup explore` reads the same ones."""

    modality: Any
    parts: list[tuple[str, Any]]  # ("train" | "test", split) in row order

    @property
    def ids(self) -> list[str]:
        return [i for split, d in self.parts for i in sample_ids(d, split)]

    @property
    def labels(self) -> list[int] | None:
        if not all(d.labels is not None for _, d in self.parts):
            return None
        return [int(y) for _, d in self.parts for y in d.labels.tolist()]

    @property
    def classes(self) -> list[str] | None:
        return self.parts[0][1].classes

    @property
    def texts(self) -> list[str] | None:
        texts = [sample_texts(d) for _, d in self.parts]
        return [t for part in texts for t in part] if all(texts) else None


def run_samples(run: str | Path, data_spec: str | None = None) -> RunSamples:
    """The run's data (or `data_spec`) with its recorded held-out split applied, train then test."""
    cfg = run_config(run)
    modality = get_modality(source_modality(data_spec or cfg.data.source))
    splits = load_run_splits(cfg, Path(run) if data_spec is None else None, source=data_spec)
    return RunSamples(
        modality, [("train", splits.train)] + ([("test", splits.test)] if splits.test else [])
    )


def embed_samples(samples: RunSamples, encoder: Any, device: str = "cpu") -> np.ndarray:
    """(N, D) float32 embeddings of every sample, in the order of `samples.ids`."""
    modality = samples.modality
    return np.concatenate(
        [
            encode_rows(
                encoder, modality.tensors(d, encoder), modality.encoder_input, device=device
            ).numpy()
            for _, d in samples.parts
        ]
    )


def build_index(
    run: str | Path,
    data_spec: str | None = None,
    *,
    kind: str = "auto",
    out: str | Path | None = None,
    overwrite: bool = False,
    device: str = "cpu",
) -> Path:
    """Embed every sample of the run's data (or `data_spec`) and write `index.faiss` plus
    `index_ids.json` (ids, labels) into `out` (default: the run directory); return the index path.
    """
    folder = Path(out) if out is not None else Path(run)
    index_path, ids_path = folder / INDEX_FILE, folder / IDS_FILE
    if index_path.exists() and not overwrite:
        raise SelfsupError(f"{index_path} already exists; pass --overwrite to rebuild it")
    if kind not in KINDS:
        raise SelfsupError(f"unknown index kind {kind!r}; choose from {', '.join(KINDS)}")
    encoder = load(run, device=device)
    samples = run_samples(run, data_spec)
    vectors = embed_samples(samples, encoder, device)
    index, params = make_index(vectors, kind)
    folder.mkdir(parents=True, exist_ok=True)
    _faiss().write_index(index, str(index_path))
    meta = {
        "format": INDEX_FORMAT,
        "metric": "cosine",
        "dim": int(vectors.shape[1]),
        "count": len(vectors),
        "data": data_spec,
        "params": params,
        "ids": samples.ids,
        "texts": samples.texts,
        "labels": samples.labels,
        "classes": samples.classes,
    }
    ids_path.write_text(json.dumps(meta) + "\n")
    return index_path


@dataclass
class SearchIndex:
    """A loaded index with its sample ids and the encoder that maps queries into its space."""

    index: Any
    ids: list[str]
    labels: list[int] | None
    classes: list[str] | None
    encoder: Any
    device: str = "cpu"
    texts: list[str] | None = None  # each sample's caption (image-caption runs)
    sample_rate: int | None = None  # a series run's rate: .wav queries are resampled to it
    _positions: dict[str, int] = field(default_factory=dict, init=False, repr=False)

    def search_vectors(self, vectors: np.ndarray, k: int = 10) -> list[list[tuple[str, float]]]:
        """Top-k (id, cosine) per row of `vectors`, best first."""
        if k < 1:
            raise SelfsupError(f"k must be at least 1, got {k}")
        scores, found = self.index.search(normalize(vectors), min(k, len(self.ids)))
        return [
            [(self.ids[j], float(s)) for j, s in zip(row_ids, row_scores, strict=True) if j >= 0]
            for row_ids, row_scores in zip(found, scores, strict=True)
        ]

    def search(self, query: Any, k: int = 10) -> list[tuple[str, float]]:
        """Top-k (id, cosine) of one query: a sentence for a text encoder; an image path, or a
        uint8 image array or tensor, for an image encoder; either for a clip encoder (a sentence
        finds images by their text embedding); a .npy / .wav file or an array of one series for
        a series encoder."""
        return self.search_vectors(self.query_vector(query), k)[0]

    def query_vector(self, query: Any) -> np.ndarray:
        """The (1, D) embedding of one query as `search` reads it (see there)."""
        if self.encoder.kind == "clip" and isinstance(query, str) and not Path(query).is_file():
            x: Any = [query]  # text-to-image search in CLIP's shared space
        elif getattr(self.encoder, "modality", self.encoder.kind) == "series":
            x = query_series(query, self.sample_rate)
        elif self.encoder.kind == "text":
            if not isinstance(query, str):
                raise SelfsupError(
                    "this run's encoder is a text encoder; the query must be a sentence"
                )
            x = [query]
        else:
            x = query_image(query, getattr(self.encoder.spec, "image", self.encoder.spec))
        return embed(self.encoder, x, device=self.device)

    def label_of(self, sample_id: str) -> str | None:
        """The class name (or number) of an indexed sample, if the data had labels."""
        if self.labels is None:
            return None
        if not self._positions:
            self._positions.update((s, i) for i, s in enumerate(self.ids))
        y = self.labels[self._positions[sample_id]]
        return self.classes[y] if self.classes and 0 <= y < len(self.classes) else str(y)

    def text_of(self, sample_id: str) -> str | None:
        """The caption of an indexed image (image-caption runs), else None."""
        if self.texts is None:
            return None
        if not self._positions:
            self._positions.update((s, i) for i, s in enumerate(self.ids))
        return self.texts[self._positions[sample_id]]


def load_index(
    run: str | Path, *, index_dir: str | Path | None = None, device: str = "cpu"
) -> SearchIndex:
    """Open the index built by `build_index` (in `index_dir`, default the run directory)."""
    folder = Path(index_dir) if index_dir is not None else Path(run)
    index_path, ids_path = folder / INDEX_FILE, folder / IDS_FILE
    if not index_path.is_file() or not ids_path.is_file():
        raise SelfsupError(f"no index in {folder}; build one first with `selfsup index {run}`")
    meta = json.loads(ids_path.read_text())
    if meta.get("format") != INDEX_FORMAT:
        raise SelfsupError(f"{ids_path} is not a selfsup index file")
    index = _faiss().read_index(str(index_path))
    apply_params(index, meta.get("params", {}))
    encoder = load(run, device=device)
    rate = None
    if getattr(encoder, "modality", encoder.kind) == "series":
        rate = run_config(run).data.sample_rate
    return SearchIndex(
        index,
        meta["ids"],
        meta.get("labels"),
        meta.get("classes"),
        encoder,
        device,
        texts=meta.get("texts"),
        sample_rate=rate,
    )


def search(run: str | Path, query: Any, k: int = 10) -> list[tuple[str, float]]:
    """The k nearest indexed samples to `query` (a sentence, an image path or a uint8 array),
    as (id, cosine)."""
    return load_index(run).search(query, k)


# ---------------------------------------------------------------- command line


def _run_index(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    path = build_index(
        args.run, args.data, kind=args.kind, overwrite=args.overwrite, device=args.device
    )
    meta = json.loads((path.parent / IDS_FILE).read_text())
    settings = ", ".join(f"{k} {v}" for k, v in meta["params"].items())
    print(
        f"indexed {meta['count']} samples ({settings}) in {time.perf_counter() - start:.1f} s: "
        f"{path}"
    )
    return 0


def shown(text: str, width: int, *, tail: bool = False) -> str:
    """`text` on one line of at most `width` characters, cut with an ellipsis at its end, or
    at its start with `tail` (a file path keeps its name)."""
    line = " ".join(text.split())
    if len(line) <= width:
        return line
    return "…" + line[len(line) - width + 1 :] if tail else line[: max(width - 1, 0)] + "…"


def _run_search(args: argparse.Namespace) -> int:
    if (args.query is None) == (args.query_text is None):
        raise SelfsupError(
            "give one query: selfsup search RUN QUERY (or --query QUERY): an image or series "
            "file, or a sentence for a text or image-text run"
        )
    if _kind_of(args.run) == "word-vectors":  # a word table: its nearest words, no index
        return _nearest_words(args)
    index = load_index(args.run, device=args.device)
    hits = index.search(args.query if args.query is not None else args.query_text, args.k)
    labelled = index.labels is not None
    labels = [index.label_of(i) or "" for i, _ in hits] if labelled else []
    texts = [index.text_of(i) or "" for i, _ in hits] if index.texts is not None else []
    # one line a hit, never wider than the terminal: long ids and captions are cut
    columns = shutil.get_terminal_size((120, 24)).columns
    label_width = max([len(x) for x in labels] + [5]) if labelled else 0
    fixed = 4 + 2 + 2 + 7 + (2 + label_width if labelled else 0) + (2 if texts else 0)
    room = max(columns - fixed, 16)  # for the id and the caption
    longest = max([len(i) for i, _ in hits] + [2])
    width = min(longest, room // 2 if texts else room)
    text_width = room - width
    paths = index.encoder.kind != "text"  # ids are paths (or split/index), not sentences
    head = f"{'rank':>4}  {'id':<{width}}  {'score':>7}"
    head += f"  {'label':<{label_width}}" if labelled else ""
    print((head + ("  caption" if texts else "")).rstrip())
    for rank, (sample_id, score) in enumerate(hits, 1):
        line = f"{rank:>4}  {shown(sample_id, width, tail=paths):<{width}}  {score:7.4f}"
        line += f"  {labels[rank - 1]:<{label_width}}" if labelled else ""
        line += f"  {shown(texts[rank - 1], text_width)}" if texts else ""
        print(line.rstrip())
    return 0


def _kind_of(run: str | Path) -> str | None:
    """The kind in a run's encoder.json, or None when there is none to read."""
    spec = Path(run) / "encoder.json"
    return json.loads(spec.read_text()).get("kind", "image") if spec.is_file() else None


def _nearest_words(args: argparse.Namespace) -> int:
    """`selfsup search RUN --query WORD` on a word-vector run: the k nearest words by cosine,
    the query word never among them."""
    from selfsup.export import load

    query = args.query if args.query is not None else args.query_text
    table = load(args.run, device=args.device)
    hits = table.nearest(query.strip(), args.k)
    width = max([len(w) for w, _ in hits] + [4])
    print(f"{'rank':>4}  {'word':<{width}}  {'cosine':>7}")
    for rank, (word, score) in enumerate(hits, 1):
        print(f"{rank:>4}  {word:<{width}}  {score:7.4f}")
    return 0


def add_cli(subparsers: Any) -> None:
    """Add `selfsup index` and `selfsup search` to the command line's subparsers."""
    p = subparsers.add_parser(
        "index", help="build a FAISS index of a run's embeddings for `selfsup search`"
    )
    p.add_argument("run", help="run directory made by `selfsup pretrain`")
    p.add_argument("--data", help="NAME[:PATH] to index; default the run's training data")
    p.add_argument(
        "--kind",
        choices=KINDS,
        default="auto",
        help=f"auto: exact below {FLAT_LIMIT} samples, else IVF",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing index")
    p.add_argument("--device", default="cpu")
    p.set_defaults(handler=_run_index)
    s = subparsers.add_parser("search", help="nearest neighbours of a query in a run's index")
    s.add_argument("run", help="run directory holding an index (see `selfsup index`)")
    what = (
        "an image file; a sentence for a text or image-text run; a .npy or .wav file of one "
        "series for a series run"
    )
    s.add_argument("query_text", nargs="?", metavar="QUERY", help=what)
    s.add_argument("--query", help=f"the query, as a flag: {what}")
    s.add_argument("-k", type=int, default=10, help="number of neighbours (default 10)")
    s.add_argument("--device", default="cpu")
    s.set_defaults(handler=_run_search)
