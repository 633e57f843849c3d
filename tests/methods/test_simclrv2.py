"""SimCLR v2: the exported encoder holds the head's first layer(s) and loads without training
code; old encoder.json files (no head_dims) still load; exact resume; convergence."""

import json

import pytest
import torch
from method_harness import FAST, assert_resume_exact, digits_knn

import selfsup
from selfsup.errors import SelfsupError
from selfsup.export import save_encoder
from selfsup.methods.simclrv2 import SimCLRv2, SimCLRv2Config
from selfsup.models import ImageEncoder, ImageEncoderSpec

SPEC = ImageEncoderSpec("convnet", 3, 16, True, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
SMALL = {"method.proj_hidden_dim": 64, "method.proj_dim": 32}


def test_encoder_holds_the_first_head_layer_and_the_head_has_three_linear_layers():
    torch.manual_seed(0)
    method = SimCLRv2(SPEC, SimCLRv2Config(proj_hidden_dim=24, proj_dim=8), augment=None)
    assert method.encoder.spec.head_dims == (24,)
    assert method.encoder.out_dim == 24
    linears = [m for m in method.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (method.encoder.backbone.out_dim, 24),
        (24, 24),
        (24, 8),
    ]
    method.eval()
    x = torch.rand(5, 3, 16, 16)
    features = method.encoder.backbone((x - method.encoder.mean) / method.encoder.std)
    assert torch.allclose(method.encoder(x), method.encoder.head(features))
    assert (method.encoder(x) >= 0).all()  # after the layer's ReLU


def test_export_head_layers_zero_exports_the_backbone_alone():
    method = SimCLRv2(SPEC, SimCLRv2Config(proj_hidden_dim=24, export_head_layers=0), None)
    assert method.encoder.spec.head_dims == ()
    assert method.encoder.out_dim == method.encoder.backbone.out_dim


def test_export_head_layers_must_leave_the_last_layer():
    with pytest.raises(SelfsupError, match="export_head_layers"):
        SimCLRv2.make_config({"export_head_layers": 3})


def test_exported_encoder_loads_and_gives_equal_features(tmp_path):
    cfg = selfsup.make_config(**(FAST | {"method.name": "simclrv2", "train.epochs": 1} | SMALL))
    result = selfsup.pretrain(cfg, tmp_path / "run")
    meta = json.loads((tmp_path / "run" / "encoder.json").read_text())
    assert meta["spec"]["head_dims"] == [64] and meta["out_dim"] == 64
    loaded = selfsup.load(tmp_path / "run")
    trained = result.encoder.cpu().eval()
    x = torch.randint(0, 256, (10, *trained.spec.height_width), dtype=torch.uint8)
    x = trained.preprocess(x.numpy())
    with torch.no_grad():
        assert torch.allclose(loaded(x), trained(x), atol=1e-5)
    assert loaded(x).shape == (10, 64)


def test_old_encoder_json_without_head_dims_still_loads(tmp_path):
    torch.manual_seed(0)
    encoder = ImageEncoder(SPEC).eval()
    save_encoder(encoder, tmp_path)
    meta = json.loads((tmp_path / "encoder.json").read_text())
    del meta["spec"]["head_dims"]  # as written before the field existed
    (tmp_path / "encoder.json").write_text(json.dumps(meta))
    loaded = selfsup.load(tmp_path)
    assert loaded.spec.head_dims == ()
    x = torch.rand(3, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(x), encoder(x))


def test_resume_is_exact(tmp_path, monkeypatch):
    assert_resume_exact(tmp_path, monkeypatch, {"method.name": "simclrv2"} | SMALL)


@pytest.mark.slow
def test_converges_on_digits(tmp_path):
    learned, random = digits_knn(tmp_path, {"method.name": "simclrv2"} | SMALL, epochs=20)
    print(f"simclrv2 digits kNN: learned {learned:.4f}, random {random:.4f}")
    assert learned > random + 0.05
