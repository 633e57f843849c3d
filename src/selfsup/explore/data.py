"""One run's explorer data: its samples and embeddings (the rows `selfsup index` indexes), the
2-D map of the held-out samples, their clusters and nearest neighbours, computed once and cached
under RUN/explore/, and what the page asks of them (a sample, its neighbours, a query)."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from selfsup.data.registry import source_modality
from selfsup.errors import SelfsupError
from selfsup.explore import analysis
from selfsup.export import load
from selfsup.modalities import get_modality
from selfsup.run_data import run_config
from selfsup.search import (
    RunSamples,
    SearchIndex,
    apply_params,
    embed_samples,
    make_index,
    normalize,
    run_samples,
)

CACHE_DIR = "explore"  # inside the run directory
CACHE_FORMAT = "selfsup-explore/1"
TABLE_K = 10  # nearest neighbours kept per mapped sample for the panels
SERIES_POINTS = 200  # a series' sparkline is at most this many points per channel
THUMB_MAX = 128  # larger images are shrunk to this side for the page


def _log(message: str) -> None:
    print(f"selfsup explore: {message}", file=sys.stderr, flush=True)


def check_run(run: str | Path) -> Path:
    """The run directory, or one clear error why it cannot be explored (no data is read)."""
    path = Path(run)
    run_config(path)  # "not a run directory (no config.json)"
    spec = path / "encoder.json"
    if not spec.is_file():
        raise SelfsupError(
            f"{run} has no exported encoder (encoder.json): the run did not finish, or its "
            "method exports none; explore a finished run"
        )
    kind = json.loads(spec.read_text()).get("kind", "image")
    if kind == "word-vectors":
        raise SelfsupError(
            f"{run} is a word-vector run: it has a table of words, not samples to map; "
            f"use `selfsup search {run} WORD` for a word's nearest words"
        )
    return path


def _slug(data: str | None) -> str:
    """The cache folder of a data source: `own` for the run's data, else a readable hash."""
    if data is None:
        return "own"
    digest = hashlib.sha1(data.encode()).hexdigest()[:10]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", data)[:60] + "-" + digest


