"""Text files larger than memory: a line index built once, lines read on demand with mmap.

`text:FILE` normally reads the whole file into a list of strings. A corpus of a few GB must
train without that, so above a size threshold (`data.stream_text`: auto | true | false) the
file is scanned once in chunks (numpy over the bytes, vectorised search for b"\\n") and only
the byte offsets of its non-blank lines are kept: an int64 array, 8 bytes a line, written to
the data cache ($SELFSUP_CACHE_DIR) keyed by the file's path, size and mtime and opened again
with numpy's memmap, so even the index is not held in memory. A `LineStore` reads the lines a
batch needs through mmap (UTF-8 decode, strip), so the training loop, its shuffling and exact
resume are unchanged: they only see positions.

Lines end at b"\\n" (a CRLF's b"\\r" is stripped with the other surrounding whitespace); a line
is blank when it holds only whitespace (as `str.strip` sees it) and is skipped, as in the eager
loader.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import overload

import numpy as np
import torch

from selfsup.data.cache import cache_dir
from selfsup.errors import SelfsupError

_FORMAT = 1  # bump when the index layout changes
CHUNK_BYTES = 1 << 20  # bytes scanned at a time while indexing
STREAM_THRESHOLD = 256 << 20  # data.stream_text=auto streams text files larger than this
STREAM_CHOICES = ("auto", "true", "false")
# ASCII whitespace as str.strip sees it (\t \n \x0b \x0c \r \x1c-\x1f and space).
_ASCII_SPACE = np.zeros(256, dtype=bool)
_ASCII_SPACE[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = True


def should_stream(file: Path, choice: str | bool) -> bool:
    """Whether `text:FILE` is streamed: `true`/`false`, or `auto` for files above 256 MB."""
    value = str(choice).strip().lower()
    if value not in STREAM_CHOICES:
        raise SelfsupError(
            f"data.stream_text must be one of {', '.join(STREAM_CHOICES)}, got {choice!r}"
        )
    if value == "auto":
        return file.stat().st_size > STREAM_THRESHOLD
    return value == "true"


def index_file(file: Path) -> Path:
    """Where the line index of `file` is cached: keyed by its resolved path, size and mtime."""
    st = file.stat()
    key = f"{_FORMAT}\0{file.resolve()}\0{st.st_size}\0{st.st_mtime_ns}"
    return cache_dir() / f"lines-{hashlib.sha1(key.encode()).hexdigest()[:20]}.i64"


def _block_offsets(block: np.ndarray, base: int, eof: bool) -> np.ndarray:
    """Absolute start offsets of the non-blank lines of `block` (complete lines, each ending
    in a newline unless `eof`)."""
    newlines = np.flatnonzero(block == 10)
    starts = np.concatenate(([0], newlines + 1))
    if not eof or (len(newlines) and newlines[-1] == len(block) - 1):
        starts = starts[:-1]  # nothing follows the last newline
    if len(starts) == 0:
        return np.zeros(0, dtype=np.int64)
    non_space = ~_ASCII_SPACE[block]
    has_text = np.logical_or.reduceat(non_space, starts)
    has_ascii = np.logical_or.reduceat(non_space & (block < 128), starts)
    # Only non-ASCII bytes (besides whitespace): Unicode spaces (U+00A0, U+3000...) or text.
    for i in np.flatnonzero(has_text & ~has_ascii):
        end = newlines[i] if i < len(newlines) else len(block)
        has_text[i] = bool(block[starts[i] : end].tobytes().decode("utf-8", "replace").strip())
    return starts[has_text].astype(np.int64) + base


def _check_utf8(block: np.ndarray, file: Path, lines_before: int) -> None:
    try:
        block.tobytes().decode("utf-8")
    except UnicodeDecodeError as err:
        line = lines_before + int(np.count_nonzero(block[: err.start] == 10)) + 1
        raise SelfsupError(
            f"{file} is not UTF-8 text (undecodable byte at line {line}); convert it to UTF-8"
        ) from None


def scan_lines(file: Path, sink: list[np.ndarray] | None = None, out: object = None) -> int:
    """Scan `file` in chunks and write the int64 offsets of its non-blank lines to `out` (a
    binary file object) or append them to `sink`; returns how many. Memory: a few chunks."""
    count, lines_before, position = 0, 0, 0
    size = file.stat().st_size
    chunk = CHUNK_BYTES
    with open(file, "rb") as f:
        while position < size:
            f.seek(position)
            block = np.frombuffer(f.read(chunk), dtype=np.uint8)
            eof = position + len(block) >= size
            if not eof:
                newlines = np.flatnonzero(block == 10)
                if len(newlines) == 0:  # a line longer than the chunk: read more at once
                    chunk *= 2
                    continue
                block = block[: newlines[-1] + 1]
            _check_utf8(block, file, lines_before)
            offsets = _block_offsets(block, position, eof)
            if out is not None:
                offsets.tofile(out)  # type: ignore[arg-type]
            else:
                assert sink is not None
                sink.append(offsets)
            count += len(offsets)
            lines_before += int(np.count_nonzero(block == 10))
            position += len(block)
            chunk = CHUNK_BYTES
    return count


def line_index(file: Path) -> np.ndarray:
    """The offsets of `file`'s non-blank lines, from the cache or built (and cached) now."""
    path = index_file(file)
    if path.is_file():
        return np.memmap(path, dtype=np.int64, mode="r") if path.stat().st_size else _empty()
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as out:
            count = scan_lines(file, out=out)
        os.replace(tmp, path)
    except OSError as e:  # an unwritable cache: keep the index in memory (8 bytes a line)
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        warnings.warn(f"could not write the line index {path}: {e}", stacklevel=2)
        parts: list[np.ndarray] = []
        scan_lines(file, sink=parts)
        return np.concatenate(parts) if parts else _empty()
    return np.memmap(path, dtype=np.int64, mode="r") if count else _empty()


