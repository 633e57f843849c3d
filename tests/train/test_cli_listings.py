"""`selfsup methods`, `selfsup datasets` and `selfsup evaluate --help` say what there is: each
method's family, data, paper and what it learns; each source's modality; every protocol."""

import pytest

from selfsup.cli import build_parser, main
from selfsup.data import describe_sources
from selfsup.data.registry import SOURCES
from selfsup.evaluate.registry import PROTOCOLS
from selfsup.methods import available_methods, get_method

FAMILIES = {
    "contrastive",
    "contrastive, queue or memory",
    "non-contrastive",
    "clustering and distillation",
    "metric",
    "metric (trains with labels)",
    "reconstruction",
    "pretext",
    "sentences, contrastive",
    "sentences, contrastive (trains with labels)",
    "sentences, self-prediction",
    "words",
    "series",
    "image-text",
    "generative",
    "world model",
}


@pytest.mark.parametrize("name", available_methods())
def test_every_method_says_its_family_paper_and_what_it_learns(name):
    method = get_method(name)
    assert method.family in FAMILIES
    assert any(ch.isdigit() for ch in method.paper), "the paper names its year"
    assert 10 < len(method.summary) <= 80 and not method.summary.endswith(".")
    # a method that trains with labels says so in its family
    assert method.uses_labels == ("labels" in method.family)


def test_methods_listing_shows_every_method_with_its_line(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:2] == ["method", "family"]
    for name in available_methods():
        method = get_method(name)
        (line,) = [row for row in out if row.split()[0] == name]
        assert method.summary in line and method.paper in line and method.family in line


def test_datasets_listing_names_each_sources_modality(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out.splitlines()
    for name in describe_sources():
        (line,) = [row for row in out if row.split()[0] == name]
        assert line.split()[1] == SOURCES[name].modality


def test_evaluate_help_lists_every_registered_protocol(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["evaluate", "--help"])
    text = "".join(capsys.readouterr().out.split())  # argparse wraps lines (at hyphens too)
    for protocol in PROTOCOLS.values():
        assert f"{protocol.name}(" in text
        assert "".join(protocol.summary.split()) in text
