"""The explorer's local web server: the page's static files and JSON endpoints over one or two
runs' `RunExplorer`s.

The standard library's `ThreadingHTTPServer` serves it: a page on 127.0.0.1 for one user needs
no framework, and selfsup gains no dependency (FastAPI would bring starlette, pydantic and an
ASGI server for a dozen GET routes). Each request runs in its own thread; a query (the encoder)
holds a lock. A bad request gets a JSON error the page shows, and the server keeps running.
"""

from __future__ import annotations

import argparse
import errno
import json
import sys
import threading
import traceback
import webbrowser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from selfsup.errors import SelfsupError
from selfsup.explore.data import RunExplorer, check_run

STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/static/app.css": ("app.css", "text/css; charset=utf-8"),
}
MAX_UPLOAD = 32 * 1024 * 1024  # bytes of an uploaded query file
DUPLICATE_THRESHOLD = 0.02  # cosine distance under which two samples are listed as duplicates


def static_file(name: str) -> bytes:
    """A file of the page, from the installed package (pyproject's package-data)."""
    return (resources.files("selfsup.explore") / "static" / name).read_bytes()


class ExploreServer(ThreadingHTTPServer):
    """The HTTP server holding the runs (`explorers`, filled once they are computed)."""

    daemon_threads = True  # Ctrl-C does not wait for open connections

    def __init__(self, address: tuple[str, int], explorers: list[RunExplorer] | None = None):
        super().__init__(address, Handler)
        self.explorers: list[RunExplorer] = explorers or []
        self.query_lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/"


def bind(host: str, port: int) -> ExploreServer:
    """The server bound to (host, port), or one clear error when the port is taken."""
    try:
        return ExploreServer((host, port))
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise SelfsupError(
                f"port {port} on {host} is in use (another explorer or server?); "
                f"pass --port N with a free port, or --port 0 to pick one"
            ) from None
        raise SelfsupError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None


