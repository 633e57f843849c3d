"""The data sources by name: `load_data("NAME[:PATH]")` picks a loader from SOURCES.

Adding a source means writing one loader `(path, options) -> DataSplits` and one line below.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from selfsup.config import DataConfig
from selfsup.data.cifar import load_cifar10, load_cifar100
from selfsup.data.digits import load_digits_source
from selfsup.data.documents import load_documents
from selfsup.data.folder import load_folder
from selfsup.data.hf import hf_modality, load_hf
from selfsup.data.idx import FASHION_MNIST_DIR, load_fashion_mnist, load_mnist
from selfsup.data.images import ImageData
from selfsup.data.npy import load_npy
from selfsup.data.pairs import PairData, load_captions, load_cifar_captions
from selfsup.data.resize import resize_square
from selfsup.data.scenes import load_scenes
from selfsup.data.series import SeriesData, load_series_npy, load_ucr, load_wav_folder
from selfsup.data.shapes import load_shapes
from selfsup.data.shards import load_shard_pairs, load_shards
from selfsup.data.split import DataSplits, Split, holdout
from selfsup.data.store import load_store
from selfsup.data.styled import load_styled_digits, load_styled_waves
from selfsup.data.text import (
    load_csv_column,
    load_nli,
    load_pairs,
    load_retrieval,
    load_sts,
    load_text_file,
    load_wordnet,
)
from selfsup.data.transitions import load_shapes_2d, load_transitions
from selfsup.data.words import load_dictd
from selfsup.errors import SelfsupError

__all__ = ["SOURCES", "Source", "available_sources", "describe_sources", "holdout", "load_data"]


@dataclass(frozen=True)
class Source:
    """A loader, whether it takes a PATH, and one line of help (it follows the name)."""

    load: Callable[[str | None, DataConfig], DataSplits]
    path: Literal["none", "optional", "required"]
    help: str
    modality: str = "image"  # what its samples are: see selfsup.modalities
    # A source whose samples depend on its PATH (hf: images, text or pairs by the columns)
    # names the modalities it can load above and decides one here, from metadata alone.
    modality_of: Callable[[str | None], str] | None = None


SOURCES: dict[str, Source] = {
    "digits": Source(
        load_digits_source,
        "none",
        "(no PATH) scikit-learn's 1,797 grey 8x8 digits, 10 classes, built in",
    ),
    "styled-digits": Source(
        load_styled_digits,
        "none",
        "(no PATH) the digits, each in one of 6 colours drawn at random: known factors digit x "
        "colour (factor_knn), labels the digit",
    ),
    "styled-waves": Source(
        load_styled_waves,
        "none",
        "(no PATH) 2,000 generated series of 128 steps: known factors shape (4) x amplitude (4) "
        "x pitch (3), random phase (factor_knn), labels the shape",
        "series",
    ),
    "fashion-mnist": Source(
        load_fashion_mnist,
        "optional",
        f"[:DIR] the 4 IDX files (.gz or not); default DIR {FASHION_MNIST_DIR}",
    ),
    "mnist": Source(
        load_mnist,
        "required",
        ":DIR the 4 IDX files (.gz or not) in DIR; --download fetches them into DIR",
    ),
    "cifar10": Source(
        load_cifar10,
        "required",
        ":DIR the python pickles in DIR or DIR/cifar-10-batches-py; --download fetches them",
    ),
    "cifar100": Source(
        load_cifar100,
        "required",
        ":DIR the python pickles in DIR or DIR/cifar-100-python; --download fetches them",
    ),
    "folder": Source(
        load_folder,
        "required",
        ":DIR images in class sub-folders (labeled) or flat; train/ + test/ (or val/) = splits",
    ),
    "store": Source(
        load_store,
        "required",
        ":DIR an image store written by `selfsup prepare`, read through a memory map",
    ),
    "wds": Source(
        load_shards,
        "required",
        ":PATTERN WebDataset tar shards (brace pattern, folder or glob), streamed: images + cls",
    ),
    "wds-pairs": Source(
        load_shard_pairs,
        "required",
        ":PATTERN WebDataset tar shards of images with txt captions, streamed (CLIP)",
        "pair",
    ),
    "hf": Source(
        load_hf,
        "required",
        ":DIR[#image=COL,text=COL,label=COL] a Hugging Face dataset on disk (save_to_disk, or "
        "parquet files), read in place; the columns decide images, text or image-text pairs",
        "image,pair,text",
        modality_of=hf_modality,
    ),
    "shapes": Source(
        load_shapes,
        "optional",
        "[:32|64] generated dSprites-like shapes, all factors known (shape, scale, rotation, "
        "x, y): 32 (default) a 46,080-image 32x32 grid for CPUs, 64 dSprites' 737,280 64x64",
    ),
    "npy": Source(
        load_npy,
        "required",
        ":FILE a .npz (images, labels, test_images, test_labels) or .npy [+ <stem>_labels.npy]",
    ),
    "text": Source(
        load_text_file,
        "required",
        ":FILE sentences, one a line; over 256 MB streamed from disk (data.stream_text)",
        "text",
    ),
    "csv": Source(
        load_csv_column,
        "required",
        ":FILE#COLUMN a column (header name or 0-based index) of a CSV, or TSV for .tsv",
        "text",
    ),
    "sts": Source(
        load_sts,
        "required",
        ":DIR|FILE STS-format pairs (sts-train.csv, sts-test.csv): sentences and gold scores",
        "text",
    ),
    "docs": Source(
        load_documents,
        "required",
        ":FILE documents (one a line, or blank-line paragraphs; or a dictd .dict.dz) split into "
        "sentences: consecutive pairs within a document (sentence_order); every 10th held out",
        "text",
    ),
    "wordnet": Source(
        load_wordnet,
        "optional",
        "[:DIR] WordNet's glosses and examples; default DIR /usr/share/wordnet (wordnet-base)",
        "text",
    ),
    "gcide": Source(
        load_dictd,
        "optional",
        "[:FILE] a dictd dictionary's paragraphs (markup stripped), one sentence each; default "
        "GCIDE, /usr/share/dictd/gcide.dict.dz (dict-gcide): about 4.2 M words of English",
        "text",
    ),
    "nli": Source(
        load_nli,
        "required",
        ":FILE[#A,P,N] NLI triplets (anchor, entailment, contradiction): CSV/TSV/JSONL; "
        "raw SNLI/MultiNLI rows (premise, hypothesis, gold_label|label; or #P,H,label=COL) "
        "are grouped into triplets",
        "text",
    ),
    "pairs": Source(
        load_pairs,
        "required",
        ":FILE[#A,P] (anchor, positive) sentence pairs: CSV/TSV/JSONL",
        "text",
    ),
    "retrieval": Source(
        load_retrieval,
        "required",
        ":FILE[#Q,D] (query, relevant document) rows for the retrieval protocol",
        "text",
    ),
    "series": Source(
        load_series_npy,
        "required",
        ":FILE a .npz (series, labels, test_series, test_labels) or .npy, (N, C, T) or (N, T)",
        "series",
    ),
    "ucr": Source(
        load_ucr,
        "required",
        ":NAME a UCR/UEA set through aeon (GunPoint, BasicMotions, ... bundled offline)",
        "series",
    ),
    "wav": Source(
        load_wav_folder,
        "required",
        ":DIR WAV files in class sub-folders (labelled) or flat, resampled to data.sample_rate",
        "series",
    ),
    "captions": Source(
        load_captions,
        "required",
        ":FILE|DIR image-caption pairs: a CSV/TSV of (image path, caption), or sidecar .txt files",
        "pair",
    ),
    "shapes-2d": Source(
        load_shapes_2d,
        "optional",
        "[:TRAIN[,EVAL]] C-SWM's 2-D shapes: 5 objects on a 5x5 grid, random pushes, 50x50 RGB "
        "transitions; TRAIN episodes of 100 steps (1000), EVAL held-out episodes of 10 (1000)",
        "transitions",
    ),
    "transitions": Source(
        load_transitions,
        "required",
        ":FILE.npz (obs, action, next_obs[, episode, num_actions, test_*]) transitions",
        "transitions",
    ),
    "cifar-captions": Source(
        load_cifar_captions,
        "required",
        ":DIR train/ and test/ class folders captioned from templates of the class names (demo)",
        "pair",
    ),
    "scenes": Source(
        load_scenes,
        "optional",
        "[:32|64] generated two-shape scenes with distinctive to generic reference captions "
        "(captioning: BLEU-4, CIDEr-D, retrieval R@1 of generated captions)",
        "pair",
    ),
}


def available_sources() -> list[str]:
    """The source names, sorted."""
    return sorted(SOURCES)


def describe_sources() -> dict[str, str]:
    """Source name -> one line that, after the name, shows the PATH it takes and what it is."""
    return {name: SOURCES[name].help for name in available_sources()}


def load_data(spec: str | DataConfig, **settings: bool | int | str | None) -> DataSplits:
    """Load `NAME` or `NAME:PATH` with `settings` (DataConfig's fields and defaults), or the
    source a DataConfig names with its settings; with image_size, every split is resized to
    that square size."""
    if isinstance(spec, str):
        spec = DataConfig(spec, **settings)  # type: ignore[arg-type]
    options, spec, image_size = spec, spec.source, spec.image_size
    if image_size is not None and (isinstance(image_size, bool) or image_size < 1):
        raise SelfsupError(f"image size must be a positive number of pixels; got {image_size}")
    name, path = _parse(spec)
    splits = SOURCES[name].load(path, options)
    if image_size is not None and SOURCES[name].modality == "image":
        splits = DataSplits(
            train=_resized(splits.train, image_size),
            test=None if splits.test is None else _resized(splits.test, image_size),
            test_from=splits.test_from,
        )
    if splits.test is not None:
        check_compatible(splits.train, splits.test, f"{spec}: its test split")
    return splits


def check_compatible(train: Split, other: Split, what: str, *, encoder_only: bool = False) -> None:
    """Raise before any training when `other` (a test split, or the evaluation data) holds
    samples that cannot stand beside `train`'s: series with another channel count (the encoder
    reads one), and, unless `encoder_only` (an image encoder resizes its input), images of
    another size or channel count (the raw-pixel baseline compares them pixel by pixel).
    Series lengths are matched by the series loaders (padded with a mask)."""
    if (
        isinstance(train, SeriesData)
        and isinstance(other, SeriesData)
        and train.num_channels != other.num_channels
    ):
        raise SelfsupError(
            f"{what} holds series of {other.num_channels} channels, the training data "
            f"{train.num_channels}; a series encoder reads one channel count: give both the "
            "same channels"
        )
    pixels = (ImageData, PairData)
    if encoder_only or not (isinstance(train, pixels) and isinstance(other, pixels)):
        return
    a, b = tuple(train.images.shape[1:]), tuple(other.images.shape[1:])
    if a != b:
        raise SelfsupError(
            f"{what} holds images of {' x '.join(map(str, b))} (channels x height x width), the "
            f"training images {' x '.join(map(str, a))}; pass --image-size N to bring every image "
            "to N x N, or give both splits the same channels"
        )


def source_modality(spec: str) -> str:
    """The modality of the samples a source spec loads (image, text), checked before loading."""
    name, path = _parse(spec)
    source = SOURCES[name]
    return source.modality if source.modality_of is None else source.modality_of(path)


def _parse(spec: str) -> tuple[str, str | None]:
    name, sep, path = spec.strip().partition(":")
    name = name.strip().lower()
    if name not in SOURCES:
        hint = ""
        if os.path.exists(spec):
            hint = f"; for a folder of images write folder:{spec}, for a numpy file npy:{spec}"
        elif close := difflib.get_close_matches(name, SOURCES, n=1):
            hint = f"; did you mean '{close[0]}'?"
        raise SelfsupError(
            f"unknown data source '{name}'{hint} (choose from: {', '.join(available_sources())}; "
            f"run `selfsup datasets` for details)"
        )
    mode = SOURCES[name].path
    if mode == "none" and sep:
        raise SelfsupError(f"data source '{name}' takes no PATH (got '{path}'); write '{name}'")
    if mode == "required" and not path:
        raise SelfsupError(f"data source '{name}' needs a PATH, as in: {name}{SOURCES[name].help}")
    return name, (path or None)


def _resized(data: ImageData, size: int) -> ImageData:
    return dataclasses.replace(data, images=resize_square(data.images, size))
