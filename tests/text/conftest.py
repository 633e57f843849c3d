"""Session fixtures: tiny BERT folders (see text_fixtures.py)."""

from pathlib import Path

import pytest
from text_fixtures import make_tiny_bert


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_bert_no_dropout(tmp_path_factory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert-nodrop"), dropout=0.0)
