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
