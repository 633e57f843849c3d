"""--format timm and --format torchvision: the other library's model loads the weights with no
missing or unexpected key and gives our encoder's features; what has no equivalent is refused."""

import json

import pytest
import torch
from safetensors.torch import load_file

from selfsup.errors import SelfsupError
from selfsup.export import save_encoder
from selfsup.exports.export import export
from selfsup.models.encoder import ImageEncoder, ImageEncoderSpec

timm = pytest.importorskip("timm")
torchvision = pytest.importorskip("torchvision")

MEAN, STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)


def image_run(path, backbone, size, cifar_stem, channels=3, **extra):
    """A folder holding an exported image encoder of random weights and random batch-norm
    statistics (so a buffer left unloaded would change the features)."""
    torch.manual_seed(0)
    mean, std = MEAN[:channels], STD[:channels]
    encoder = ImageEncoder(
        ImageEncoderSpec(backbone, channels, size, cifar_stem, mean, std, **extra)
    )
    for module in encoder.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    save_encoder(encoder.eval(), path)
    return path, encoder.eval()


def images(encoder, n=3):
    c, (h, w) = encoder.spec.in_channels, encoder.spec.height_width
    return torch.randint(0, 256, (n, c, h, w), generator=torch.Generator().manual_seed(1)).to(
        torch.uint8
    )


def normalised(encoder, x):
    """What a timm / torchvision model takes: images in [0, 1] normalised by the card's mean
    and std (our encoder does this inside forward)."""
    mean = torch.tensor(encoder.spec.mean).view(1, -1, 1, 1)
    std = torch.tensor(encoder.spec.std).view(1, -1, 1, 1)
    return (x.float() / 255 - mean) / std


def assert_same_features(model, encoder):
    x = images(encoder)
    with torch.no_grad():
        torch.testing.assert_close(
            model.eval()(normalised(encoder, x)), encoder(x), atol=1e-5, rtol=1e-4
        )


@pytest.mark.parametrize(
    ("backbone", "size", "cifar_stem", "name"),
    [
        ("resnet18", 64, False, "resnet18"),
        ("vit-tiny", 224, False, "vit_tiny_patch16_224"),  # a name timm registers as it is
        ("vit-mini", 32, True, "vit_tiny_patch16_224"),  # width 128, depth 6, patch 4: args
        # trained at 16 px on a ViT built for 32: position embeddings resampled, as timm's
        ("vit-mini-p2", 16, True, "vit_tiny_patch16_224"),
    ],
)
def test_timm_loads_the_export_strictly_with_our_features(
    tmp_path, backbone, size, cifar_stem, name
):
    run, encoder = image_run(tmp_path / "run", backbone, size, cifar_stem)
    folder = export(run, "timm", tmp_path / "timm")
    # the hub layout: create_model reads config.json and model.safetensors
    model = timm.create_model(f"local-dir:{folder}", pretrained=True)
    assert model.pretrained_cfg["mean"] == list(MEAN) and model.num_classes == 0
    assert_same_features(model, encoder)
    # the named architecture with the file: config.json's model_args give our shape, and the
    # weights fit it exactly (strict: no missing, no unexpected key)
    config = json.loads((folder / "config.json").read_text())
    assert config["architecture"] == name and config["num_features"] == encoder.out_dim
    bare = timm.create_model(name, num_classes=0, **config["model_args"])
    bare.load_state_dict(load_file(folder / "model.safetensors"), strict=True)
    assert_same_features(bare, encoder)
    overlay = timm.create_model(
        name,
        pretrained=True,
        pretrained_cfg_overlay={"file": str(folder / "model.safetensors"), "num_classes": 0},
        num_classes=0,
        **config["model_args"],
    )
    assert_same_features(overlay, encoder)
    data = timm.data.resolve_data_config({}, model=model)
    assert tuple(data["input_size"]) == (3, size, size) and tuple(data["std"]) == STD


