"""Image-caption pairs: a CSV/TSV of (image path, caption), a folder of images with sidecar
`.txt` captions, and the demo source, CIFAR-10 JPEGs captioned from templates of class names.

Images are decoded once into one uint8 tensor (resized to the first image's size, or to
data.image_size, when sizes differ); captions stay Python strings, tokenised by the run's
text tower. The demo source captions its training images with TRAIN_TEMPLATES and gives the
test split captions from EVAL_TEMPLATES, which training never sees; zero-shot classification
scores the test images with EVAL_TEMPLATES too (the class names are the data's `classes`).
"""

from __future__ import annotations

import csv
import io
import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from selfsup.config import DataConfig
from selfsup.data.decode import IMAGE_EXTENSIONS, CorruptImageError, decode_image_file
from selfsup.data.resize import resize_to
from selfsup.data.split import DataSplits, Split, row_positions
from selfsup.errors import SelfsupError

# The demo's caption templates: training captions use only the first list, the held-out
# captions and the zero-shot prompts only the second.
TRAIN_TEMPLATES = (
    "a photo of a {}.",
    "a picture of a {}.",
    "an image showing a {}.",
    "a small photo of the {}.",
    "a blurry photo of a {}.",
    "this is a {}.",
    "a close-up photo of a {}.",
    "a low resolution picture of the {}.",
)
EVAL_TEMPLATES = (
    "a snapshot of a {}.",
    "there is a {} in this image.",
    "a cropped photo of the {}.",
    "a good photo of a {}.",
)


@dataclass
class PairData(Split):
    """N images (uint8 (N, C, H, W)) each with one caption; labels and class names optional
    (zero-shot classification needs them); `templates` are the prompts zero-shot should use
    for this data (None: the evaluation's default prompts)."""

    images: torch.Tensor
    captions: list[str] = field()  # required: field() keeps Split's None from being a default
    labels: torch.Tensor | None
    classes: list[str] | None
    name: str
    templates: tuple[str, ...] | None = None
    files: list[str] | None = None  # each image's path (search results name them)
    skipped: int = 0  # pairs left out on loading (undecodable images, empty captions)

    def __post_init__(self) -> None:
        x = self.images
        if x.dtype != torch.uint8 or x.dim() != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"PairData wants uint8 (N, C, H, W) images; got {tuple(x.shape)}")
        if len(self.captions) != len(x):
            raise ValueError(f"{len(x)} images but {len(self.captions)} captions")
        if len(x) == 0:
            raise SelfsupError(f"{self.name} holds no image-caption pairs")
        if self.labels is not None and self.labels.shape != (len(x),):
            raise ValueError(f"labels must be shaped ({len(x)},), got {tuple(self.labels.shape)}")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def sentences(self) -> list[str]:
        """The captions (what text-side code calls the sentences)."""
        return self.captions

    def subset(self, index: torch.Tensor) -> PairData:
        """The pairs (and labels) at `index`."""
        positions = row_positions(index)
        return PairData(
            images=self.images[index].contiguous(),
            captions=[self.captions[i] for i in positions],
            labels=None if self.labels is None else self.labels[index],
            classes=self.classes,
            name=self.name,
            templates=self.templates,
            files=None if self.files is None else [self.files[i] for i in positions],
            skipped=self.skipped,
        )


def stack_images(files: list[Path], options: DataConfig) -> tuple[torch.Tensor, list[int]]:
    """Decode the files into one uint8 (N, C, H, W): RGB if any file is colour, one size; and
    the positions of the files kept. An undecodable file is an error, or with
    `options.skip_corrupt` left out (the caller drops its caption and warns with the count)."""
    decoded, kept = [], []
    for i, f in enumerate(files):
        try:
            decoded.append(decode_image_file(str(f)))
        except CorruptImageError:
            if not options.skip_corrupt:
                raise
            continue
        kept.append(i)
    if not decoded:
        raise SelfsupError(f"none of the {len(files)} images decode (first: {files[0]})")
    channels = max(img.shape[0] for img in decoded)
    size = (
        (options.image_size, options.image_size)
        if options.image_size
        else tuple(decoded[0].shape[-2:])
    )
    out = torch.empty((len(decoded), channels, *size), dtype=torch.uint8)
    for i, img in enumerate(decoded):
        img = img.expand(channels, -1, -1) if img.shape[0] != channels else img
        out[i] = img if tuple(img.shape[-2:]) == size else resize_to(img[None], size)[0]
    return out, kept


def caption_pairs(
    files: list[Path],
    captions: list[str],
    name: str,
    options: DataConfig,
    left_out: dict[str, list[Path]] | None = None,
) -> PairData:
    """The pairs of `files` and `captions` whose image decodes. What was left out, by reason
    (the undecodable images under --skip-corrupt, and the caller's `left_out`: reason -> files),
    is said in one warning with each count and its first file, and counted in `skipped`."""
    images, kept = stack_images(files, options)
    kept_set = set(kept)
    undecodable = [f for i, f in enumerate(files) if i not in kept_set]
    reasons = {"undecodable images (--skip-corrupt)": undecodable, **(left_out or {})}
    said = [
        f"{reason}: {len(paths)} (first: {paths[0]})" for reason, paths in reasons.items() if paths
    ]
    if said:
        warnings.warn(f"{name}: left out " + "; ".join(said), stacklevel=3)
    return PairData(
        images,
        [captions[i] for i in kept],
        None,
        None,
        name,
        files=[str(files[i]) for i in kept],
        skipped=sum(len(paths) for paths in reasons.values()),
    )


