"""What the explorer's test files share: a server of given explorers in a thread."""

import sys
import threading
from contextlib import contextmanager

import pytest

from selfsup.explore.data import RunExplorer
from selfsup.explore.server import bind


def explorer(run, **options) -> RunExplorer:
    """A run's explorer mapped by t-SNE, umap-learn hidden as where it is not installed: UMAP's
    first call in a process compiles numba code for tens of seconds (test_analysis.py runs it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "umap", None)
        return RunExplorer(run, **options)


@contextmanager
def serving(explorers):
    """A server of `explorers` on a free port of 127.0.0.1, in a thread; yields its URL."""
    server = bind("127.0.0.1", 0)
    server.explorers = list(explorers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.url
    finally:
        server.shutdown()
        server.server_close()
