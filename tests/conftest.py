"""Every test gets its own decoded-image cache folder, never the user's ~/.cache."""

import pytest


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SELFSUP_CACHE_DIR", str(tmp_path / "selfsup-cache"))
