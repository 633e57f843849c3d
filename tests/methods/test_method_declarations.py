"""Every registered method declares what the run checks before reading data."""

import pytest

from selfsup.methods import available_methods, get_method
from selfsup.modalities import MODALITIES


@pytest.mark.parametrize("name", available_methods())
def test_method_declares_the_modalities_it_serves(name):
    cls = get_method(name)
    assert cls.modalities, f"{name} serves no modality"
    assert cls.modalities <= set(MODALITIES), f"{name}: unknown modality in {cls.modalities}"


def test_only_label_trained_methods_say_they_use_labels():
    flagged = {n for n in available_methods() if get_method(n).uses_labels}
    assert flagged == {"supcon", "simcse_sup"}


@pytest.mark.parametrize("name", available_methods())
def test_method_declares_its_published_optimiser(name):
    """Each method carries the optimiser it was published with at small scale (or says why it
    takes the library's), and the setting resolves to a whole, valid optimiser."""
    from selfsup.config import OptimConfig
    from selfsup.optim import resolve_optim

    cls = get_method(name)
    assert cls.optimiser_reference, f"{name} does not say where its optimiser comes from"
    cfg, sources = resolve_optim(OptimConfig(), cls.optimiser, name)
    assert cfg.name in ("lars", "sgd", "adamw") and cfg.lr > 0
    assert ("method" in sources.values()) == bool(cls.optimiser)


PUBLISHED = {
    "simsiam": ("sgd", 0.03, 5e-4),  # SimSiam's CIFAR-10 setting
    "moco": ("sgd", 0.03, 5e-4),  # the MoCo CIFAR-10 demo, 0.06 at batch 512
    "instdisc": ("sgd", 0.06, 5e-4),  # lemniscate cifar.py, 0.03 at batch 128
    "mae": ("adamw", 1.5e-4, 0.05),
    "byol": ("lars", 1.0, 1e-5),  # solo-learn's CIFAR BYOL
    "dino": ("lars", 0.3, 1e-6),  # solo-learn's CIFAR DINO
    "simcse": ("adamw", 3e-5, 0.0),  # the paper's lr, not scaled from its batch 64
    "clip": ("adamw", 2e-3, 0.1),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_optimisers(name):
    from selfsup.config import OptimConfig
    from selfsup.optim import resolve_optim

    cfg, _ = resolve_optim(OptimConfig(), get_method(name).optimiser, name)
    assert (cfg.name, cfg.lr, cfg.weight_decay) == PUBLISHED[name]
    if name == "mae":
        assert cfg.betas == (0.9, 0.95)


def test_text_methods_never_get_the_image_lars():
    """Item 15 of issue 18: SimCSE with no optim.* keys trained with LARS at 0.4 and took the
    packaged MiniLM from 0.818 to 0.791 STS-B Spearman."""
    for name in available_methods():
        cls = get_method(name)
        if cls.modalities == {"text"}:
            # word2vec's word table trains with word2vec.c's plain SGD; the transformers, AdamW
            want = "sgd" if name == "word2vec" else "adamw"
            assert cls.optimiser.get("name") == want, name


@pytest.mark.parametrize("name", available_methods())
def test_image_methods_declare_their_published_augmentation(name):
    from selfsup.augment.recipes import FAMILIES

    cls = get_method(name)
    if cls.modalities & {"image", "pair"}:
        assert cls.augment_family in FAMILIES, name
    else:
        assert cls.augment_family is None, name  # text and series make no image views


CIFAR_SIZE = {
    "mae": "mae",  # crop and flip only: no colour jitter, no grayscale
    "autoregressive": "aim",
    "rotation": "pad-crop-flip",
    "jigsaw": "none",
    "autoencoder": "none",
    "dae": "none",
    "byol": "byol-cifar",  # BYOL's asymmetric solarize
    "vicreg": "byol-cifar",
    "dino": "byol-cifar",
    "swav": "simclr-cifar",
    "instdisc": "instdisc-cifar",
    "simclr": "simclr-cifar",
}


@pytest.mark.parametrize("name", sorted(CIFAR_SIZE))
def test_default_recipe_follows_the_methods_family_on_cifar_size_images(name):
    """Until issue 18 every image method got SimCLR's CIFAR colour recipe; now the method's
    family, at the images' size, and the start-up line says which and why."""
    import selfsup
    from selfsup.modalities import get_modality
    from selfsup.models import ImageEncoderSpec

    spec = ImageEncoderSpec("convnet", 3, 32, True, (0.5,) * 3, (0.25,) * 3)
    image = get_modality("image")
    augment = image.augment(selfsup.make_config(**{"method.name": name}), spec)
    assert augment.recipe.name == CIFAR_SIZE[name]
    line = image.describe_augment(augment)
    assert f"augmentation: {CIFAR_SIZE[name]} (" in line
    assert f"{name}'s published augmentation: the {get_method(name).augment_family} family" in line
    assert "CIFAR-size colour images (32x32 px, colour)" in line
    chosen = image.augment(
        selfsup.make_config(**{"method.name": name, "method.augment": "light"}), spec
    )
    assert chosen.recipe.name == "light" and "set with --augment" in image.describe_augment(chosen)


@pytest.mark.parametrize("name", ["dino", "swav"])
def test_multicrop_methods_take_their_local_crops_from_the_recipe(name):
    """At CIFAR size two global views (no full-size "local" crops); with the multi-crop
    recipe, its 6 local views; local crops asked of a two-view recipe are refused."""
    from selfsup.augment import build_augment
    from selfsup.errors import SelfsupError
    from selfsup.models import ImageEncoderSpec

    spec = ImageEncoderSpec("convnet", 3, 32, True, (0.5,) * 3, (0.25,) * 3)
    small = {
        "dino": {"out_dim": 32, "hidden_dim": 16, "bottleneck_dim": 8},
        "swav": {"prototypes": 10, "proj_hidden_dim": 16, "proj_dim": 8},
    }[name]
    cls = get_method(name)
    two = cls(spec, cls.make_config(small), build_augment("simclr-cifar", 32, 3))
    x = torch_uint8_images()
    assert two.local_crops == 0 and len(two.views({"image": x})) == 2
    multi = "multicrop" if name == "dino" else "swav-multicrop"
    many = cls(spec, cls.make_config(small), build_augment(multi, 32, 3))
    assert many.local_crops == 6 and len(many.views({"image": x})) == 8
    with pytest.raises(SelfsupError, match="multi-crop recipe"):
        cls(spec, cls.make_config(small | {"local_crops": 2}), build_augment("byol-cifar", 32, 3))


def torch_uint8_images():
    import torch

    return torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8)