class Handler(BaseHTTPRequestHandler):
    server: ExploreServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a request line per hover would drown the terminal

    # ------------------------------------------------------------ replies

    def _send(self, body: bytes, content_type: str, status: int = 200):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        # nothing is kept across page loads: the same URL is another run after a restart (a
        # page reuses its own images of one URL all the same)
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, value: Any, status: int = 200) -> None:
        self._send(json.dumps(value).encode(), "application/json", status)

    def _error(self, message: str, status: int = HTTPStatus.BAD_REQUEST) -> None:
        self._json({"error": message}, status)

    def _guarded(self, work) -> None:
        """Run a request; a user error is a 400 with its message, anything else a 500 whose
        traceback goes to the terminal: the server keeps running either way."""
        try:
            work()
        except SelfsupError as err:
            self._error(str(err))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the page went away mid-reply
        except Exception as err:
            traceback.print_exc()
            self._error(f"internal error: {type(err).__name__}: {err}", 500)

    # ------------------------------------------------------------ routes

    def do_GET(self) -> None:
        self._guarded(self._get)

    def do_POST(self) -> None:
        self._guarded(self._post)

    def _explorer(self, query: dict[str, list[str]]) -> RunExplorer:
        value = query.get("run", ["0"])[0]
        runs = self.server.explorers
        if not value.isdigit() or int(value) >= len(runs):
            raise SelfsupError(f"run must be 0 .. {len(runs) - 1}, got {value!r}")
        return runs[int(value)]

    @staticmethod
    def _number(query: dict[str, list[str]], name: str, default: float, kind=int) -> Any:
        if name not in query:
            return default
        try:
            return kind(query[name][0])
        except ValueError:
            raise SelfsupError(f"{name} must be a number, got {query[name][0]!r}") from None

    def _row(self, ex: RunExplorer, query: dict[str, list[str]]) -> int:
        if "id" in query:
            return ex.row(sample_id=query["id"][0])
        return ex.row(row=query.get("row", [None])[0])

    def _get(self) -> None:
        url = urlparse(self.path)
        query = parse_qs(url.query)
        if url.path in STATIC:
            name, content_type = STATIC[url.path]
            self._send(static_file(name), content_type)
            return
        if url.path == "/favicon.ico":
            self._send(b"", "image/x-icon")
            return
        if url.path == "/api/runs":
            self._json([ex.summary() for ex in self.server.explorers])
            return
        if not url.path.startswith("/api/"):
            self._error(f"no page {url.path}", HTTPStatus.NOT_FOUND)
            return
        ex = self._explorer(query)
        route = url.path[len("/api/") :]
        if route == "map":
            self._send(ex.map_payload(), "application/octet-stream")
        elif route == "sample":
            self._json(ex.sample(self._row(ex, query)))
        elif route == "thumb":
            self._send(ex.thumbnail(self._row(ex, query)), "image/png")
        elif route == "neighbours":
            row = self._row(ex, query)
            k = self._number(query, "k", 10)
            self._json({"sample": ex.brief(row), "neighbours": ex.neighbours(row, k)})
        elif route == "duplicates":
            threshold = self._number(query, "threshold", DUPLICATE_THRESHOLD, float)
            self._json(ex.duplicates(threshold, self._number(query, "limit", 200)))
        elif route == "outliers":
            self._json(ex.outliers(self._number(query, "limit", 100)))
        elif route == "accuracy":
            self._json(ex.class_accuracy())
        else:
            self._error(f"no endpoint {url.path}", HTTPStatus.NOT_FOUND)

    def _post(self) -> None:
        url = urlparse(self.path)
        query = parse_qs(url.query)
        if url.path != "/api/query":
            self._error(f"no endpoint {url.path}", HTTPStatus.NOT_FOUND)
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_UPLOAD:
            self.rfile.read(length)  # read it, so the connection stays usable for the reply
            raise SelfsupError(f"the query file is over {MAX_UPLOAD // 2**20} MB")
        body = self.rfile.read(length)
        ex = self._explorer(query)
        k = self._number(query, "k", 10)
        with self.server.query_lock:  # one query through the encoder at a time
            if self.headers.get("Content-Type", "").startswith("application/json"):
                try:
                    text = json.loads(body or b"{}").get("text")
                except (ValueError, AttributeError):
                    raise SelfsupError('a text query is JSON {"text": "..."}') from None
                if not isinstance(text, str):
                    raise SelfsupError('a text query is JSON {"text": "..."}')
                self._json(ex.query(text=text, k=k))
            else:
                name = unquote(self.headers.get("X-Filename", "query"))
                self._json(ex.query(upload=body, name=name, k=k))


def serve(args: argparse.Namespace) -> int:
    """`selfsup explore`: check the runs, take the port, compute (or read) what the page
    needs, then serve until Ctrl-C."""
    if len(args.runs) > 2:
        raise SelfsupError(f"explore shows one run or two side by side, got {len(args.runs)}")
    for run in args.runs:
        check_run(run)  # a run without an encoder is refused before the port or the data
    server = bind(args.host, args.port)
    try:
        server.explorers = [RunExplorer(run, args.data, device=args.device) for run in args.runs]
        if len(server.explorers) == 2:
            a, b = server.explorers
            if not set(a.ids[a.start : a.stop]) & set(b.ids):
                print(
                    f"selfsup explore: the two runs share no sample ids ({a.data or 'own data'} "
                    f"and {b.data or 'own data'}): their neighbours cannot be set side by side",
                    file=sys.stderr,
                )
        print(f"selfsup explore: serving {', '.join(args.runs)} at {server.url} (Ctrl-C stops)")
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            print(
                f"selfsup explore: listening on {args.host}: whoever reaches this machine on port "
                f"{server.server_address[1]} sees the runs' samples and can query their encoders",
                file=sys.stderr,
            )
        sys.stdout.flush()
        if not args.no_browser:
            webbrowser.open(server.url)
        server.serve_forever()
    except KeyboardInterrupt:
        print("\nselfsup explore: stopped")
    finally:
        server.server_close()
    return 0
