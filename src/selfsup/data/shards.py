"""WebDataset tar shards streamed for training: `wds:PATTERN` (images, optional `cls` labels)
and `wds-pairs:PATTERN` (images with `txt` captions, for CLIP).

PATTERN is a brace pattern as webdataset expands it (`shards/train-{000000..000127}.tar`), a
folder (its `*.tar`), or a glob; several are joined with `::`. A sample is the members of a tar
that share a key (`000017.jpg`, `000017.cls`, `000017.txt`); its image is the first of
IMAGE_SUFFIXES it has.

- Counting: every shard's samples are counted once from the tar headers (nothing is decoded)
  and cached in the selfsup cache folder, keyed by the shards' paths, sizes and mtimes.
- Held-out: a sample is held out when the SHA-1 of its key falls below `data.heldout_fraction`
  of the hash range: chosen by the key alone, the same on every run, never trained on. The run
  records the rule in heldout.json.
- Sharding: shard i goes to rank i % world_size, and within a rank to worker (i // world) %
  workers; each worker reads its shards in an order drawn from (seed, epoch) and shuffles the
  samples of each shard with a buffer seeded by (seed, epoch, shard). Every rank runs the same
  steps per epoch: the fewest whole local batches a rank's workers hold.
- Resume: the position after b batches of an epoch follows from the counts (the DataLoader
  takes batches from its workers in turn), so a resumed worker skips the shards it finished
  unopened and the samples before its position undecoded.
"""

from __future__ import annotations

import glob
import hashlib
import itertools
import json
import os
import random
import tarfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from selfsup.config import DataConfig
from selfsup.data import decode
from selfsup.data.cache import cache_dir
from selfsup.data.images import ImageData
from selfsup.data.pairs import PairData
from selfsup.data.resize import resize_square
from selfsup.data.split import DataSplits, Split, StreamedSplit
from selfsup.errors import SelfsupError

IMAGE_SUFFIXES = ("jpg", "jpeg", "png", "webp")
LABEL_SUFFIX = "cls"
CAPTION_SUFFIX = "txt"
_COUNT_FORMAT = 1  # bump when ShardInfo changes, so that cached counts are recounted

Batch = dict[str, Any]


@dataclass(frozen=True)
class ShardInfo:
    """One shard's sample counts, from its tar headers."""

    path: str
    samples: int  # keys in the tar
    heldout: int  # of them held out by the key rule
    images: int  # samples with an image member
    labels: int  # samples with a cls member
    captions: int  # samples with a txt member

    @property
    def train(self) -> int:
        return self.samples - self.heldout


# ---------------------------------------------------------------------------------- patterns


def expand_pattern(pattern: str) -> list[str]:
    """The shard files of PATTERN (brace pattern, folder or glob; `::` joins several), in order;
    one error naming the pattern and what was looked for when nothing matches."""
    try:
        import webdataset  # noqa: F401  (the stream's reader; braceexpand comes with it)
        from braceexpand import braceexpand
    except ImportError:
        raise SelfsupError(
            "wds: sources need the webdataset package: pip install 'selfsup[scale]' (or webdataset)"
        ) from None

    found: list[str] = []
    missing: list[str] = []
    for part in pattern.split("::"):
        for item in braceexpand(os.path.expanduser(part.strip())):
            if os.path.isdir(item):
                tars = sorted(glob.glob(os.path.join(item, "*.tar")))
                found += tars
                missing += [] if tars else [f"{item}/*.tar"]
            elif glob.has_magic(item):
                tars = sorted(glob.glob(item))
                found += tars
                missing += [] if tars else [item]
            elif os.path.isfile(item):
                found.append(item)
            else:
                missing.append(item)
    if not found:
        looked = ", ".join(missing[:3]) + (
            f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        )
        raise SelfsupError(
            f"the shard pattern {pattern!r} matches no file (looked for {looked}); give "
            "wds:DIR (a folder of .tar files) or a pattern such as "
            "wds:shards/train-{000000..000127}.tar"
        )
    if missing:
        raise SelfsupError(
            f"the shard pattern {pattern!r} names {len(missing)} files that do not exist "
            f"(first: {missing[0]}); fix the range or the folder"
        )
    return found