def test_is_supervised_is_the_methods_own_declaration():
    from selfsup.methods import is_supervised

    assert is_supervised("supcon") and is_supervised("simcse_sup")
    assert not is_supervised("simclr") and not is_supervised("no-such-method")


def test_a_method_imports_no_other_method():
    """Shared parts live in their own modules (models/queue.py, models/heads.py, the methods'
    `_` modules): a method file imports no other method, except the variant it extends."""
    import ast
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "src" / "selfsup" / "methods"
    allowed = {
        ("denoising_autoencoder", "autoencoder"),  # a variant: subclasses the autoencoder
    }
    found = set()
    for path in folder.glob("[a-z]*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("selfsup.m"):
                other = node.module.removeprefix("selfsup.methods.")
                if node.module.startswith("selfsup.methods.") and other[0] != "_":
                    found.add((path.stem, other))
    found -= {(m, o) for m, o in found if o in ("base", "registry")}
    assert found <= allowed, sorted(found - allowed)


def test_default_views_are_num_views_augmentations_of_the_image():
    import torch

    from selfsup.methods.base import Method

    class Three(Method):
        name, inputs, num_views = "three", frozenset({"image"}), 3

        def __init__(self):
            torch.nn.Module.__init__(self)
            self.augment = lambda x, view: x + view

    assert [float(v) for v in Three().views({"image": torch.zeros(())})] == [0.0, 1.0, 2.0]
