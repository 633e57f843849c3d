"""Series sources as people store them (issue 19): WAV folders honour --skip-corrupt and name
a zero-length file (items 3, 7); NaN-padded series (item 5); splits checked against each other
at load time (item 6)."""

import numpy as np
import pytest
import torch
from test_series import write_wav

import selfsup
from selfsup.data import load_data
from selfsup.errors import SelfsupError


def _wav_folder(root):
    t = np.arange(1600) / 16000
    for i in range(3):
        write_wav(root / f"tone{i}.wav", 16000, 0.3 * np.sin(2 * np.pi * (200 + 100 * i) * t))
    return root


def test_a_zero_length_wav_is_named_and_skip_corrupt_leaves_it_out(tmp_path):
    root = _wav_folder(tmp_path / "wav")
    write_wav(root / "silent.wav", 16000, np.zeros(0))
    with pytest.raises(SelfsupError, match=r"silent\.wav holds no samples.*--skip-corrupt"):
        load_data(f"wav:{root}")
    with pytest.warns(UserWarning, match=r"empty WAV files \(--skip-corrupt\): 1 .*silent\.wav"):
        data = load_data(f"wav:{root}", skip_corrupt=True).train
    assert len(data) == 3 and data.skipped == 1
    assert [f.rsplit("/", 1)[1] for f in data.files] == ["tone0.wav", "tone1.wav", "tone2.wav"]


def test_skip_corrupt_leaves_out_an_unreadable_wav(tmp_path):
    root = _wav_folder(tmp_path / "wav")
    (root / "broken.wav").write_bytes(b"RIFF not really")
    with pytest.raises(SelfsupError, match=r"broken\.wav.*--skip-corrupt"):
        load_data(f"wav:{root}")
    with pytest.warns(UserWarning, match=r": 1 \(first: .*broken\.wav"):
        data = load_data(f"wav:{root}", skip_corrupt=True).train
    assert len(data) == 3 and data.skipped == 1


def test_nan_padding_at_the_end_is_a_mask_and_nan_inside_names_the_row(tmp_path):
    """Item 5: unequal lengths stored NaN-padded (the aeon / tsai convention)."""
    g = np.random.default_rng(0)
    x = g.normal(size=(4, 2, 12))
    x[1, :, 8:] = np.nan  # row 1 is 8 steps long
    x[3, :, 5:] = np.nan  # row 3 is 5 steps long
    file = tmp_path / "padded.npy"
    np.save(file, x)
    data = load_data(f"series:{file}").train
    assert data.series.shape == (4, 2, 12) and torch.isfinite(data.series).all()
    assert data.mask.sum(1).tolist() == [12, 8, 12, 5]
    assert torch.equal(data.series[1, :, :8], torch.from_numpy(x[1, :, :8]).float())
    assert (data.series[3, :, 5:] == 0).all()
    cropped = load_data(f"series:{file}", series_lengths="crop").train
    assert cropped.series.shape == (4, 2, 5) and cropped.mask is None
    x[2, 1, 3] = np.nan  # a gap inside row 2 (followed by real values)
    np.save(file, x)
    with pytest.raises(SelfsupError, match=r"row 2 holds NaN at step 3 \(channel 1\) followed"):
        load_data(f"series:{file}")
    x[2, 1, 3] = 0.0
    x[0] = np.nan
    np.save(file, x)
    with pytest.raises(SelfsupError, match=r"row 0 is all NaN"):
        load_data(f"series:{file}")
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = np.zeros(5), np.zeros(7)
    np.save(tmp_path / "ragged.npy", ragged, allow_pickle=True)
    with pytest.raises(SelfsupError, match=r"object array .* padded at the end with NaN"):
        load_data(f"series:{tmp_path / 'ragged.npy'}")


def test_ucr_nan_padding_becomes_the_mask_not_zeros(monkeypatch):
    """Item 5: ucr: no longer turns NaN into zeros; padding at the end is masked."""
    import aeon.datasets

    x = np.random.default_rng(0).normal(size=(6, 1, 10))
    x[2, 0, 7:] = np.nan
    y = np.array(["a", "b"] * 3)
    monkeypatch.setattr(aeon.datasets, "load_classification", lambda name, split: (x, y))
    data = load_data("ucr:Fake").train
    assert data.mask is not None and data.mask.sum(1).tolist() == [10, 10, 7, 10, 10, 10]
    x[4, 0, 2] = np.nan
    with pytest.raises(SelfsupError, match=r"ucr:Fake \(train split\): row 4 holds NaN at step 2"):
        load_data("ucr:Fake")


