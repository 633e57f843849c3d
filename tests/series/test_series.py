"""Series data (series:, ucr:, wav:), the series encoder's export round trip, augmentations,
and SimCLR on series end to end."""

import wave

import numpy as np
import pytest
import torch

import selfsup
from selfsup.augment.series import (
    SeriesAugment,
    SeriesRecipe,
    crop_resize,
    jitter,
    magnitude_warp,
    permute_segments,
    scaling,
    time_mask,
    time_warp,
)
from selfsup.data import load_data
from selfsup.errors import SelfsupError
from selfsup.export import load, save_encoder
from selfsup.models import build_encoder
from selfsup.models.series import series_spec


def test_series_npz_with_labels_and_test_split(tmp_path):
    g = np.random.default_rng(0)
    file = tmp_path / "s.npz"
    np.savez(
        file,
        series=g.normal(size=(10, 30)),
        labels=np.arange(10) % 2,
        test_series=g.normal(size=(4, 30)),
        test_labels=np.arange(4) % 2,
    )
    splits = load_data(f"series:{file}")
    assert splits.train.series.shape == (10, 1, 30) and splits.train.series.dtype == torch.float32
    assert splits.test.labels.tolist() == [0, 1, 0, 1] and splits.train.mask is None
    bad = tmp_path / "bad.npz"
    np.savez(bad, series=np.zeros((3, 2, 4, 5)))
    with pytest.raises(SelfsupError, match="wanted numbers"):
        load_data(f"series:{bad}")


def test_ucr_bundled_sets_keep_splits_and_pad_or_crop():
    splits = load_data("ucr:GunPoint")
    assert splits.train.series.shape == (50, 1, 150) and splits.test.series.shape == (150, 1, 150)
    assert splits.train.classes == ["1", "2"]
    padded = load_data("ucr:JapaneseVowels")  # unequal lengths: padded with a mask
    assert padded.train.series.shape[1] == 12 and padded.train.mask is not None
    lengths = padded.train.mask.sum(1)
    assert lengths.min() < lengths.max() <= padded.train.length  # test split: up to 29
    cropped = load_data("ucr:JapaneseVowels", series_lengths="crop")
    assert cropped.train.mask is None and cropped.train.length <= int(lengths.min())
    with pytest.raises(SelfsupError, match="series_lengths"):
        load_data("ucr:JapaneseVowels", series_lengths="truncate")


def write_wav(path, rate, samples, width=2):
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes((samples * 32767).astype("<i2").tobytes())


def test_wav_folder_resamples_labels_and_pads(tmp_path):
    t8 = np.arange(8000) / 8000
    write_wav(tmp_path / "a" / "one.wav", 8000, 0.5 * np.sin(2 * np.pi * 440 * t8))  # 1 s
    t16 = np.arange(8000) / 16000
    write_wav(tmp_path / "b" / "two.wav", 16000, 0.5 * np.sin(2 * np.pi * 440 * t16))  # 0.5 s
    splits = load_data(f"wav:{tmp_path}", sample_rate=16000)
    data = splits.train
    assert data.series.shape == (2, 1, 16000) and data.classes == ["a", "b"]
    assert data.labels.tolist() == [0, 1]
    assert data.mask[0].all() and data.mask[1].sum() == 8000  # padded, not cut
    # the resampled 8 kHz tone matches the native 16 kHz one in its first half second
    assert torch.allclose(data.series[0, 0, 100:7900], data.series[1, 0, 100:7900], atol=0.02)
    cropped = load_data(f"wav:{tmp_path}", sample_rate=16000, series_lengths="crop").train
    assert cropped.series.shape == (2, 1, 8000) and cropped.mask is None


def test_encoder_layout_by_length_export_round_trip_and_mask(tmp_path):
    assert series_spec(1, 20480).strides == (5, 4, 2, 2, 2)  # CPC's audio encoder
    assert series_spec(1, 150).strides == (2, 2, 1) and series_spec(1, 24).kernels == (3, 3, 3)
    torch.manual_seed(0)
    encoder = build_encoder(series_spec(3, 60)).eval()
    save_encoder(encoder, tmp_path)
    loaded = load(tmp_path)
    x = loaded.preprocess(np.random.default_rng(0).normal(size=(4, 3, 60)))
    assert torch.allclose(encoder(x), loaded(x)) and loaded(x).shape == (4, loaded.out_dim)
    with pytest.raises(SelfsupError, match="series must be"):
        loaded.preprocess(np.zeros((2, 60)))  # 3 channels wanted
    # padding does not change a series' features: padded = the series alone
    mask = torch.ones(4, 60, dtype=torch.bool)
    mask[0, 40:] = False
    padded = x.clone()
    padded[0, :, 40:] = 0
    full = loaded({"series": padded, "mask": mask})[0]
    alone = loaded(x[:1, :, :40])[0]
    assert torch.allclose(full, alone, atol=1e-5)
    short = torch.ones(2, 60, dtype=torch.bool)
    short[1, 3:] = False  # 3 valid steps: fewer than the receptive field (7)
    with pytest.raises(SelfsupError, match="receptive field"):
        loaded({"series": x[:2], "mask": short})


