"""What the explorer's test files share: a server of given explorers in a thread."""

import threading
from contextlib import contextmanager

from selfsup.explore.server import bind

# t-SNE maps the fixtures: seconds, where UMAP's first call compiles (numba) for tens of them;
# UMAP has its own test (test_analysis.py)
LAYOUT = "tsne"


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