def _empty() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


class LazyLines(Sequence[str]):
    """Sentences read on demand rather than held as Python strings all at once: the lines of a
    large text file (`LineStore`) or a text column of a Hugging Face dataset (data/hf.py). Code
    that meets one indexes it, calls `take` for a batch and `subset` for a view; never a copy."""

    def take(self, index: torch.Tensor | np.ndarray | Sequence[int]) -> list[str]:
        """The sentences at `index` (positions in this sequence), read now."""
        raise NotImplementedError

    def subset(self, index: torch.Tensor | np.ndarray | Sequence[int]) -> LazyLines:
        """A view of the sentences at `index` (nothing is read)."""
        raise NotImplementedError


class LineStore(LazyLines):
    """The non-blank lines of a text file, stripped, read on demand (a `Sequence` of str).

    `positions` selects and orders lines of the index (a subset is a view: no text is read);
    `store[i]` and `store[a:b]` read through mmap, `store.take(index)` reads a batch.
    """

    def __init__(self, file: str | Path, offsets: np.ndarray, positions: np.ndarray | None = None):
        self.file = Path(file)
        self.offsets = offsets
        self.positions = positions  # None: every line, in file order
        self._map: mmap.mmap | None = None

    @classmethod
    def open(cls, file: str | Path) -> LineStore:
        """Index `file` (or reuse its cached index) and return the store of all its lines."""
        path = Path(file)
        return cls(path, line_index(path))

    def __len__(self) -> int:
        return len(self.offsets) if self.positions is None else len(self.positions)

    def __repr__(self) -> str:
        return f"LineStore({str(self.file)!r}, {len(self)} lines)"

    def __getstate__(self) -> dict:
        return self.__dict__ | {"_map": None}  # an mmap does not pickle; reopened on use

    def _mm(self) -> mmap.mmap:
        if self._map is None:
            with open(self.file, "rb") as f:
                self._map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        return self._map

    def _line(self, start: int) -> str:
        mm = self._mm()
        end = mm.find(b"\n", start)
        raw = mm[start : end if end >= 0 else len(mm)]
        try:
            return raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise SelfsupError(
                f"{self.file} changed since it was indexed: a line at byte {start} is not UTF-8"
            ) from None

    def _starts(self, rows: np.ndarray) -> np.ndarray:
        return self.offsets[rows if self.positions is None else self.positions[rows]]

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return self.take(np.arange(len(self))[i])
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"line {i} out of range ({n} lines)")
        return self._line(int(self._starts(np.asarray([i % n]))[0]))

    def __iter__(self) -> Iterator[str]:
        for start in range(0, len(self), 4096):
            yield from self[start : start + 4096]

    def take(self, index: torch.Tensor | np.ndarray | Sequence[int]) -> list[str]:
        """The lines at `index` (positions in this store), read now."""
        rows = np.asarray(index.cpu() if isinstance(index, torch.Tensor) else index, np.int64)
        return [self._line(int(s)) for s in self._starts(rows)]

    def subset(self, index: torch.Tensor | np.ndarray | Sequence[int]) -> LineStore:
        """A view of the lines at `index` (no text is read)."""
        rows = np.asarray(index.cpu() if isinstance(index, torch.Tensor) else index, np.int64)
        positions = rows if self.positions is None else self.positions[rows]
        return LineStore(self.file, self.offsets, positions)


class LazyTokens:
    """Token ids or masks of a `LineStore`, tokenised when rows are asked for.

    It stands where the loop expects an (N, L) tensor: `len`, `device`, and indexing by an
    index tensor or a slice, which reads and tokenises only those lines. The fields of one
    store share a `Tokenized` so that a batch is tokenised once for ids and mask together.
    """

    def __init__(self, source: Tokenized, key: str):
        self.source, self.key = source, key
        self.device = torch.device("cpu")

    def __len__(self) -> int:
        return len(self.source.lines)

    def __getitem__(self, index: torch.Tensor | slice) -> torch.Tensor:
        return self.source.rows(index)[self.key]


class Tokenized:
    """Tokenises the lines of a store on demand, remembering the last batch (ids + mask)."""

    def __init__(self, lines: LazyLines, tokenize: object):
        self.lines, self.tokenize = lines, tokenize
        self._last: tuple[tuple[int, ...], dict[str, torch.Tensor]] | None = None

    def rows(self, index: torch.Tensor | slice) -> dict[str, torch.Tensor]:
        if isinstance(index, slice):
            index = torch.arange(len(self.lines))[index]
        key = tuple(index.tolist())
        if self._last is None or self._last[0] != key:
            self._last = (key, self.tokenize(self.lines.take(index)))  # type: ignore[operator]
        return self._last[1]

    def fields(self, prefix: str = "") -> dict[str, LazyTokens]:
        return {prefix + k: LazyTokens(self, k) for k in ("input_ids", "attention_mask")}