# ---------------------------------------------------------------------------------- counting


def is_heldout(key: str, fraction: float) -> bool:
    """The held-out rule: the key's SHA-1, read as a fraction of its range, is below `fraction`."""
    digest = hashlib.sha1(key.encode()).digest()[:8]
    return int.from_bytes(digest, "big") < fraction * 2**64


def _split_name(name: str) -> tuple[str | None, str]:
    """(key, suffix) of a tar member name, as webdataset groups members into samples."""
    from webdataset.tariterators import base_plus_ext

    key, suffix = base_plus_ext(name)
    return key, (suffix or "").lower()


def count_shard(path: str, fraction: float) -> ShardInfo:
    """Count one shard's samples from its tar headers (the members' data are not read)."""
    keys: dict[str, set[str]] = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                key, suffix = _split_name(member.name)
                if key is not None:
                    keys.setdefault(key, set()).add(suffix)
    except (tarfile.TarError, OSError) as e:
        raise SelfsupError(f"cannot read the shard {path} as a tar file ({e})") from e
    return ShardInfo(
        path=path,
        samples=len(keys),
        heldout=sum(is_heldout(k, fraction) for k in keys),
        images=sum(1 for s in keys.values() if s & set(IMAGE_SUFFIXES)),
        labels=sum(LABEL_SUFFIX in s for s in keys.values()),
        captions=sum(CAPTION_SUFFIX in s for s in keys.values()),
    )