class RunExplorer:
    """A run's samples, embeddings, map and neighbour tables for the page.

    Rows are numbered as `selfsup index` numbers them (train, then test). The map shows the
    held-out rows (the test split) of the run's own data, or every row of `--data SOURCE`:
    rows `start .. stop-1`; a map position `pos` is row `start + pos`.
    """

    def __init__(self, run: str | Path, data: str | None = None, *, device: str = "cpu"):
        self.run = check_run(run)
        cfg = run_config(self.run)
        encoder = load(self.run, device=device)
        kind = encoder.kind
        encoder_modality = getattr(encoder, "modality", kind)
        modality = get_modality(source_modality(data or cfg.data.source))
        if (modality.encoder_kind or modality.name) != encoder_modality:  # before reading it
            raise SelfsupError(
                f"{data} holds {modality.name} samples but the run's encoder reads "
                f"{encoder_modality} samples (kind {kind}); pass --data with "
                f"{encoder_modality} data"
            )
        samples = run_samples(self.run, data)
        self.data = data
        self._setup(
            self.run.resolve().name,
            samples,
            encoder,
            data or cfg.data.source,
            held_out=data is None and len(samples.parts) == 2,
            knn=(cfg.eval.knn_k, cfg.eval.knn_t),
        )
        self._load_or_compute(device)
        rate = cfg.data.sample_rate if encoder_modality == "series" else None
        self._search_index(device, rate)

    @classmethod
    def from_vectors(
        cls,
        name: str,
        samples: RunSamples,
        vectors: np.ndarray,
        *,
        encoder: Any = None,
        knn: tuple[int, float] = (200, 0.1),
    ) -> RunExplorer:
        """An explorer of given embeddings (one row per sample of `samples`), computed now and
        not cached: what benchmarks/explore_scale.py times without a run."""
        self = cls.__new__(cls)
        self.run, self.data = None, None
        self._setup(name, samples, encoder, name, held_out=len(samples.parts) == 2, knn=knn)
        self._compute_from(np.asarray(vectors, np.float32))
        self._search_index("cpu", None)
        return self

    def _setup(
        self,
        name: str,
        samples: RunSamples,
        encoder: Any,
        data_name: str,
        *,
        held_out: bool,
        knn: tuple[int, float],
    ) -> None:
        self.name, self.samples, self.encoder, self.data_name = name, samples, encoder, data_name
        self.kind = encoder.kind if encoder is not None else "none"
        self.knn_k, self.knn_t = knn
        self.modality = samples.modality.name
        self.ids = samples.ids
        self.labels = None if samples.labels is None else np.asarray(samples.labels, np.int64)
        self.classes = samples.classes
        self.texts = samples.texts
        self._offsets = np.cumsum([0] + [len(d) for _, d in samples.parts])
        self.start, self.stop = (int(self._offsets[1]) if held_out else 0), int(self._offsets[-1])
        self.shown_what = "held-out samples" if held_out else "samples"
        self._row_of = {sample_id: row for row, sample_id in enumerate(self.ids)}

    def _search_index(self, device: str, rate: int | None) -> None:
        self.index = SearchIndex(
            self._faiss_index,
            self.ids,
            None if self.labels is None else self.labels.tolist(),
            self.classes,
            self.encoder,
            device,
            texts=self.texts,
            sample_rate=rate,
        )

    # ------------------------------------------------------------ computed once, cached

    def _cache_key(self) -> dict[str, Any]:
        weights = self.run / "encoder.safetensors"
        stat = weights.stat() if weights.is_file() else (self.run / "encoder.json").stat()
        return {
            "format": CACHE_FORMAT,
            "data": self.data,
            "count": len(self.ids),
            "encoder": [stat.st_size, stat.st_mtime_ns],
            "map_rows": [self.start, self.stop],
            "umap": importlib.util.find_spec("umap") is not None,  # installed since: a UMAP map
        }

    def _load_or_compute(self, device: str) -> None:
        folder = self.run / CACHE_DIR / _slug(self.data)
        self.cache = folder
        meta_path = folder / "meta.json"
        key = self._cache_key()
        if meta_path.is_file():
            meta = json.loads(meta_path.read_text())
            if meta.get("key") == key:
                self._load(folder, meta)
                return
            _log(f"{folder} was made for another encoder or data: computing it again")
        self._compute(device)
        self._save(folder, key)

    def _compute(self, device: str) -> None:
        _log(f"embedding {len(self.ids)} samples of {self.run} ...")
        self._compute_from(embed_samples(self.samples, self.encoder, device))
        _log(f"cached in {self.run / CACHE_DIR}")

    def _compute_from(self, vectors: np.ndarray) -> None:
        """The index, map, clusters, neighbour table and per-class accuracy of `vectors`; each
        step's seconds in `self.timings` (and on the terminal: the first start of a large run
        takes minutes)."""
        m, n = self.stop - self.start, len(vectors)
        self.timings: dict[str, float] = {}

        def step(name: str, work):
            _log(f"{name} ...")
            started = time.perf_counter()
            out = work()
            self.timings[name] = time.perf_counter() - started
            return out

        self.vectors = normalize(vectors)
        self._faiss_index, self.index_params = step(
            f"FAISS index of {n} samples", lambda: make_index(self.vectors)
        )
        mapped = self.vectors[self.start : self.stop]
        self.xy, self.layout = step(
            f"2-D map of {m} {self.shown_what}", lambda: analysis.layout_2d(mapped)
        )
        self.clusters = None
        if self.labels is None:
            cluster = analysis.kmeans_clusters
            self.clusters = step(f"k-means of {m} samples", lambda: cluster(mapped))
        rows = np.arange(self.start, self.stop)
        self.knn_ids, self.knn_sims = step(
            f"{TABLE_K} nearest neighbours of each of the {m} {self.shown_what}",
            lambda: self._search_rows(rows, TABLE_K),
        )
        self.accuracy = step("kNN per class", self._class_accuracy)
        _log(f"map and panels computed in {sum(self.timings.values()):.1f} s")

    def _search_rows(self, rows: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """k neighbours of each row in the index, the row itself left out."""
        k = min(k, len(self.ids) - 1)
        if k < 1:
            return np.zeros((len(rows), 0), np.int64), np.zeros((len(rows), 0), np.float32)
        ids, sims = [], []
        for chunk in range(0, len(rows), 4096):
            part = rows[chunk : chunk + 4096]
            s, f = self._faiss_index.search(self.vectors[part], k + 1)
            i, s = analysis.drop_self(f, s, part, k)
            ids.append(i)
            sims.append(s)
        return np.concatenate(ids), np.concatenate(sims)

    def _class_accuracy(self) -> analysis.ClassAccuracy | None:
        """The kNN protocol per class: held-out rows against the training rows, with the run's
        eval.knn_k and eval.knn_t; None without labels or without a held-out split."""
        if self.labels is None or self.start == 0:
            return None
        return analysis.class_accuracy(
            self.vectors[: self.start],
            self.labels[: self.start],
            self.vectors[self.start : self.stop],
            self.labels[self.start : self.stop],
            self.classes,
            k=self.knn_k,
            temperature=self.knn_t,
        )

    def _save(self, folder: Path, key: dict[str, Any]) -> None:
        import faiss  # lazily, as search.py does: only a computed map is saved

        try:
            folder.mkdir(parents=True, exist_ok=True)
            np.save(folder / "vectors.npy", self.vectors)
            arrays = {"xy": self.xy, "knn_ids": self.knn_ids, "knn_sims": self.knn_sims}
            if self.clusters is not None:
                arrays["clusters"] = self.clusters
            if self.accuracy is not None:
                acc = self.accuracy
                arrays.update(
                    acc_count=acc.count,
                    acc_correct=acc.correct,
                    acc_confusion=acc.confusion,
                    acc_predicted=acc.predicted,
                    acc_k=np.array([acc.k]),
                )
            np.savez(folder / "map.npz", **arrays)
            faiss.write_index(self._faiss_index, str(folder / "index.faiss"))
            meta = {"key": key, "layout": self.layout, "params": self.index_params}
            (folder / "meta.json").write_text(json.dumps(meta) + "\n")  # last: marks it complete
        except OSError as err:
            _log(f"cannot cache in {folder} ({err}); it will be computed again next time")

    def _load(self, folder: Path, meta: dict[str, Any]) -> None:
        import faiss  # lazily, as search.py does

        self.vectors = np.load(folder / "vectors.npy")
        arrays = np.load(folder / "map.npz")
        self.xy, self.knn_ids, self.knn_sims = arrays["xy"], arrays["knn_ids"], arrays["knn_sims"]
        self.clusters = arrays["clusters"] if "clusters" in arrays else None
        self.layout, self.index_params = meta["layout"], meta["params"]
        self._faiss_index = faiss.read_index(str(folder / "index.faiss"))
        apply_params(self._faiss_index, self.index_params)
        self.accuracy = None
        if "acc_count" in arrays:
            self.accuracy = analysis.ClassAccuracy(
                self.label_names(),
                arrays["acc_count"],
                arrays["acc_correct"],
                arrays["acc_confusion"],
                arrays["acc_predicted"],
                int(arrays["acc_k"][0]),
                self.knn_t,
            )
        _log(f"read the map and neighbours cached in {folder}")

    # ------------------------------------------------------------ what the page asks

    def summary(self) -> dict[str, Any]:
        """The run's description for the page: what is mapped, how it is coloured, what it can
        be queried with."""
        kind = self.kind
        colours = self._colours()
        names = (
            self.label_names()
            if self.labels is not None
            else [f"cluster {c}" for c in range(int(colours.max()) + 1 if len(colours) else 0)]
        )
        accuracy = self.accuracy.overall if self.accuracy is not None else None
        return {
            "name": self.name,
            "run": str(self.run),
            "data": self.data_name,
            "modality": self.modality,
            "encoder": kind,
            "count": len(self.ids),
            "map_count": self.stop - self.start,
            "map_start": self.start,
            "map_what": self.shown_what,
            "layout": self.layout,
            "colour_by": "label" if self.labels is not None else "k-means cluster",
            "colour_names": names,
            "index": self.index_params,
            "query": {
                "image": self.modality in ("image", "pair"),
                "text": kind in ("text", "clip"),
                "series": self.modality == "series",
            },
            "knn_accuracy": accuracy,
        }

    def label_names(self) -> list[str]:
        num = int(self.labels.max()) + 1 if self.labels is not None and len(self.labels) else 0
        if self.classes and len(self.classes) >= num:
            return list(self.classes)
        return [str(c) for c in range(num)]

    def _colours(self) -> np.ndarray:
        if self.labels is not None:
            return self.labels[self.start : self.stop]
        return self.clusters if self.clusters is not None else np.zeros(0, np.int64)

    def map_payload(self) -> bytes:
        """The map in one binary block: x (M float32), y (M float32), colour (M uint16),
        little-endian; 10 bytes a sample (1 MB for 100,000)."""
        xy = np.asarray(self.xy, "<f4")
        colour = np.clip(self._colours(), 0, 65535).astype("<u2")
        return xy[:, 0].tobytes() + xy[:, 1].tobytes() + colour.tobytes()

    def row(self, *, row: Any = None, sample_id: Any = None) -> int:
        """A row number from the page's `row` or `id` parameter, checked."""
        if sample_id is not None:
            if sample_id not in self._row_of:
                raise SelfsupError(f"run {self.name} has no sample {sample_id!r}")
            return self._row_of[sample_id]
        try:
            value = int(row)
        except (TypeError, ValueError):
            raise SelfsupError(f"row must be a whole number, got {row!r}") from None
        if not 0 <= value < len(self.ids):
            raise SelfsupError(f"row {value} is out of range: run {self.name} has {len(self.ids)}")
        return value

    def _part(self, row: int) -> tuple[str, Any, int]:
        p = int(np.searchsorted(self._offsets, row, side="right")) - 1
        split, data = self.samples.parts[p]
        return split, data, row - int(self._offsets[p])

    def label_of(self, row: int) -> str | None:
        if self.labels is None:
            return None
        return self.label_names()[int(self.labels[row])]

    def brief(self, row: int, score: float | None = None) -> dict[str, Any]:
        """A sample as a list row: id, label, map position, text; its picture is fetched apart."""
        split, data, _ = self._part(row)
        out: dict[str, Any] = {
            "row": row,
            "id": self.ids[row],
            "split": split,
            "label": self.label_of(row),
            "pos": row - self.start if self.start <= row < self.stop else None,
            "image": hasattr(data, "images"),
        }
        text = self.text_of(row)
        if text is not None:
            out["text"] = text
        if score is not None:
            out["score"] = round(float(score), 6)
            out["distance"] = round(1.0 - float(score), 6)
        return out

    def text_of(self, row: int) -> str | None:
        _, data, i = self._part(row)
        if self.texts is not None:
            return self.texts[row]
        sentences = getattr(data, "sentences", None)
        return None if sentences is None else str(sentences[i])

    def sample(self, row: int) -> dict[str, Any]:
        """A sample for the hover card: its brief, and a series' sparkline values."""
        out = self.brief(row)
        _, data, i = self._part(row)
        series = getattr(data, "series", None)
        if series is not None:
            x = series[i].numpy()
            if data.mask is not None:
                x = x[:, data.mask[i].numpy()]
            step = max(1, -(-x.shape[1] // SERIES_POINTS))
            x = x[:3, : x.shape[1] // step * step].reshape(min(3, len(x)), -1, step).mean(-1)
            out["series"] = np.round(x, 4).tolist()
        return out

    def thumbnail(self, row: int) -> bytes:
        """A sample's image as PNG (at most THUMB_MAX a side; the page enlarges small ones)."""
        from PIL import Image

        _, data, i = self._part(row)
        images = getattr(data, "images", None)
        if images is None:
            raise SelfsupError(f"sample {self.ids[row]!r} is not an image")
        x = np.asarray(images[i])
        if x.dtype != np.uint8:
            x = np.clip(x * 255 if x.max() <= 1 else x, 0, 255).astype(np.uint8)
        picture = Image.fromarray(x[0] if x.shape[0] not in (3,) else x.transpose(1, 2, 0))
        picture.thumbnail((THUMB_MAX, THUMB_MAX))
        buf = io.BytesIO()
        picture.save(buf, format="PNG")
        return buf.getvalue()

    def neighbours(self, row: int, k: int = 10) -> list[dict[str, Any]]:
        """The k nearest samples of a row in the run's index (the row itself left out): what
        `selfsup search` lists for that sample's input after the sample itself."""
        k = max(1, min(int(k), 100))
        ids, sims = self._search_rows(np.array([row]), k)
        mine = self.labels[row] if self.labels is not None else None
        out = []
        for j, s in zip(ids[0].tolist(), sims[0].tolist(), strict=True):
            item = self.brief(j, s)
            item["wrong"] = mine is not None and bool(self.labels[j] != mine)
            out.append(item)
        return out

    def query(
        self,
        *,
        text: str | None = None,
        upload: bytes | None = None,
        name: str = "query",
        k: int = 10,
    ) -> dict[str, Any]:
        """Neighbours and map place of a typed sentence or an uploaded file (image; .npy or
        .wav series), through `SearchIndex.query_vector`, as `selfsup search` embeds queries."""
        kind = self.kind
        if self.encoder is None:
            raise SelfsupError(f"{self.name} has no encoder to embed a query with")
        k = max(1, min(int(k), 100))
        if text is not None:
            if kind not in ("text", "clip"):
                raise SelfsupError(
                    f"a sentence cannot be searched in this run: its encoder is a {kind} encoder, "
                    f"which reads {self.modality} samples; upload "
                    + ("a .npy or .wav file" if self.modality == "series" else "an image")
                )
            if not text.strip():
                raise SelfsupError("type a sentence to search for")
            vector = self.index.query_vector(text.strip())
        else:
            if kind == "text":
                raise SelfsupError(
                    "this run's encoder is a text encoder: type a sentence instead of a file"
                )
            if not upload:
                raise SelfsupError("the uploaded file is empty")
            suffix = Path(name).suffix.lower()[:8] or ".img"
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / f"query{suffix}"
                path.write_bytes(upload)
                try:
                    vector = self.index.query_vector(path)
                except SelfsupError as err:  # name the user's file, not our temporary copy
                    raise SelfsupError(str(err).replace(str(path), Path(name).name)) from None
        hits = self.index.search_vectors(vector, k)[0]
        unit = normalize(vector)[0]
        xy = analysis.place_query(unit, self.vectors[self.start : self.stop], self.xy)
        return {
            "neighbours": [self.brief(self._row_of[i], s) for i, s in hits],
            "xy": [float(xy[0]), float(xy[1])],
        }

    def duplicates(self, threshold: float, limit: int = 200) -> dict[str, Any]:
        """Near-duplicate pairs among the mapped samples and their neighbours (see analysis)."""
        rows = np.arange(self.start, self.stop)
        pairs = analysis.near_duplicates(rows, self.knn_ids, self.knn_sims, threshold)
        return {
            "threshold": threshold,
            "total": len(pairs),
            "pairs": [
                {"a": self.brief(a), "b": self.brief(b), "distance": round(d, 6)}
                for a, b, d in pairs[:limit]
            ],
        }

    def outliers(self, limit: int = 100) -> dict[str, Any]:
        """The mapped samples farthest from their TABLE_K-th nearest neighbour."""
        order, distance = analysis.outliers(self.knn_sims)
        items = []
        for pos, d in zip(order[:limit].tolist(), distance[:limit].tolist(), strict=True):
            item = self.brief(self.start + pos)
            item["distance"] = round(float(d), 6)
            items.append(item)
        return {"k": self.knn_sims.shape[1], "outliers": items}

    def class_accuracy(self) -> dict[str, Any]:
        """Per-class kNN accuracy and the confusion matrix, or why there is none."""
        acc = self.accuracy
        if acc is None:
            why = (
                "no labels: the map is coloured by k-means clusters"
                if self.labels is None
                else "no held-out split to classify (a --data source without a test split)"
            )
            return {"available": False, "why": why}
        return {
            "available": True,
            "k": acc.k,
            "temperature": acc.temperature,
            "overall": acc.overall,
            "classes": acc.classes,
            "count": acc.count.tolist(),
            "correct": acc.correct.tolist(),
            "confusion": acc.confusion.tolist(),
        }
