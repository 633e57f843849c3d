"""An exported encoder loads in one call, without training code, and gives the same features."""

import json

import pytest
import torch

import selfsup
from selfsup.errors import SelfsupError
from selfsup.export import save_encoder
from selfsup.models import Encoder, EncoderSpec


def test_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    enc = Encoder(EncoderSpec("convnet", 1, 8, True, (0.3,), (0.2,))).eval()
    save_encoder(enc, tmp_path)
    spec = json.loads((tmp_path / "encoder.json").read_text())
    assert spec["backbone"] == "convnet" and spec["out_dim"] == 256
    loaded = selfsup.load(tmp_path)
    x = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
    assert torch.allclose(loaded(x), enc(x), atol=1e-6)
    assert not loaded.training


def test_load_errors_name_the_problem(tmp_path):
    with pytest.raises(SelfsupError, match="does not exist"):
        selfsup.load(tmp_path / "nope")
    with pytest.raises(SelfsupError, match="no exported encoder"):
        selfsup.load(tmp_path)
