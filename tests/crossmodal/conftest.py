"""Session fixtures: a tiny BERT text tower (see tests/text/text_fixtures.py)."""

from pathlib import Path

import pytest
from text.text_fixtures import make_tiny_bert


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))
