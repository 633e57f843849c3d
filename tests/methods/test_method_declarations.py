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
    "simcse": ("adamw", 1.2e-4, 0.0),  # 3e-5 at batch 64
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
            assert cls.optimiser.get("name") == "adamw", name