def count_shards(paths: list[str], fraction: float) -> list[ShardInfo]:
    """Every shard's counts, from the cache when its paths, sizes and mtimes are unchanged."""
    digest = hashlib.sha1(f"format={_COUNT_FORMAT} heldout={fraction!r}\n".encode())
    for p in paths:
        st = os.stat(p)
        digest.update(f"{os.path.abspath(p)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    cached = cache_dir() / "wds-counts" / f"{digest.hexdigest()}.json"
    if cached.is_file():
        try:
            return [ShardInfo(**d) for d in json.loads(cached.read_text())]
        except (ValueError, TypeError):
            pass  # a damaged cache file is recounted
    infos = [count_shard(p, fraction) for p in paths]
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_name(f"{cached.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps([vars(i) for i in infos]))
        os.replace(tmp, cached)
    except OSError:
        pass  # a read-only cache folder costs a recount next time, nothing more
    return infos


# ---------------------------------------------------------------------------------- decoding


def decode_image_bytes(data: bytes, where: str, size: int | None) -> torch.Tensor:
    """uint8 (C, H, W) with C 1 or 3, decoded as a folder's file is (`decode.decode_image_bytes`)
    and resized to size x size by `resize_square` when `size` is set; CorruptImageError naming
    `where` (the member and its shard) when it does not decode."""
    image = decode.decode_image_bytes(data, where)
    return image if size is None else resize_square(image, size)


def _image_suffix(sample: dict[str, Any]) -> str | None:
    return next((s for s in IMAGE_SUFFIXES if s in sample), None)


def gpu_decode(
    encoded: list[torch.Tensor], size: int, channels: int, device: torch.device
) -> torch.Tensor:
    """A batch of JPEG bytes (1-D uint8 tensors) decoded together on the GPU by nvJPEG, each
    resized to size x size by `resize_square`: uint8 (B, channels, size, size) on `device`.
    Entries that are already pixels (non-JPEG images, decoded by the worker) are moved there."""
    from torchvision.io import ImageReadMode, decode_jpeg

    jpeg = [i for i, t in enumerate(encoded) if t.dim() == 1]
    mode = ImageReadMode.RGB if channels == 3 else ImageReadMode.GRAY
    out: list[torch.Tensor | None] = [None] * len(encoded)
    if jpeg:
        decoded = decode_jpeg([encoded[i] for i in jpeg], mode=mode, device=device)
        for i, image in zip(jpeg, decoded, strict=True):
            out[i] = resize_square(image, size)
    for i, t in enumerate(encoded):
        if out[i] is None:
            out[i] = t.to(device)
    return torch.stack(out)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- the stream


def worker_shards(num_shards: int, rank: int, world: int, workers: int) -> list[list[int]]:
    """The shard indices each worker of `rank` reads: shard i to rank i % world, then to worker
    (i // world) % workers."""
    mine = list(range(rank, num_shards, world))
    return [mine[w::workers] for w in range(workers)]


def batches_taken(per_worker: list[int], done: int) -> tuple[list[int], int]:
    """How many batches each worker has given after `done` batches, when batches are taken from
    the workers in turn (skipping exhausted ones, as a DataLoader does), and whose turn is next."""
    taken = [0] * len(per_worker)
    turn = 0
    left = min(done, sum(per_worker))
    while left:
        if taken[turn] < per_worker[turn]:
            taken[turn] += 1
            left -= 1
        turn = (turn + 1) % len(per_worker)
    return taken, turn


@dataclass
class EpochPlan:
    """One worker's reading of an epoch: shards in order, and the samples already used."""

    shards: list[int]
    skip: int  # training samples of `shards` (in order) to step over undecoded
    batches: int  # batches still to give


class ShardStream(IterableDataset):
    """This rank's batches of one epoch from a position; each DataLoader worker (or the one
    process) reads the plan of its turn. Set `plans` and `epoch` before iterating."""

    def __init__(self, shards: ShardSet, local_batch: int, seed: int, gpu: bool):
        self.set, self.local_batch, self.seed, self.gpu = shards, local_batch, seed, gpu
        self.plans: list[EpochPlan] = []
        self.epoch = 0

    def __iter__(self) -> Iterator[Batch]:
        info = get_worker_info()
        if info is None:  # no worker processes: the plans in turn, as the workers would give
            streams = [self._worker(plan) for plan in self.plans]
            live = list(streams)
            while live:
                for s in list(live):
                    batch = next(s, None)
                    if batch is None:
                        live.remove(s)
                    else:
                        yield batch
            return
        torch.set_num_threads(1)
        try:
            yield from self._worker(self.plans[info.id])
        except SelfsupError as e:  # handed over whole: the main process raises it as it is
            yield {"error": str(e)}

    def _worker(self, plan: EpochPlan) -> Iterator[Batch]:
        samples = self._samples(plan)
        for _ in range(plan.batches):
            chunk = list(itertools.islice(samples, self.local_batch))
            if len(chunk) < self.local_batch:
                return
            yield self._collate(chunk)

    def _samples(self, plan: EpochPlan) -> Iterator[dict[str, Any]]:
        """Decoded samples of the plan's shards from its position. Under skip_corrupt an
        undecodable image is counted and its place taken by the worker's next good sample (so
        that every rank still runs the same steps); else its error names shard and member."""
        import webdataset as wds

        from selfsup.data.decode import CorruptImageError

        infos, options = self.set.shards, self.set.options
        skip, bad, last = plan.skip, [], None
        for index in plan.shards:
            info = infos[index]
            if skip >= info.train:
                skip -= info.train  # finished before the position: never opened
                continue
            raw = wds.tarfile_samples([{"url": info.path}])
            kept = (s for s in raw if not is_heldout(s["__key__"], options.heldout_fraction))
            rng = random.Random(f"{self.seed}/{self.epoch}/{index}")
            shuffled = wds.shuffle(options.shuffle_buffer, options.shuffle_buffer, rng=rng)(kept)
            for sample in itertools.islice(shuffled, skip, None):  # skipped: not decoded
                try:
                    decoded = self.set.decode(sample, gpu=self.gpu)
                except CorruptImageError as e:
                    if not options.skip_corrupt:
                        raise
                    bad.append(str(e).split(" (")[0])
                    continue
                for i in range(len(bad) + 1):
                    yield decoded | ({"skipped": len(bad), "bad": bad[0]} if bad and not i else {})
                bad, last = [], decoded
            skip = 0
        for i in range(len(bad) if last is not None else 0):
            yield last | ({"skipped": len(bad), "bad": bad[0]} if not i else {})

    def _collate(self, samples: list[dict[str, Any]]) -> Batch:
        bad = [s["bad"] for s in samples if s.get("bad")]
        batch: Batch = {
            "skipped": sum(s.get("skipped", 0) for s in samples),
            "first_bad": bad[0] if bad else None,
        }
        if self.gpu:  # JPEG bytes (1-D) for the GPU's decoder, other images as pixels
            batch["encoded"] = [s["image"] for s in samples]
        else:
            batch["image"] = torch.stack([s["image"] for s in samples])
        if self.set.labelled:
            batch["label"] = torch.tensor([s["label"] for s in samples], dtype=torch.long)
        if self.set.captioned:
            batch["captions"] = [s["caption"] for s in samples]
        return batch


@dataclass
class ShardSet(StreamedSplit):
    """A shard set's training samples, streamed; `images` (with labels and captions) holds the
    first `data.eval_samples` of them, decoded: the pixel statistics of the encoder and the
    evaluation bank. len() is the number of training samples."""

    images: torch.Tensor
    labels: torch.Tensor | None
    classes: list[str] | None
    name: str
    shards: list[ShardInfo] = field(default_factory=list)
    options: DataConfig = field(default_factory=DataConfig)
    captioned: bool = False
    captions: list[str] | None = None
    skipped: int = 0

    def __len__(self) -> int:
        return sum(s.train for s in self.shards)

    @property
    def labelled(self) -> bool:
        return self.labels is not None

    @property
    def image_size(self) -> int:
        return self.images.shape[-1]

    def bank(self) -> Split:
        """The decoded first training samples, in memory: what evaluation may hold."""
        if self.captioned:
            return PairData(self.images, list(self.captions or []), self.labels, None, self.name)
        return ImageData(self.images, self.labels, None, self.name)

    def subset(self, index: torch.Tensor) -> Split:
        return self.bank().subset(index)

    def batch_source(
        self,
        to_fields: Callable[[Split], dict[str, torch.Tensor]],
        global_batch: int,
        rank: int,
        world: int,
        seed: int,
        device: torch.device,
    ) -> ShardBatches:
        """The loop's batches of this set for one rank (`train.BatchSource`)."""
        return ShardBatches(self, to_fields, global_batch, rank, world, seed, device)

    def heldout_record(self) -> dict[str, Any]:
        """What heldout.json records: the rule, its fraction and the counts it gave."""
        return {
            "rule": "int(sha1(key)[:8 bytes], big-endian) / 2**64 < fraction (wds shards)",
            "fraction": self.options.heldout_fraction,
            "heldout": sum(s.heldout for s in self.shards),
            "train": len(self),
            "shards": len(self.shards),
        }

    def decode(self, sample: dict[str, Any], gpu: bool = False) -> dict[str, Any]:
        """One tar sample -> {"image", "label", "caption"} at the set's image size; with `gpu`
        a JPEG stays encoded (1-D uint8) for `gpu_decode`. CorruptImageError naming the shard
        and the member when the image does not decode."""
        suffix = _image_suffix(sample)
        where = f"{sample.get('__key__')}.{suffix} in {sample.get('__url__')}"
        if suffix is None:
            raise SelfsupError(f"the sample {where} has no image ({', '.join(IMAGE_SUFFIXES)})")
        out: dict[str, Any] = {}
        if gpu and suffix in ("jpg", "jpeg"):
            out["image"] = torch.frombuffer(bytearray(sample[suffix]), dtype=torch.uint8)
        else:
            image = decode_image_bytes(sample[suffix], where, self.options.image_size)
            if image.shape != self.images.shape[1:]:
                raise SelfsupError(
                    f"the image {where} is {' x '.join(map(str, image.shape))} (channels x "
                    f"height x width), the shard set's first images "
                    f"{' x '.join(map(str, self.images.shape[1:]))}; pass --image-size N to "
                    "bring every image to N x N"
                )
            out["image"] = image
        if self.labelled:
            out["label"] = int(sample[LABEL_SUFFIX].decode().strip())
        if self.captioned:
            out["caption"] = " ".join(sample[CAPTION_SUFFIX].decode("utf-8").split())
        return out


def decode_first(
    infos: list[ShardInfo],
    options: DataConfig,
    heldout: bool,
    limit: int,
    labelled: bool,
    captioned: bool,
) -> tuple[list[torch.Tensor], list[int], list[str], int]:
    """The first `limit` held-out (or training) samples in shard order, decoded at
    data.image_size: (images, labels, captions, skipped)."""
    import webdataset as wds

    from selfsup.data.decode import CorruptImageError

    images, labels, captions, skipped = [], [], [], 0
    for info in infos:
        if len(images) >= limit:
            break
        if (info.heldout if heldout else info.train) == 0:
            continue
        for sample in wds.tarfile_samples([{"url": info.path}]):
            if is_heldout(sample["__key__"], options.heldout_fraction) != heldout:
                continue
            suffix = _image_suffix(sample)
            if suffix is None:
                continue
            where = f"{sample['__key__']}.{suffix} in {info.path}"
            try:
                images.append(decode_image_bytes(sample[suffix], where, options.image_size))
            except CorruptImageError:
                if not options.skip_corrupt:
                    raise
                skipped += 1
                continue
            if labelled:
                labels.append(int(sample[LABEL_SUFFIX].decode().strip()))
            if captioned:
                captions.append(" ".join(sample[CAPTION_SUFFIX].decode("utf-8").split()))
            if len(images) >= limit:
                break
    return images, labels, captions, skipped


def _stack(images: list[torch.Tensor], pattern: str, options: DataConfig) -> torch.Tensor:
    sizes = {tuple(im.shape) for im in images}
    if len(sizes) > 1:
        shown = ", ".join("x".join(map(str, s)) for s in sorted(sizes)[:3])
        raise SelfsupError(
            f"the shards {pattern} hold images of several sizes ({shown}); pass --image-size N "
            "to bring every image to N x N"
        )
    return torch.stack(images)


def open_shards(pattern: str, options: DataConfig, captioned: bool) -> DataSplits:
    """The shard set as splits: train streamed (a ShardSet), test the first data.eval_samples
    held-out samples decoded in memory. Every check that needs no decoding runs first."""
    if not 0.0 < options.heldout_fraction < 1.0:
        raise SelfsupError(
            f"data.heldout_fraction must lie in (0, 1); got {options.heldout_fraction}"
        )
    paths = expand_pattern(pattern)
    infos = count_shards(paths, options.heldout_fraction)
    total = sum(i.samples for i in infos)
    name = f"{'wds-pairs' if captioned else 'wds'}:{pattern}"
    if sum(i.images for i in infos) < total or total == 0:
        bare = next(
            (i.path for i in infos if i.images < i.samples or i.samples == 0), infos[0].path
        )
        raise SelfsupError(
            f"{name}: {total - sum(i.images for i in infos)} of {total} samples have no image "
            f"member ({', '.join(IMAGE_SUFFIXES)}); first shard with such samples: {bare}"
        )
    labelled_count = sum(i.labels for i in infos)
    if 0 < labelled_count < total:
        first = next(i.path for i in infos if i.labels < i.samples)
        raise SelfsupError(
            f"{name}: {total - labelled_count} of {total} samples have no {LABEL_SUFFIX} label "
            f"(first shard with such samples: {first}); label every sample or none"
        )
    labelled = labelled_count == total
    if captioned and sum(i.captions for i in infos) < total:
        first = next(i.path for i in infos if i.captions < i.samples)
        raise SelfsupError(
            f"{name}: {total - sum(i.captions for i in infos)} of {total} samples have no "
            f"{CAPTION_SUFFIX} caption (first shard with such samples: {first}); an image-text "
            "run needs a caption in every sample"
        )
    if sum(i.heldout for i in infos) == 0:
        raise SelfsupError(
            f"{name}: the held-out rule (data.heldout_fraction {options.heldout_fraction}) "
            f"holds out none of the {total} samples; raise data.heldout_fraction"
        )
    limit = options.eval_samples
    bank = decode_first(infos, options, False, limit, labelled, captioned)
    queries = decode_first(infos, options, True, limit, labelled, captioned)
    bank_images = _stack(bank[0], pattern, options)
    query_images = _stack(queries[0], pattern, options)
    if bank_images.shape[1:] != query_images.shape[1:]:
        _stack([bank_images[0], query_images[0]], pattern, options)
    label_of = (lambda ys: torch.tensor(ys, dtype=torch.long)) if labelled else (lambda ys: None)
    train = ShardSet(
        bank_images,
        label_of(bank[1]),
        None,
        name,
        shards=infos,
        options=options,
        captioned=captioned,
        captions=bank[2] if captioned else None,
        skipped=bank[3],
    )
    how = (
        f"{len(query_images)} of the {sum(i.heldout for i in infos)} samples held out by "
        f"key hash (data.heldout_fraction {options.heldout_fraction}); bank: the first "
        f"{len(bank_images)} training samples"
    )
    if captioned:
        test: Split = PairData(query_images, queries[2], label_of(queries[1]), None, name)
    else:
        test = ImageData(query_images, label_of(queries[1]), None, name)
    return DataSplits(train, test, test_from=how)


def load_shards(path: str | None, options: DataConfig) -> DataSplits:
    """The `wds:PATTERN` source: images (+ cls labels) from WebDataset shards, streamed."""
    assert path is not None, "the registry requires wds:PATTERN"
    return open_shards(path, options, captioned=False)


def load_shard_pairs(path: str | None, options: DataConfig) -> DataSplits:
    """The `wds-pairs:PATTERN` source: image-caption pairs (jpg + txt) from shards, streamed."""
    assert path is not None, "the registry requires wds-pairs:PATTERN"
    return open_shards(path, options, captioned=True)


def check_heldout_record(data: Split, record: dict[str, Any]) -> None:
    """A resumed or evaluated run's shards must hold out what its heldout.json recorded."""
    if not isinstance(data, ShardSet):
        raise SelfsupError(
            "the run's heldout.json records a shard rule but the data are not shards"
        )
    now = data.heldout_record()
    if (record.get("fraction"), record.get("heldout")) != (now["fraction"], now["heldout"]):
        raise SelfsupError(
            f"the run held out {record.get('heldout')} samples at fraction "
            f"{record.get('fraction')}, the shards now give {now['heldout']} at "
            f"{now['fraction']}; evaluate with the shards the run trained on"
        )


# ---------------------------------------------------------------------------------- batches


class ShardBatches:
    """The loop's batch source for a shard set (`train.BatchSource`): this rank's batches of an
    epoch from a position, decoded in DataLoader workers (or JPEGs decoded on the GPU), turned
    into the method's fields by `to_fields` (a split of the batch -> Batch)."""

    def __init__(
        self,
        shards: ShardSet,
        to_fields: Callable[[Split], dict[str, torch.Tensor]],
        global_batch: int,
        rank: int,
        world: int,
        seed: int,
        device: torch.device,
    ):
        options = shards.options
        self.set, self.to_fields, self.device = shards, to_fields, device
        self.rank, self.world, self.seed = rank, world, seed
        self.workers = max(options.workers, 1)
        self.local_batch = global_batch // world
        self.gpu = device.type == "cuda" and options.gpu_decode
        self.skipped = 0
        if len(shards.shards) < world:
            raise SelfsupError(
                f"{shards.name} has {len(shards.shards)} shards for {world} processes; each "
                "process reads its own shards: write more, smaller shards"
            )
        per_rank = [sum(self._per_worker(r)) for r in range(world)]
        self.steps_per_epoch = min(per_rank)
        if self.steps_per_epoch == 0:
            raise SelfsupError(
                f"{shards.name}: a process's shards hold fewer than one batch of "
                f"{self.local_batch} per worker; lower --batch-size or data.workers"
            )

    def _per_worker(self, rank: int) -> list[int]:
        """Whole local batches each worker of `rank` holds in an epoch."""
        infos = self.set.shards
        plan = worker_shards(len(infos), rank, self.world, self.workers)
        return [sum(infos[i].train for i in shards) // self.local_batch for shards in plan]

    def plans(self, epoch: int, start: int) -> tuple[list[EpochPlan], int]:
        """The workers' plans for `epoch` from batch `start`, and whose turn is next."""
        per_worker = self._per_worker(self.rank)
        taken, turn = batches_taken(per_worker, start)
        # the rank stops at steps_per_epoch: each worker gives what the turns will take
        wanted, _ = batches_taken(per_worker, self.steps_per_epoch)
        plans = []
        shards = worker_shards(len(self.set.shards), self.rank, self.world, self.workers)
        for w, mine in enumerate(shards):
            order = list(mine)
            random.Random(f"{self.seed}/{epoch}/{self.rank}/{w}").shuffle(order)
            plans.append(EpochPlan(order, taken[w] * self.local_batch, wanted[w] - taken[w]))
        return plans, turn

    def position(self, epoch: int, batch: int) -> dict[str, Any]:
        """What the checkpoint records: the epoch, the batches done, and per worker the shard
        it reads and the samples of that shard it has used (this rank's)."""
        infos = self.set.shards
        workers = []
        for plan in self.plans(epoch, batch)[0]:
            skip, at = plan.skip, {"shard": None, "sample": 0}
            for index in plan.shards:
                if skip < infos[index].train:
                    at = {"shard": infos[index].path, "sample": skip}
                    break
                skip -= infos[index].train
            workers.append(at)
        return {
            "source": self.set.name,
            "epoch": epoch,
            "batch": batch,
            "world_size": self.world,
            "workers": self.workers,
            "rank": self.rank,
            "positions": workers,
        }

    def restore(self, position: dict[str, Any] | None) -> None:
        """Refuse a resume whose stream would not continue the recorded one."""
        if not position:
            return
        if (position.get("world_size"), position.get("workers")) != (self.world, self.workers):
            raise SelfsupError(
                f"the checkpoint's shard position is for {position.get('world_size')} processes "
                f"x {position.get('workers')} workers, this run has {self.world} x "
                f"{self.workers}: resume with the same world size and data.workers"
            )

    def batches(self, epoch: int, start: int) -> Iterator[dict[str, torch.Tensor]]:
        """This rank's batches `start`.. of `epoch`, as the method's fields on the device."""
        stream = ShardStream(self.set, self.local_batch, self.seed, self.gpu)
        plans, turn = self.plans(epoch, start)
        # DataLoader worker k plays plan turn + k: the turns continue where they stopped
        stream.epoch, stream.plans = epoch, plans[turn:] + plans[:turn]
        workers = self.set.options.workers
        loader = DataLoader(
            stream,
            batch_size=None,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            prefetch_factor=4 if workers else None,
            # its own generator: a DataLoader draws a worker seed, which must not come from the
            # global generator that the augmentations (and an exact resume) depend on
            generator=torch.Generator().manual_seed(self.seed),
        )
        for _, raw in zip(range(start, self.steps_per_epoch), loader, strict=False):
            yield self._fields(raw)

    def _fields(self, raw: Batch) -> dict[str, torch.Tensor]:
        if "error" in raw:
            raise SelfsupError(raw["error"])
        if raw["skipped"]:
            self.skipped += raw["skipped"]
            warnings.warn(
                f"{self.set.name}: {self.skipped} undecodable images skipped so far "
                f"(--skip-corrupt; latest {raw['first_bad']})",
                stacklevel=2,
            )
        if "encoded" in raw:
            channels = self.set.images.shape[1]
            images = gpu_decode(raw["encoded"], self.set.image_size, channels, self.device)
        else:
            images = raw["image"]
        labels = raw.get("label")
        if self.set.captioned:
            split: Split = PairData(images, raw["captions"], labels, None, self.set.name)
        else:
            split = ImageData(images, labels, None, self.set.name)
        return {k: v.to(self.device, non_blocking=True) for k, v in self.to_fields(split).items()}


__all__ = [
    "ShardBatches",
    "ShardInfo",
    "ShardSet",
    "count_shards",
    "expand_pattern",
    "is_heldout",
    "load_shard_pairs",
    "load_shards",
]


def shard_root(pattern: str) -> Path:
    """The folder of a pattern's first shard (run directories must not lie inside it)."""
    return Path(expand_pattern(pattern)[0]).parent