def test_splits_of_other_lengths_or_channels_are_matched_or_refused_at_load(tmp_path):
    """Item 6: train T=200 / test T=150 is padded (with a mask) at load time; 3 vs 1
    channels is refused at load time, and so is an eval.data source of other channels,
    before any training."""
    g = np.random.default_rng(0)
    file = tmp_path / "s.npz"
    np.savez(
        file,
        series=g.normal(size=(16, 200)),
        labels=np.arange(16) % 2,
        test_series=g.normal(size=(8, 150)),
        test_labels=np.arange(8) % 2,
    )
    splits = load_data(f"series:{file}")
    assert splits.train.series.shape[2] == splits.test.series.shape[2] == 200
    assert splits.test.mask.sum(1).tolist() == [150] * 8 and splits.train.mask is None
    cfg = {
        "data.source": f"series:{file}",
        "train.epochs": 1,
        "train.batch_size": 8,
        "train.progress": False,
        "train.report": False,
        "eval.knn_k": 3,
        "method.proj_hidden_dim": 16,
        "method.proj_dim": 8,
    }
    result = selfsup.pretrain(selfsup.make_config(**cfg), tmp_path / "run")
    assert {"selfsup", "random", "raw_signal"} <= set(result.evaluation)  # evaluated to the end
    channels = tmp_path / "c.npz"
    np.savez(channels, series=g.normal(size=(16, 3, 50)), test_series=g.normal(size=(8, 1, 50)))
    with pytest.raises(SelfsupError, match=r"3 channels and the test series 1"):
        load_data(f"series:{channels}")
    one = tmp_path / "one.npy"
    np.save(one, g.normal(size=(8, 50)))
    cfg |= {
        "data.source": f"series:{channels.with_name('three.npy')}",
        "eval.data": f"series:{one}",
    }
    np.save(tmp_path / "three.npy", g.normal(size=(16, 3, 50)))
    with pytest.raises(SelfsupError, match=r"eval.data series:.* 1 channels, the training data 3"):
        selfsup.pretrain(selfsup.make_config(**cfg), tmp_path / "run2")
    assert not (tmp_path / "run2").exists()


def test_image_splits_of_other_sizes_are_refused_at_load(tmp_path):
    g = np.random.default_rng(0)
    file = tmp_path / "im.npz"
    images = g.integers(0, 255, (10, 8, 8), dtype=np.uint8)
    np.savez(file, images=images, test_images=g.integers(0, 255, (4, 6, 6), dtype=np.uint8))
    with pytest.raises(SelfsupError, match=r"1 x 6 x 6 .* training images 1 x 8 x 8.*--image-size"):
        load_data(f"npy:{file}")
    assert load_data(f"npy:{file}", image_size=8).test.images.shape == (4, 1, 8, 8)


def test_search_a_series_run_with_a_series_query(tmp_path, capsys):
    """Item 7: `selfsup search RUN --query x.npy` on a series run takes a series, not an image."""
    import argparse

    from selfsup.search import add_cli, build_index, load_index

    g = np.random.default_rng(0)
    x = g.normal(size=(16, 1, 64)).astype(np.float32)
    np.save(tmp_path / "s.npy", x)
    cfg = {
        "data.source": f"series:{tmp_path / 's.npy'}",
        "train.epochs": 1,
        "train.batch_size": 8,
        "train.progress": False,
        "train.report": False,
        "eval.protocols": "",
        "method.proj_hidden_dim": 16,
        "method.proj_dim": 8,
    }
    selfsup.pretrain(selfsup.make_config(**cfg), tmp_path / "run")
    build_index(tmp_path / "run")
    query = np.concatenate([x[5, 0], np.full(10, np.nan)])  # NaN padding at its end is cut
    np.save(tmp_path / "q.npy", query)
    index = load_index(tmp_path / "run")
    assert index.search(tmp_path / "q.npy", k=1)[0][0] == "train/5"
    assert index.search(x[9], k=1)[0][0] == "train/9"  # an array (C, T)
    parser = argparse.ArgumentParser()
    add_cli(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["search", str(tmp_path / "run"), "--query", str(tmp_path / "q.npy")])
    capsys.readouterr()
    assert args.handler(args) == 0 and "train/5" in capsys.readouterr().out.splitlines()[1]
    with pytest.raises(SelfsupError, match=r"neither a \.npy nor a \.wav"):
        index.search(tmp_path / "run" / "config.json")


def test_cpc_start_up_line_says_it_uses_no_augmentation(tmp_path, capsys):
    """Item 12: CPC does not print the series augmentation it never applies."""
    g = np.random.default_rng(0)
    np.save(tmp_path / "s.npy", g.normal(size=(32, 1, 16)).astype(np.float32))
    cfg = {
        "data.source": f"series:{tmp_path / 's.npy'}",
        "method.name": "cpc",
        "method.prediction_steps": 2,
        "method.negatives": "same",
        "train.epochs": 1,
        "train.batch_size": 16,
        "train.progress": False,
        "train.report": False,
        "eval.protocols": "",
    }
    selfsup.pretrain(selfsup.make_config(**cfg), tmp_path / "run")
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith("augmentation: none; the method predicts the series' future")
    assert "series-default" not in first