def test_augmentations_shapes_per_sample_parameters_and_properties():
    torch.manual_seed(0)
    x = torch.randn(8, 2, 50)
    for op in (scaling, magnitude_warp, time_warp, crop_resize, time_mask, permute_segments):
        out = op(x)
        assert out.shape == x.shape, op.__name__
        change = (out - x).flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1)
        assert change.unique().numel() > 1, op.__name__  # each sample drew its own parameters
    masked = time_mask(x, ratio=0.2)
    assert ((masked == 0).all(1).sum(1) == 10).all()  # 20 % of 50 steps per sample
    perm = permute_segments(x, max_segments=5)
    assert torch.equal(perm.sort(dim=2).values, x.sort(dim=2).values)  # values kept
    assert not torch.equal(perm, x)
    aug = SeriesAugment("series-default")
    v0, v1 = aug(x, view=0), aug(x, view=1)
    assert v0.shape == x.shape and not torch.equal(v0, v1)
    with pytest.raises(SelfsupError, match="unknown series recipe"):
        SeriesAugment("nope")


WITHOUT_NOISE = SeriesRecipe(  # every operation but jitter: its noise is drawn per step
    "no-noise",
    (
        ("crop", 0.8, {"min_scale": 0.5}),
        ("time_warp", 0.8, {"sigma": 0.2}),
        ("magnitude_warp", 0.5, {"sigma": 0.2}),
        ("permutation", 0.5, {"max_segments": 5}),
        ("time_mask", 0.5, {"ratio": 0.1}),
        ("scaling", 1.0, {"sigma": 0.1}),
    ),
    "",
)


def padded_batch():
    """Series 0 has 40 valid steps of 60 (garbage in its padding), the others 60; and the
    same batch cut to 40 steps, where series 0 is whole."""
    torch.manual_seed(0)
    x = torch.randn(4, 2, 60)
    mask = torch.ones(4, 60, dtype=torch.bool)
    mask[0, 40:] = False
    padded = x.clone()
    padded[0, :, 40:] = 1e6  # padding that must never reach a view
    return padded, mask, x[:, :, :40]


def test_masked_ops_give_a_padded_series_the_view_it_gets_alone():
    padded, mask, cut = padded_batch()
    clean = padded.masked_fill(~mask[:, None], 0)
    for op in (scaling, magnitude_warp, time_warp, crop_resize, time_mask, permute_segments):
        torch.manual_seed(1)
        out = op(clean, lengths=mask.sum(1))
        torch.manual_seed(1)
        alone = op(cut)
        assert torch.allclose(out[0, :, :40], alone[0], atol=1e-5), op.__name__
        assert (out[0, :, 40:] == 0).all(), op.__name__
    noisy = jitter(clean, sigma=0.5, lengths=mask.sum(1))
    assert (noisy[0, :, 40:] == 0).all() and not torch.equal(noisy[0, :, :40], clean[0, :, :40])
    # the noise scale is the valid steps' deviation, not one lowered by the zeros after them
    ratio = (noisy - clean)[0, :, :40].std() / clean[0, :, :40].std()
    assert 0.35 < ratio < 0.65


def test_simclr_views_and_features_of_a_padded_series_equal_the_series_alone():
    """SimCLR's views of a padded series: crops, warps and masks inside its valid steps, the
    mask passed on, so its features are those of the series alone; the padding never leaks."""
    from selfsup.methods.simclr import SimCLR

    padded, mask, cut = padded_batch()
    aug = SeriesAugment("series-default")
    aug.recipe = WITHOUT_NOISE
    method = SimCLR(series_spec(2, 60), SimCLR.make_config({"proj_hidden_dim": 16}), aug)
    torch.manual_seed(2)
    views = method.views({"series": padded, "mask": mask})
    torch.manual_seed(2)
    alone = method.views({"series": cut, "mask": torch.ones(4, 40, dtype=torch.bool)})
    for v, a in zip(views, alone, strict=True):
        assert torch.equal(v["mask"], mask) and (v["series"][0, :, 40:] == 0).all()
        assert torch.allclose(v["series"][0, :, :40], a["series"][0], atol=1e-5)
        assert torch.allclose(method.encoder(v)[0], method.encoder(a)[0], atol=1e-5)
    # the full recipe (jitter included) keeps padding out of the views too
    torch.manual_seed(3)
    full = SeriesAugment("series-default")({"series": padded, "mask": mask})
    assert (full["series"][0, :, 40:] == 0).all() and full["series"].abs().max() < 100


def test_simclr_trains_on_series_end_to_end(tmp_path):
    cfg = selfsup.make_config(
        **{
            "data.source": "ucr:GunPoint",
            "method.name": "simclr",
            "method.proj_hidden_dim": 32,
            "method.proj_dim": 16,
            "train.epochs": 2,
            "train.batch_size": 25,
            "train.progress": False,
            "train.eval_every": 0,
            "train.report": False,
            "optim.name": "adamw",
            "optim.lr": 1e-3,
            "eval.knn_k": 5,
        }
    )
    result = selfsup.pretrain(cfg, tmp_path / "run")
    assert set(result.evaluation) >= {"selfsup", "random", "raw_signal", "dtw_1nn"}
    assert 0 < result.evaluation["selfsup"]["linear_top1"] <= 1
    # the field's protocol by default, on every row of features
    assert all(0 < result.evaluation[r]["svm_top1"] <= 1 for r in ("selfsup", "random"))
    assert 0.5 < result.evaluation["dtw_1nn"]["dtw_1nn_top1"] <= 1
    assert (tmp_path / "run" / "encoder.json").read_text().count('"series"') == 1
