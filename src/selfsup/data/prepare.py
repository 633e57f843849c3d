"""Write an image store (store.py): decode a source's images once, in parallel worker
processes, into a preallocated `images.u8` at a fixed size, resumable after an interruption.

The store is built in `OUT.partial/` beside its final folder: `plan.json` (what is being
built), the rows' labels and names, `images.u8` allocated in full, and `progress.jsonl`, one
line per finished chunk of rows. Workers write their chunk's rows straight into the file
(a memory map at the chunk's offset) and the main process records the chunk once it is
flushed, so that rerunning the same command after a Ctrl-C or a kill decodes only the chunks
not recorded, and the result is byte for byte the one an uninterrupted build writes. Last,
skipped rows are compacted away (and an all-grey source kept at one channel), index.json is
written and the folder renamed to OUT.

Rows hold the train split first, then the test split: the source's own, or a fraction of a
labelled source held out (stratified, seed 0) as `holdout_positions` picks it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from tqdm import tqdm

from selfsup.data.decode import DECODER_VERSION, CorruptImageError, decode_image_bytes
from selfsup.data.images import ImageData
from selfsup.data.resize import resize_square
from selfsup.data.split import holdout_positions
from selfsup.data.store import (
    FILES_FILE,
    IMAGES_FILE,
    INDEX_FILE,
    LABELS_FILE,
    VERSION,
    StoreIndex,
    is_store,
    read_index,
    write_index,
)
from selfsup.errors import SelfsupError

CHUNK_ROWS = 256  # rows a worker decodes and the progress record counts at a time
PARTIAL_SUFFIX = ".partial"
_PLAN = "plan.json"
_PROGRESS = "progress.jsonl"
_ROW_LABELS = "rows-labels.npy"  # every planned row's label, before skipped rows go
_ROW_FILES = "rows-files.txt"
_COMPACT = "images.u8.compact"
_OURS = {_PLAN, _PROGRESS, _ROW_LABELS, _ROW_FILES, _COMPACT, IMAGES_FILE, LABELS_FILE}
_OURS |= {FILES_FILE, INDEX_FILE}


@runtime_checkable
class ImageItems(Protocol):
    """Encoded images a store can be written from, e.g. the image column of a Hugging Face
    dataset: `len(items)` images, `name(i)` where image i came from (a path, a shard member;
    its extension, if any, picks the JPEG decoder, else the bytes' signature does),
    `read(i)` its encoded bytes, `labels` one class index per image (or None) and `classes`
    the class names (or None). It is pickled to the worker processes, so hold paths, not open
    files. An optional `fingerprint: str` attribute (names, sizes, times of the underlying
    files) lets a rerun know the source unchanged; without it the names and labels are used.
    """

    labels: list[int] | None
    classes: list[str] | None

    def __len__(self) -> int: ...

    def name(self, i: int) -> str: ...

    def read(self, i: int) -> bytes: ...


@dataclass
class FileItems:
    """Image files on disk (a folder's listing) as ImageItems."""

    files: list[str]
    labels: list[int] | None = None
    classes: list[str] | None = None
    fingerprint: str | None = None

    def __len__(self) -> int:
        return len(self.files)

    def name(self, i: int) -> str:
        return self.files[i]

    def read(self, i: int) -> bytes:
        with open(self.files[i], "rb") as f:
            return f.read()


Rows = ImageItems | ImageData  # encoded images (decoded by workers) or pixels in memory


@dataclass
class Segment:
    """A run of store rows: `positions` of one source split, in order."""

    split: str  # "train" or "test"
    source: Rows
    positions: np.ndarray  # int64


@dataclass
class Prepared:
    """What a build did: the store's index, rows decoded now, chunks reused from an
    interrupted build, and the seconds it took."""

    out: Path
    index: StoreIndex
    decoded: int
    reused_chunks: int
    seconds: float
    up_to_date: bool = False

    def summary(self) -> str:
        n = self.index.shape[0]
        size = sum(f.stat().st_size for f in self.out.iterdir() if f.is_file())
        rate = self.decoded / self.seconds if self.seconds > 0 else 0.0
        splits = ", ".join(f"{k} {b - a:,}" for k, (a, b) in self.index.splits.items())
        shape = "x".join(map(str, self.index.shape[1:]))
        text = (
            f"{n:,} images of {shape} ({splits}) in {self.out}: {size / 1e6:,.1f} MB on disk; "
            f"{self.decoded:,} decoded in {self.seconds:.1f} s ({rate:,.0f} images/s)"
        )
        if self.reused_chunks:
            text += f", {self.reused_chunks} chunk(s) reused from the interrupted build"
        skipped = self.index.skipped
        text += f"; {len(skipped)} skipped" + (f" (first: {skipped[0]})" if skipped else "")
        return text


def carve_segments(
    source: Rows, labels: list[int] | None, fraction: float | None, n: int
) -> tuple[list[Segment], str | None]:
    """Train and test segments of a source without its own test split: `fraction` of its n
    items held out as `holdout_positions(n, labels, fraction, 0)` picks them (both in order),
    or all train when fraction is None or 0."""
    everything = [Segment("train", source, np.arange(n, dtype=np.int64))]
    if not fraction:
        return everything, None
    label_tensor = None if labels is None else torch.as_tensor(labels, dtype=torch.int64)
    try:
        _, test = holdout_positions(n, label_tensor, fraction, 0)
    except ValueError as e:
        raise SelfsupError(f"cannot hold out a test split: {e}") from e
    held = np.zeros(n, dtype=bool)
    held[test.numpy()] = True
    how = "stratified by label" if labels is not None else "at random"
    note = (
        f"{int(held.sum()):,} of the source's {n:,} items held out when the store was written "
        f"({fraction:g}, {how}, seed 0, as holdout_positions picks them)"
    )
    return [
        Segment("train", source, np.flatnonzero(~held)),
        Segment("test", source, np.flatnonzero(held)),
    ], note


def write_store(
    segments: list[Segment],
    out: str | Path,
    *,
    source: str,
    fingerprint: str,
    image_size: int | None,
    classes: list[str] | None,
    test_from: str | None = None,
    workers: int | None = None,
    skip_corrupt: bool = False,
    draft: bool = True,
    chunk_rows: int = CHUNK_ROWS,
    progress: bool = True,
    replace: bool = False,
    on_chunk: Callable[[int], None] | None = None,
) -> Prepared:
    """Write the segments' rows (train then test) as a store at `out`, resized to image_size
    (shorter side, then a centre crop; None: all images must share one size).

    `fingerprint` identifies source and settings: a finished store with the same one is up to
    date, another is refused (unless `replace`, for caches we own); an interrupted build with
    the same plan is resumed, another started over with a warning. `on_chunk(done)` is called
    after each recorded chunk (a progress hook)."""
    out = Path(out).expanduser().absolute()
    full_fingerprint = _settings_digest(fingerprint, image_size, skip_corrupt, draft, segments)
    start = time.perf_counter()
    with _locked(out):
        done = _finished(out, source, full_fingerprint, replace)
        if done is not None:
            return Prepared(out, done, 0, 0, time.perf_counter() - start, up_to_date=True)
        partial = out.with_name(out.name + PARTIAL_SUFFIX)
        job = _plan(segments, partial, image_size, skip_corrupt, draft, chunk_rows)
        plan = {
            "source": source,
            "fingerprint": full_fingerprint,
            "shape": list(job.shape),
            "chunk_rows": chunk_rows,
        }
        records = _open_partial(partial, plan, job, segments, quiet=replace)
        reused = len(records)
        todo = [k for k in range(job.chunks) if k not in records]
        decoded = _run(job, todo, records, partial, workers, progress, on_chunk)
        index = _finish(partial, job, records, segments, plan, classes, test_from)
        if replace and out.exists():
            shutil.rmtree(out)
        os.replace(partial, out)
        for name in (_PLAN, _PROGRESS, _ROW_LABELS, _ROW_FILES):
            (out / name).unlink(missing_ok=True)
    return Prepared(out, index, decoded, reused, time.perf_counter() - start)


def _settings_digest(
    fingerprint: str,
    image_size: int | None,
    skip_corrupt: bool,
    draft: bool,
    segments: list[Segment],
) -> str:
    encoded = any(not isinstance(s.source, ImageData) for s in segments)
    rows = ";".join(f"{s.split}:{len(s.positions)}:{_digest_array(s.positions)}" for s in segments)
    text = (
        f"{fingerprint}\nsize={image_size} skip_corrupt={skip_corrupt} store={VERSION} "
        f"decoder={DECODER_VERSION if encoded else '-'} draft={draft and encoded} rows={rows}"
    )
    return hashlib.sha1(text.encode()).hexdigest()


def _digest_array(a: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


@contextlib.contextmanager
def _locked(out: Path) -> Iterator[None]:
    """One writer at a time in out's parent folder (torchrun ranks loading one folder, two
    commands): the others wait, then find the store finished. A lock on the folder itself
    leaves no lock file behind."""
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # no flock (Windows): one writer is the user's business
        yield
        return
    fd = os.open(out.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _finished(out: Path, source: str, fingerprint: str, replace: bool) -> StoreIndex | None:
    """The index of a finished store of the same source and settings at out; an error for
    anything else there that is not ours to replace."""
    if not out.exists():
        return None
    if is_store(out):
        try:
            index = read_index(out)
        except SelfsupError:
            index = None
        if index is not None and index.fingerprint == fingerprint and index.source == source:
            return index
        if replace:
            return None
        what = (
            f"a store of {index.source} with other settings or contents"
            if index is not None
            else "an unreadable store"
        )
        raise SelfsupError(
            f"{out} already holds {what}; give another --out, or delete {out} to rebuild it"
        )
    if out.is_dir() and not any(out.iterdir()):
        return None  # an empty folder made for the store
    if replace and out.is_dir() and {p.name for p in out.iterdir()} <= _OURS:
        return None
    raise SelfsupError(
        f"{out} already exists and is not an image store; give a new or empty folder as --out"
    )


@dataclass
class _Job:
    """Everything a worker needs to decode a chunk: pickled to each worker once."""

    segments: list[Segment]
    images: Path
    shape: tuple[int, int, int, int]  # of the rows as decoded (3 channels for encoded images)
    image_size: int | None
    reference: tuple[str, tuple[int, int]] | None  # without image_size: the first image's size
    skip_corrupt: bool
    draft: bool
    chunk_rows: int

    @property
    def rows(self) -> int:
        return self.shape[0]

    @property
    def chunks(self) -> int:
        return -(-self.rows // self.chunk_rows)

    @property
    def encoded(self) -> bool:
        return any(not isinstance(s.source, ImageData) for s in self.segments)

    def locate(self, rows: range) -> Iterator[tuple[Segment, np.ndarray, int]]:
        """(segment, its positions, first row) for the parts of `rows` each segment holds."""
        first = 0
        for seg in self.segments:
            last = first + len(seg.positions)
            a, b = max(rows.start, first), min(rows.stop, last)
            if a < b:
                yield seg, seg.positions[a - first : b - first], a
            first = last


def _plan(
    segments: list[Segment],
    partial: Path,
    image_size: int | None,
    skip_corrupt: bool,
    draft: bool,
    chunk_rows: int,
) -> _Job:
    rows = sum(len(s.positions) for s in segments)
    if rows == 0:
        raise SelfsupError("the source holds no images to write")
    arrays = [s.source for s in segments if isinstance(s.source, ImageData)]
    reference = None
    if arrays:
        channels = arrays[0].num_channels
        if len({a.num_channels for a in arrays}) > 1 or image_size is None:
            raise SelfsupError("a store of in-memory images needs one channel count and a size")
        if arrays[0].channel_groups:
            raise SelfsupError(
                "a store holds grey or RGB images; this source stacks other channels "
                f"({arrays[0].channel_groups}): train on it directly instead"
            )
        height = width = image_size
    else:
        channels = 3  # grey images are repeated over RGB; an all-grey store keeps one at the end
        if image_size is None:
            reference = _first_size(segments, skip_corrupt)
            height, width = reference[1]
        else:
            height = width = image_size
    return _Job(
        segments,
        partial / IMAGES_FILE,
        (rows, channels, height, width),
        image_size,
        reference,
        skip_corrupt,
        draft,
        chunk_rows,
    )


def _first_size(segments: list[Segment], skip_corrupt: bool) -> tuple[str, tuple[int, int]]:
    """The first decodable image's (name, (height, width)): all must share it without a size."""
    for seg in segments:
        for p in seg.positions.tolist():
            try:
                image = _decode_item(seg.source, p, None)  # type: ignore[arg-type]
            except CorruptImageError:
                if skip_corrupt:
                    continue
                raise
            return seg.source.name(p), (image.shape[1], image.shape[2])  # type: ignore[union-attr]
    raise SelfsupError("none of the source's images decode")


def _open_partial(
    partial: Path, plan: dict, job: _Job, segments: list[Segment], quiet: bool
) -> dict[int, dict]:
    """The finished chunks of an interrupted build of the same plan, or a fresh partial
    folder (rows labels and names written, images.u8 allocated) and no chunks."""
    if partial.exists():
        old = _read_json(partial / _PLAN)
        if old == plan:
            return _read_progress(partial / _PROGRESS)
        if not partial.is_dir() or not {p.name for p in partial.iterdir()} <= _OURS:
            raise SelfsupError(
                f"{partial} exists and is not an interrupted store build; move it away"
            )
        if old is not None and not quiet:
            warnings.warn(
                f"{partial} holds an interrupted build of another source or settings "
                f"({old.get('source')}); starting over",
                stacklevel=3,
            )
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    labels = _row_labels(segments)
    if labels is not None:
        np.save(partial / _ROW_LABELS, labels)
    names = [_row_name(s, p) for s in segments for p in s.positions.tolist()]
    (partial / _ROW_FILES).write_text("".join(n.replace("\n", " ") + "\n" for n in names))
    with open(job.images, "wb") as f:
        f.truncate(int(np.prod(job.shape)))  # sparse: pages are written by the workers
    (partial / _PLAN).write_text(json.dumps(plan) + "\n")  # last: the partial is now valid
    return {}


def _row_labels(segments: list[Segment]) -> np.ndarray | None:
    parts = []
    for seg in segments:
        labels = seg.source.labels
        if labels is None:
            return None
        parts.append(np.asarray(labels, dtype=np.int64)[seg.positions])
    return np.concatenate(parts)


def _row_name(seg: Segment, position: int) -> str:
    if isinstance(seg.source, ImageData):
        return f"{seg.source.name}#{seg.split}/{position}"
    return seg.source.name(position)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _read_progress(path: Path) -> dict[int, dict]:
    """Finished chunks by number; a line cut short by a kill is ignored (redone)."""
    records: dict[int, dict] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            with contextlib.suppress(ValueError, KeyError, TypeError):
                record = json.loads(line)
                records[int(record["chunk"])] = record
    return records


def _run(
    job: _Job,
    todo: list[int],
    records: dict[int, dict],
    partial: Path,
    workers: int | None,
    progress: bool,
    on_chunk: Callable[[int], None] | None,
) -> int:
    """Decode the chunks in `todo`, recording each as it finishes; the rows decoded."""
    workers = min(workers or os.cpu_count() or 1, len(todo))
    bar = tqdm(
        total=job.rows,
        initial=sum(min(job.chunk_rows, job.rows - k * job.chunk_rows) for k in records),
        unit="img",
        desc=f"writing {partial.name}",
        disable=None if progress else True,
    )
    decoded = 0
    with bar, open(partial / _PROGRESS, "a") as log:

        def record(result: dict) -> None:
            nonlocal decoded
            log.write(json.dumps(result) + "\n")
            log.flush()
            os.fsync(log.fileno())
            records[result["chunk"]] = result
            decoded += result["rows"]
            bar.update(result["rows"])
            if on_chunk is not None:
                on_chunk(len(records))

        if workers > 1 and job.encoded:
            context = _context()
            with context.Pool(workers, initializer=_init_worker, initargs=(job,)) as pool:
                for result in pool.imap_unordered(_decode_chunk, todo):
                    record(result)
        else:
            global _JOB
            _JOB = job
            try:
                for k in todo:
                    record(_decode_chunk(k))
            finally:
                _JOB = None
    return decoded


def _context() -> multiprocessing.context.BaseContext:
    """forkserver where there is one (no fork of a process with threads; the server imports
    selfsup once), else spawn."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        return context
    return multiprocessing.get_context("spawn")


_JOB: _Job | None = None


def _init_worker(job: _Job) -> None:
    global _JOB
    _JOB = job
    torch.set_num_threads(1)  # the processes are the parallelism


def _decode_chunk(k: int) -> dict:
    """Decode chunk k's rows into images.u8 at their offset and flush them; what the
    progress record keeps: grey rows and skipped rows."""
    job = _JOB
    assert job is not None
    rows = range(k * job.chunk_rows, min((k + 1) * job.chunk_rows, job.rows))
    row_bytes = int(np.prod(job.shape[1:]))
    out = np.memmap(
        job.images, np.uint8, "r+", offset=rows.start * row_bytes, shape=(len(rows), *job.shape[1:])
    )
    grey, skipped = 0, []
    for seg, positions, first in job.locate(rows):
        if isinstance(seg.source, ImageData):
            pixels = seg.source.images[torch.as_tensor(positions)]
            start = first - rows.start
            out[start : start + len(positions)] = resize_square(pixels, job.image_size).numpy()
            continue
        for j, p in enumerate(positions.tolist()):
            row = first + j
            try:
                image = _decode_item(seg.source, p, job.image_size if job.draft else None)
            except CorruptImageError:
                if not job.skip_corrupt:
                    raise
                skipped.append(row)
                continue
            if job.image_size is not None:
                image = resize_square(image, job.image_size)
            elif job.reference is not None and tuple(image.shape[1:]) != job.reference[1]:
                _raise_mixed_sizes(job.reference, (seg.source.name(p), tuple(image.shape[1:])))
            grey += image.shape[0] == 1
            out[row - rows.start] = image.expand(job.shape[1], -1, -1).numpy()
    out.flush()
    del out
    return {"chunk": k, "rows": len(rows), "grey": grey, "skipped": skipped}


def _decode_item(items: ImageItems, i: int, min_size: int | None) -> torch.Tensor:
    name = items.name(i)
    try:
        data = items.read(i)
    except OSError as e:
        raise CorruptImageError(f"cannot read image {name} ({e})") from e
    return decode_image_bytes(data, name, min_size)


def _raise_mixed_sizes(a: tuple[str, tuple[int, ...]], b: tuple[str, tuple[int, ...]]) -> None:
    raise SelfsupError(
        f"images have different sizes: {a[0]} is {a[1][1]}x{a[1][0]}, {b[0]} is "
        f"{b[1][1]}x{b[1][0]} (width x height); pass --image-size N to resize them all to NxN "
        f"(shorter side to N, then a centre crop)"
    )


def _finish(
    partial: Path,
    job: _Job,
    records: dict[int, dict],
    segments: list[Segment],
    plan: dict,
    classes: list[str] | None,
    test_from: str | None,
) -> StoreIndex:
    """Compact skipped rows away (and drop to one channel when every image was grey), write
    labels, files and, last, the index."""
    skipped = sorted(r for record in records.values() for r in record["skipped"])
    kept = np.setdiff1d(np.arange(job.rows), np.asarray(skipped, dtype=np.int64))
    if len(kept) == 0:
        raise SelfsupError(f"none of the {job.rows} images decode")
    grey = sum(record["grey"] for record in records.values())
    channels = 1 if job.encoded and grey == len(kept) else job.shape[1]
    shape = (len(kept), channels, *job.shape[2:])
    if shape != job.shape and job.images.stat().st_size != int(np.prod(shape)):
        _compact(partial, job, kept, shape)  # (the size tells a compaction already done)
    names = (partial / _ROW_FILES).read_text().splitlines()
    (partial / FILES_FILE).write_text("".join(names[r] + "\n" for r in kept.tolist()))
    labels_path = partial / _ROW_LABELS
    if labels_path.is_file():
        np.save(partial / LABELS_FILE, np.load(labels_path)[kept])
    splits, first = {}, 0
    for seg in segments:
        last = first + len(seg.positions)
        a, b = np.searchsorted(kept, [first, last])
        splits[seg.split] = (int(a), int(b))
        first = last
    index = StoreIndex(
        shape=shape,  # type: ignore[arg-type]
        splits=splits,
        source=plan["source"],
        fingerprint=plan["fingerprint"],
        labelled=labels_path.is_file(),
        classes=classes,
        skipped=[names[r] for r in skipped],
        test_from=test_from,
    )
    write_index(partial, index)
    return index


def _compact(partial: Path, job: _Job, kept: np.ndarray, shape: tuple[int, ...]) -> None:
    """images.u8 with only the kept rows and channels, through a new file renamed over it:
    an interruption here leaves the full rows, and the rerun compacts again."""
    compact = partial / _COMPACT
    rows = np.memmap(job.images, np.uint8, "r", shape=job.shape)
    with open(compact, "wb") as f:
        for block in np.array_split(kept, max(1, len(kept) // job.chunk_rows)):
            f.write(np.ascontiguousarray(rows[block, : shape[1]]).tobytes())
    del rows
    os.replace(compact, job.images)
