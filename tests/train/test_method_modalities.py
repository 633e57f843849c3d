"""A method is refused on data of a modality it does not serve, before any data is read, and the
error names the methods that do serve that modality (issue 19 item 1)."""

from typing import ClassVar

import pytest

import selfsup
from selfsup.errors import SelfsupError
from selfsup.methods import available_methods, get_method
from selfsup.modalities import MODALITIES

# One source per modality whose PATH does not exist: were it read, the error would be about the
# missing file, not the method.
SOURCES = {
    "image": "folder:/nonexistent/selfsup-images",
    "text": "text:/nonexistent/selfsup-sentences.txt",
    "series": "series:/nonexistent/selfsup-series.npz",
    "pair": "captions:/nonexistent/selfsup-captions",
    "transitions": "transitions:/nonexistent/selfsup-transitions.npz",
}

REFUSED = [
    (name, modality)
    for name in available_methods()
    for modality in MODALITIES
    if modality not in get_method(name).modalities
]


def test_every_modality_has_a_source_here():
    assert set(SOURCES) == set(MODALITIES)


@pytest.mark.parametrize(("name", "modality"), REFUSED)
def test_a_method_is_refused_on_a_modality_it_does_not_serve(name, modality, tmp_path):
    cfg = selfsup.make_config(
        **{"method.name": name, "data.source": SOURCES[modality], "model.path": str(tmp_path)}
    )
    with pytest.raises(SelfsupError) as err:
        selfsup.pretrain(cfg, tmp_path / "run")
    message = str(err.value)
    assert f"method {name!r}" in message and f"holds {modality} samples" in message
    serving = [n for n in available_methods() if modality in get_method(n).modalities]
    assert serving and ", ".join(serving) in message
    assert not (tmp_path / "run").exists()


def test_text_methods_on_captions_name_clip():
    """The issue's case: SimCSE, MLM, causal LM, TSDAE and contrastive tension on captions."""
    for name in ("simcse", "mlm", "causal_lm", "tsdae", "contrastive_tension"):
        assert ("pair" not in get_method(name).modalities) and (name, "pair") in REFUSED
    cfg = selfsup.make_config(**{"method.name": "simcse", "data.source": SOURCES["pair"]})
    with pytest.raises(SelfsupError, match=r"methods for pair data are: clip"):
        selfsup.pretrain(cfg, "/nonexistent/run")


def test_a_method_brings_its_published_backbone_unless_the_user_names_one():
    """`Method.backbones` picks the encoder a method was published with on a modality when
    `model.backbone` is left at its default; a backbone the user names wins."""
    from selfsup.methods.base import Method
    from selfsup.modalities import get_modality
    from selfsup.run import method_backbone

    class Published(Method):
        backbones: ClassVar[dict[str, str]] = {"series": "cpc-small"}

    series, image = get_modality("series"), get_modality("image")
    cfg = selfsup.make_config()
    assert method_backbone(cfg, Published, series).model.backbone == "cpc-small"
    assert method_backbone(cfg, Published, image).model.backbone == cfg.model.backbone
    mine = selfsup.make_config(**{"model.backbone": "cpc"})
    assert method_backbone(mine, Published, series).model.backbone == "cpc"
    assert method_backbone(cfg, Method, series) is cfg
