"""wds:PATTERN and wds-pairs:PATTERN: WebDataset shards written here with webdataset's
ShardWriter, streamed per rank and worker, held out by key, resumed exactly."""

import io
import json

import numpy as np
import pytest
import torch
import webdataset as wds
from method_harness import FAST, assert_config_resumes_exactly
from PIL import Image

import selfsup
from selfsup.config import DataConfig
from selfsup.data import load_data
from selfsup.data.shards import (
    ShardBatches,
    ShardSet,
    batches_taken,
    expand_pattern,
    gpu_decode,
    is_heldout,
    worker_shards,
)
from selfsup.errors import SelfsupError

FRACTION = 0.2


def _png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def _jpeg(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def write_shards(
    root,
    shards: int = 4,
    train_per_shard: int = 12,
    size: int = 8,
    labels: bool = True,
    captions: bool = False,
    fmt: str = "png",
    edit=None,
) -> str:
    """`shards` tar files of `train_per_shard` training samples each (keys chosen so that each
    shard holds exactly that many that the held-out rule keeps, and the held-out ones the keys
    bring along); cls = the sample's number, so that tests can tell samples apart."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    key = 0
    pattern = str(root / "train-%06d.tar")
    with wds.ShardWriter(pattern, maxcount=10**6, verbose=0) as sink:
        for s in range(shards):
            if s:
                sink.next_stream()
            kept = 0
            while kept < train_per_shard:
                y = key % 4
                pixels = (rng.random((size, size, 3)) * 60 + y * 60).astype(np.uint8)
                sample = {"__key__": f"{key:06d}"}
                sample[fmt] = _png(pixels) if fmt == "png" else _jpeg(pixels)
                if labels:
                    sample["cls"] = str(key)
                if captions:
                    sample["txt"] = f"a picture of colour {y}"
                if edit is not None:
                    sample = edit(key, sample)
                sink.write(sample)
                kept += not is_heldout(f"{key:06d}", FRACTION)
                key += 1
    return str(root / ("train-{000000.." + f"{shards - 1:06d}" + "}.tar"))


def _options(**kw) -> DataConfig:
    return DataConfig("wds", **({"heldout_fraction": FRACTION, "workers": 0} | kw))


def _labels(split) -> dict[str, torch.Tensor]:
    return {"label": split.labels, "image": split.images}


def _epoch(data: ShardSet, rank: int, world: int, batch: int, epoch: int, start: int = 0):
    source = ShardBatches(data, _labels, batch, rank, world, 7, torch.device("cpu"))
    return source, [b for b in source.batches(epoch, start)]


def test_patterns_expand_like_webdataset_and_a_folder_lists_its_tars(tmp_path):
    pattern = write_shards(tmp_path / "s", shards=3, train_per_shard=2)
    files = expand_pattern(pattern)
    assert [f.rsplit("/", 1)[1] for f in files] == [f"train-{i:06d}.tar" for i in range(3)]
    assert expand_pattern(str(tmp_path / "s")) == files
    assert expand_pattern(str(tmp_path / "s" / "*.tar")) == files


def test_a_pattern_matching_nothing_names_it_and_what_was_looked_for(tmp_path):
    with pytest.raises(SelfsupError, match=r"matches no file \(looked for .*nowhere-000001"):
        load_data(f"wds:{tmp_path}/nowhere-{{000000..000003}}.tar")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SelfsupError, match=r"empty/\*\.tar"):
        load_data(f"wds:{tmp_path}/empty")
    write_shards(tmp_path / "s", shards=2, train_per_shard=2)
    with pytest.raises(SelfsupError, match=r"1 files that do not exist"):
        load_data(f"wds:{tmp_path}/s/train-{{000000..000002}}.tar")


def test_counts_come_from_headers_once_and_are_cached(tmp_path, monkeypatch):
    pattern = write_shards(tmp_path / "s", shards=2, train_per_shard=5)
    first = load_data(f"wds:{pattern}", heldout_fraction=FRACTION)
    assert len(first.train) == 10
    assert list((tmp_path / "selfsup-cache" / "wds-counts").glob("*.json"))
    import selfsup.data.shards as shards

    monkeypatch.setattr(shards, "count_shard", lambda *a: pytest.fail("recounted"))
    again = load_data(f"wds:{pattern}", heldout_fraction=FRACTION)
    assert len(again.train) == 10


def test_two_ranks_two_workers_see_every_training_sample_once_and_no_heldout(tmp_path):
    """8 shards of 12 training samples: 2 ranks x 2 workers x 2 shards, local batch 4: 12 steps."""
    pattern = write_shards(tmp_path / "s", shards=8, train_per_shard=12)
    splits = load_data(f"wds:{pattern}", heldout_fraction=FRACTION, workers=2)
    data = splits.train
    heldout = set(splits.test.labels.tolist())
    assert heldout and len(data) == 96
    orders = []
    for epoch in (0, 1):
        seen = []
        for rank in (0, 1):
            source, batches = _epoch(data, rank, 2, 8, epoch)
            assert source.steps_per_epoch == 12 and len(batches) == 12
            seen.append(torch.cat([b["label"] for b in batches]).tolist())
        together = seen[0] + seen[1]
        assert not set(seen[0]) & set(seen[1])
        assert sorted(together) == sorted(set(together)) and len(together) == 96
        assert not set(together) & heldout  # never trained on
        orders.append(together)
    assert sorted(orders[0]) == sorted(orders[1]) and orders[0] != orders[1]


def test_worker_plan_and_turns():
    assert worker_shards(8, 1, 2, 2) == [[1, 5], [3, 7]]
    assert batches_taken([1, 3], 3) == ([1, 2], 0)  # worker 0, spent, is passed over
    assert batches_taken([2, 2], 3) == ([2, 1], 1)


def test_a_resumed_epoch_continues_without_decoding_what_it_skips(tmp_path, monkeypatch):
    pattern = write_shards(tmp_path / "s", shards=4, train_per_shard=10)
    data = load_data(f"wds:{pattern}", heldout_fraction=FRACTION, workers=2).train
    data.options.workers = 0  # in this process, so that the decodes can be counted
    _, whole = _epoch(data, 0, 1, 4, 3)
    calls = {"n": 0}
    decode = ShardSet.decode

    def counted(self, sample, gpu=False):
        calls["n"] += 1
        return decode(self, sample, gpu)

    monkeypatch.setattr(ShardSet, "decode", counted)
    source, tail = _epoch(data, 0, 1, 4, 3, start=5)
    assert len(tail) == len(whole) - 5 == source.steps_per_epoch - 5
    for a, b in zip(whole[5:], tail, strict=True):
        assert torch.equal(a["label"], b["label"]) and torch.equal(a["image"], b["image"])
    assert calls["n"] == len(tail) * 4  # the 20 samples before the position were not decoded
    position = source.position(3, 5)
    assert position["batch"] == 5 and all(p["shard"] for p in position["positions"])


def _run_config(pattern: str, **extra):
    return selfsup.make_config(
        **(
            FAST
            | {
                "data.source": f"wds:{pattern}",
                "data.heldout_fraction": FRACTION,
                "train.batch_size": 8,
                "train.epochs": 2,
            }
            | extra
        )
    )


def test_resume_after_a_kill_continues_from_the_shard_position(tmp_path, monkeypatch):
    """2 workers of 2 shards (20 samples each): 5 steps an epoch; Ctrl-C at step 7 (epoch 1,
    batch 2), then --resume: the same weights as the straight run."""
    pattern = write_shards(tmp_path / "s", shards=4, train_per_shard=10)
    cfg = _run_config(pattern)
    assert_config_resumes_exactly(tmp_path / "runs", monkeypatch, cfg, 7)
    ckpt = torch.load(tmp_path / "runs" / "resumed" / "checkpoint.pt", weights_only=False)
    assert ckpt["data"]["workers"] == 2 and ckpt["data"]["epoch"] == 2
    record = json.loads((tmp_path / "runs" / "resumed" / "heldout.json").read_text())
    assert record["fraction"] == FRACTION and record["train"] == 40 and record["heldout"] > 0


def test_a_corrupt_image_names_its_shard_and_member_or_is_skipped_and_counted(tmp_path):
    key = next(k for k in range(30, 60) if not is_heldout(f"{k:06d}", FRACTION))  # shard 1
    bad = lambda k, s: s | {"png": b"not an image"} if k == key else s  # noqa: E731
    pattern = write_shards(tmp_path / "s", shards=2, train_per_shard=20, edit=bad)
    member = rf"{key:06d}\.png in .*train-000001\.tar"
    with pytest.raises(SelfsupError, match=member):
        load_data(f"wds:{pattern}", heldout_fraction=FRACTION)  # in the decoded bank
    # beyond the bank it is met while streaming: one error, or counted under --skip-corrupt
    data = load_data(f"wds:{pattern}", heldout_fraction=FRACTION, eval_samples=4).train
    with pytest.raises(SelfsupError, match=member):
        _epoch(data, 0, 1, 4, 0)
    data.options.skip_corrupt = True
    with pytest.warns(UserWarning, match="1 undecodable images skipped"):
        source, batches = _epoch(data, 0, 1, 4, 0)
    assert source.skipped == 1 and len(batches) == source.steps_per_epoch == 10


def test_bad_shards_are_refused_before_training(tmp_path):
    no_image = lambda k, s: {"__key__": s["__key__"], "cls": s["cls"]}  # noqa: E731
    pattern = write_shards(tmp_path / "a", shards=1, train_per_shard=4, edit=no_image)
    with pytest.raises(SelfsupError, match=r"have no image member"):
        load_data(f"wds:{pattern}", heldout_fraction=FRACTION)
    some_labels = lambda k, s: {x: v for x, v in s.items() if x != "cls" or k % 2}  # noqa: E731
    pattern = write_shards(tmp_path / "b", shards=1, train_per_shard=6, edit=some_labels)
    with pytest.raises(SelfsupError, match=r"have no cls label"):
        load_data(f"wds:{pattern}", heldout_fraction=FRACTION)
    pattern = write_shards(tmp_path / "c", shards=2, train_per_shard=8, labels=False)
    cfg = _run_config(pattern, **{"method.name": "supcon"})
    with pytest.raises(SelfsupError, match=r"trains with labels"):
        selfsup.pretrain(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_mixed_sizes_need_image_size(tmp_path):
    big = lambda k, s: s | {"png": _png(np.zeros((12, 12, 3), np.uint8))} if k == 1 else s  # noqa: E731
    pattern = write_shards(tmp_path / "s", shards=1, train_per_shard=6, edit=big)
    with pytest.raises(SelfsupError, match=r"several sizes.*--image-size"):
        load_data(f"wds:{pattern}", heldout_fraction=FRACTION)
    splits = load_data(f"wds:{pattern}", heldout_fraction=FRACTION, image_size=8)
    assert splits.train.images.shape[1:] == (3, 8, 8)


def test_image_caption_shards_train_clip(tmp_path):
    tiny_clip = {
        "method.name": "clip",
        "model.text_tower": "scratch",
        "model.text_width": 16,
        "model.text_layers": 1,
        "model.text_heads": 2,
        "model.embed_dim": 16,
        "optim.name": "adamw",
    }
    pattern = write_shards(tmp_path / "s", shards=2, train_per_shard=16, captions=True)
    splits = load_data(f"wds-pairs:{pattern}", heldout_fraction=FRACTION)
    assert splits.test.captions and splits.train.bank().captions
    cfg = selfsup.make_config(
        **(FAST | tiny_clip)
        | {
            "data.source": f"wds-pairs:{pattern}",
            "data.heldout_fraction": FRACTION,
            "data.workers": 1,
            "train.batch_size": 8,
            "train.epochs": 1,
        }
    )
    result = selfsup.pretrain(cfg, tmp_path / "run")
    assert result.epochs == 1.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (nvJPEG)")
def test_gpu_decoding_matches_the_cpu_decoder(tmp_path):
    pattern = write_shards(tmp_path / "s", shards=2, train_per_shard=8, size=16, fmt="jpg")
    data = load_data(f"wds:{pattern}", heldout_fraction=FRACTION, image_size=8).train
    cpu = data.images[:8]
    files = expand_pattern(pattern)
    raw = [
        s
        for s in wds.WebDataset(files, shardshuffle=False)
        if not is_heldout(s["__key__"], FRACTION)
    ]
    encoded = [torch.frombuffer(bytearray(s["jpg"]), dtype=torch.uint8) for s in raw[:8]]
    gpu = gpu_decode(encoded, 8, 3, torch.device("cuda")).cpu()
    assert gpu.shape == cpu.shape and (gpu.int() - cpu.int()).abs().float().mean() < 3
    source = ShardBatches(data, _labels, 8, 0, 1, 0, torch.device("cuda"))
    assert source.gpu
    batch = next(iter(source.batches(0, 0)))
    assert batch["image"].is_cuda and batch["image"].shape == (8, 3, 8, 8)