@pytest.mark.parametrize("backbone", ["resnet34", "resnet50"])
def test_every_resnet_fits_timm_and_torchvision_key_for_key(tmp_path, backbone):
    run, _ = image_run(tmp_path / "run", backbone, 32, False)
    folder = export(run, "timm", tmp_path / "timm")
    timm.create_model(backbone, num_classes=0).load_state_dict(
        load_file(folder / "model.safetensors"), strict=True
    )
    folder = export(run, "torchvision", tmp_path / "tv")
    model = getattr(torchvision.models, backbone)()
    model.fc = torch.nn.Identity()
    model.load_state_dict(torch.load(folder / "model.pth", weights_only=True), strict=True)


def test_torchvision_resnet18_loads_the_export_with_our_features(tmp_path):
    run, encoder = image_run(tmp_path / "run", "resnet18", 64, False)
    folder = export(run, "torchvision", tmp_path / "tv")
    model = torchvision.models.resnet18()
    model.fc = torch.nn.Identity()
    model.load_state_dict(torch.load(folder / "model.pth", weights_only=True), strict=True)
    assert_same_features(model, encoder)


def test_a_cifar_stem_loads_into_torchvision_after_the_two_lines_the_card_gives(tmp_path):
    run, encoder = image_run(tmp_path / "run", "resnet18", 32, True)
    with pytest.warns(UserWarning, match=r"maxpool = torch\.nn\.Identity\(\)"):
        folder = export(run, "torchvision", tmp_path / "tv")
    state = torch.load(folder / "model.pth", weights_only=True)
    plain = torchvision.models.resnet18()
    plain.fc = torch.nn.Identity()
    with pytest.raises(RuntimeError, match=r"conv1\.weight"):  # the ImageNet stem does not fit
        plain.load_state_dict(state)
    # exactly what the card says
    model = torchvision.models.resnet18()
    model.conv1 = torch.nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
    model.maxpool = torch.nn.Identity()
    model.fc = torch.nn.Identity()
    model.load_state_dict(state, strict=True)
    assert_same_features(model, encoder)
    card = (folder / "README.md").read_text()
    assert "model.maxpool = torch.nn.Identity()" in card and "CIFAR stem" in card


def test_grey_resnet_loads_with_a_one_channel_conv1(tmp_path):
    run, encoder = image_run(tmp_path / "run", "resnet18", 32, False, channels=1)
    folder = export(run, "timm", tmp_path / "timm")
    assert_same_features(timm.create_model(f"local-dir:{folder}", pretrained=True), encoder)


@pytest.mark.parametrize(
    ("fmt", "backbone", "cifar_stem", "extra", "message"),
    [
        ("timm", "resnet18", True, {}, r"CIFAR stem.*--format torchvision"),
        ("timm", "convnet", False, {}, r"'convnet' has no equivalent.*--format onnx"),
        ("timm", "vit-mini-p4-causal", True, {}, r"no equivalent.*--format onnx"),
        ("timm", "resnet18", False, {"head_dims": (16,)}, r"projection-head.*--format onnx"),
        ("torchvision", "vit-mini", True, {}, r"timm ViT: export it with --format timm"),
        ("torchvision", "convnet", False, {}, r"no equivalent.*--format onnx"),
    ],
)
def test_what_has_no_equivalent_is_refused_before_anything_is_written(
    tmp_path, fmt, backbone, cifar_stem, extra, message
):
    run, _ = image_run(tmp_path / "run", backbone, 32, cifar_stem, **extra)
    with pytest.raises(SelfsupError, match=message):
        export(run, fmt, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("fmt", ["timm", "torchvision"])
def test_a_text_encoder_is_refused_naming_the_formats_that_fit(text_encoder_dir, tmp_path, fmt):
    with pytest.raises(SelfsupError, match=r"kind 'text'.*sentence-transformers"):
        export(text_encoder_dir, fmt, tmp_path / "out")
