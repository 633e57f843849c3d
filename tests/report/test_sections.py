"""A modality gives its report sections as data and `report_parts` renders them (issue 20, item
2): `modalities/` imports neither evaluation nor the report, and writes no HTML."""

import ast
from pathlib import Path

import torch

import selfsup
from selfsup.modalities import get_modality
from selfsup.modalities.sections import NUM_NEIGHBOURS, NUM_QUERIES, ImageNeighbours
from selfsup.report_parts import section_html
from selfsup.run_data import load_run_splits, run_config, run_evaluation_data

MODALITIES = sorted((Path(selfsup.__file__).parent / "modalities").glob("*.py"))


def test_modalities_import_neither_evaluation_nor_the_report():
    for path in MODALITIES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith(("selfsup.evaluate", "selfsup.report")), (
                    path.name,
                    node.module,
                )


def test_modalities_write_no_html():
    for path in MODALITIES:
        text = path.read_text()
        assert not any(tag in text for tag in ("<p", "<td", "<tr", "<img", "<li")), path.name


def test_image_neighbours_are_data_that_the_report_renders(run):
    cfg = run_config(run)
    data = run_evaluation_data(cfg, load_run_splits(cfg, run))
    encoder = selfsup.load(run)
    sections = get_modality("image").report_sections(encoder, data.bank, data.queries, None, "cpu")
    assert [(key, title) for key, title, _ in sections] == [("neighbours", "Nearest neighbours")]
    content = sections[0][2]
    assert isinstance(content, ImageNeighbours) and content.queries.dtype == torch.uint8
    assert set(content.spaces) == {"learned", "pixels"}
    assert content.spaces["learned"].shape == (NUM_QUERIES, NUM_NEIGHBOURS)
    html = section_html(content)
    assert html.count("<tr>") == 1 + NUM_QUERIES and "Same-label neighbours" in html