def _read(path: Path) -> str:
    if not path.is_file():
        raise SelfsupError(f"caption file {path} does not exist")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SelfsupError(f"{path} is not UTF-8 text") from None


def load_caption_table(file: Path, options: DataConfig) -> PairData:
    """A CSV (or TSV for .tsv/.tab) of rows (image path, caption); a header row naming
    `path`/`image`/`file` first is skipped; relative paths are relative to the file's folder."""
    delimiter = "\t" if file.suffix.lower() in (".tsv", ".tab") else ","
    rows = [r for r in csv.reader(io.StringIO(_read(file)), delimiter=delimiter) if any(r)]
    if rows and rows[0][0].strip().lower() in ("path", "image", "file", "filepath", "filename"):
        rows = rows[1:]
    files, captions = [], []
    for number, row in enumerate(rows, 1):
        if len(row) < 2 or not row[1].strip():
            raise SelfsupError(
                f"{file} row {number} needs two columns, image path and caption; got {row!r}"
            )
        image = Path(row[0].strip()).expanduser()
        image = image if image.is_absolute() else file.parent / image
        if not image.is_file():
            raise SelfsupError(f"{file} row {number}: image {image} does not exist")
        files.append(image)
        captions.append(row[1].strip())
    if not files:
        raise SelfsupError(f"{file} holds no (image, caption) rows")
    return caption_pairs(files, captions, f"captions:{file}", options)


def load_caption_folder(root: Path, options: DataConfig) -> PairData:
    """Every image under `root` that has a sidecar caption file (same stem, `.txt`) holding a
    caption. Images with no caption file or an empty one, and caption files with no image
    beside them, are left out and counted in a warning."""
    files, captions = [], []
    images = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    uncaptioned, empty = [], []
    for image in images:
        side = image.with_suffix(".txt")
        if not side.is_file():
            uncaptioned.append(image)
        elif caption := _read(side).strip():
            files.append(image)
            captions.append(" ".join(caption.split()))
        else:
            empty.append(side)
    stems = {image.with_suffix("") for image in images}
    orphans = sorted(t for t in root.rglob("*.txt") if t.with_suffix("") not in stems)
    if not files:
        raise SelfsupError(
            f"no image in {root} has a caption: put NAME.txt beside each NAME.jpg/.png "
            f"({len(images)} images, {len(empty)} empty caption files, {len(orphans)} caption "
            "files with no image)"
        )
    left_out = {
        "images with no caption file": uncaptioned,
        "empty caption files": empty,
        "caption files with no image": orphans,
    }
    return caption_pairs(files, captions, f"captions:{root}", options, left_out)


def load_captions(path: str | None, options: DataConfig) -> DataSplits:
    """`captions:FILE` (CSV/TSV of path, caption) or `captions:DIR` (sidecar .txt files)."""
    assert path is not None, "the registry requires captions:FILE or captions:DIR"
    root = Path(path).expanduser()
    if root.is_dir():
        return DataSplits(load_caption_folder(root, options), None)
    return DataSplits(load_caption_table(root, options), None)


def template_captions(
    labels: list[int], classes: list[str], templates: tuple[str, ...], seed: int
) -> list[str]:
    """One caption per label: a template drawn at random (seeded) filled with the class name."""
    rng = random.Random(seed)
    return [rng.choice(templates).format(classes[y].replace("_", " ")) for y in labels]


def _class_folder_split(folder: Path, classes: list[str] | None, options: DataConfig):
    found = sorted(p.name for p in folder.iterdir() if p.is_dir())
    classes = classes or found
    files, labels = [], []
    for y, name in enumerate(classes):
        for f in sorted((folder / name).glob("*")) if (folder / name).is_dir() else []:
            if f.suffix.lower() in IMAGE_EXTENSIONS:
                files.append(f)
                labels.append(y)
    if not files:
        raise SelfsupError(f"{folder} holds no images in class folders")
    images, kept = stack_images(files, options)
    if len(kept) < len(files):
        kept_set = set(kept)
        first = next(f for i, f in enumerate(files) if i not in kept_set)
        warnings.warn(
            f"{folder}: left out undecodable images (--skip-corrupt): "
            f"{len(files) - len(kept)} (first: {first})",
            stacklevel=3,
        )
    return images, [labels[i] for i in kept], classes, [str(files[i]) for i in kept]


def load_cifar_captions(path: str | None, options: DataConfig) -> DataSplits:
    """`cifar-captions:DIR`: DIR/train/<class>/*.jpg and DIR/test/<class>/*.jpg (the CIFAR-10
    JPEG layout, or any class folders), captioned from the class names: train captions from
    TRAIN_TEMPLATES, test captions and zero-shot prompts from EVAL_TEMPLATES only."""
    assert path is not None, "the registry requires cifar-captions:DIR"
    root = Path(path).expanduser()
    if not (root / "train").is_dir() or not (root / "test").is_dir():
        raise SelfsupError(f"{root} needs train/<class>/ and test/<class>/ folders of images")
    images, labels, classes, files = _class_folder_split(root / "train", None, options)
    test_images, test_labels, _, test_files = _class_folder_split(root / "test", classes, options)
    name = f"cifar-captions:{root}"
    train = PairData(
        images,
        template_captions(labels, classes, TRAIN_TEMPLATES, seed=0),
        torch.tensor(labels),
        classes,
        name,
        EVAL_TEMPLATES,
        files=files,
    )
    test = PairData(
        test_images,
        template_captions(test_labels, classes, EVAL_TEMPLATES, seed=1),
        torch.tensor(test_labels),
        classes,
        name,
        EVAL_TEMPLATES,
        files=test_files,
    )
    return DataSplits(train, test)
