"""An exported encoder loads in one call, without training code, and gives the same features;
encoders exported before kinds existed (format /1) still load."""

import json

import pytest
import torch
from safetensors.torch import save_file

import selfsup
from selfsup.errors import SelfsupError
from selfsup.export import save_encoder
from selfsup.models import ImageEncoder, ImageEncoderSpec

SPEC = ImageEncoderSpec("convnet", 1, 8, True, (0.3,), (0.2,))


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    enc = ImageEncoder(SPEC).eval()
    save_encoder(enc, tmp_path)
    meta = json.loads((tmp_path / "encoder.json").read_text())
    assert meta["kind"] == "image" and meta["out_dim"] == 256
    assert meta["spec"]["backbone"] == "convnet"
    loaded = selfsup.load(tmp_path)
    x = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
    assert torch.allclose(loaded(x), enc(x), atol=1e-6)
    assert not loaded.training


def test_non_square_spec_round_trips(tmp_path):
    spec = ImageEncoderSpec("convnet", 3, (12, 20), True, (0.5,) * 3, (0.2,) * 3)
    save_encoder(ImageEncoder(spec), tmp_path)
    assert selfsup.load(tmp_path).spec.height_width == (12, 20)


def test_loads_an_encoder_written_in_the_old_format(tmp_path):
    """Format /1 (before this change): the spec's fields at the top level, no "kind", weights
    written with safetensors' save_file of the state dict."""
    torch.manual_seed(0)
    enc = ImageEncoder(SPEC).eval()
    save_file(
        {k: v.contiguous() for k, v in enc.state_dict().items()}, tmp_path / "encoder.safetensors"
    )
    old = {
        "backbone": "convnet",
        "in_channels": 1,
        "image_size": 8,
        "cifar_stem": True,
        "mean": [0.3],
        "std": [0.2],
        "out_dim": 256,
        "format": "selfsup-encoder/1",
    }
    (tmp_path / "encoder.json").write_text(json.dumps(old))
    loaded = selfsup.load(tmp_path)
    x = torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8)
    assert loaded.kind == "image"
    assert torch.allclose(loaded(x), enc(x), atol=1e-6)


def test_load_errors_name_the_problem(tmp_path):
    with pytest.raises(SelfsupError, match="does not exist"):
        selfsup.load(tmp_path / "nope")
    with pytest.raises(SelfsupError, match="no exported encoder"):
        selfsup.load(tmp_path)
    save_encoder(ImageEncoder(SPEC), tmp_path)
    meta = json.loads((tmp_path / "encoder.json").read_text())
    (tmp_path / "encoder.json").write_text(json.dumps(meta | {"kind": "smell"}))
    with pytest.raises(SelfsupError, match="unknown encoder kind 'smell'"):
        selfsup.load(tmp_path)


def test_embed_takes_images_as_a_user_holds_them():
    """One rule: uint8 or float [0, 1], channels first or last, any size, grey or RGB."""
    torch.manual_seed(0)
    enc = ImageEncoder(ImageEncoderSpec("convnet", 3, 8, True, (0.5,) * 3, (0.2,) * 3)).eval()
    x = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)
    ref = selfsup.embed(enc, x)
    assert ref.shape == (5, 256)
    assert abs(selfsup.embed(enc, x.permute(0, 2, 3, 1).numpy()) - ref).max() < 1e-5
    assert abs(selfsup.embed(enc, x.float() / 255) - ref).max() < 1e-4
    assert selfsup.embed(enc, torch.randint(0, 256, (2, 16, 16), dtype=torch.uint8)).shape == (
        2,
        256,
    )
    big = torch.nn.functional.interpolate(x.float(), size=16).round().to(torch.uint8)
    assert selfsup.embed(enc, big).shape == (5, 256)
    with pytest.raises(SelfsupError, match=r"\[0, 1\]"):
        selfsup.embed(enc, x.float())
    with pytest.raises(SelfsupError, match="image encoder"):
        selfsup.embed(enc, ["a sentence"])


def test_vit_encoder_exports_and_loads(tmp_path):
    """A ViT backbone (timm) rebuilds from its spec name: `vit-mini-p2` keeps patch 2."""
    import selfsup
    from selfsup.export import save_encoder
    from selfsup.models import ImageEncoderSpec, build_encoder

    encoder = build_encoder(ImageEncoderSpec("vit-mini-p2", 1, 8, True, (0.5,), (0.25,)))
    assert encoder.backbone.patch_size == 2
    save_encoder(encoder, tmp_path)
    loaded = selfsup.load(tmp_path)
    x = torch.randint(0, 256, (3, 1, 8, 8), dtype=torch.uint8)
    encoder.eval()
    assert torch.allclose(loaded(x), encoder(x), atol=1e-6)
