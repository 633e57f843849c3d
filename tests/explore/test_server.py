"""The explorer's server over HTTP and its command line: JSON endpoints, errors that leave the
server running, a taken port, a run without an encoder, Ctrl-C."""

import json
import shutil
import socket
import sys
import urllib.error
import urllib.request

import pytest
from explore_fixtures import serving

from selfsup.cli import main
from selfsup.errors import SelfsupError
from selfsup.explore import server as explore_server
from selfsup.explore.server import bind, static_file


def get(url, data=None, headers=None):
    """(status, body) of a request; an HTTP error's body is read too."""
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_endpoints_and_errors_that_leave_the_server_running(digits_explorer):
    with serving([digits_explorer]) as url:
        status, body = get(url)
        assert status == 200 and b"/static/app.js" in body
        status, body = get(url + "api/runs")
        assert status == 200 and json.loads(body)[0]["map_count"] == 360
        status, body = get(url + "api/map?run=0")
        assert status == 200 and len(body) == 3600
        status, body = get(url + f"api/neighbours?run=0&row={digits_explorer.start}&k=3")
        reply = json.loads(body)
        assert reply["sample"]["id"] == "test/0" and len(reply["neighbours"]) == 3
        status, body = get(url + "api/neighbours?run=0&id=test/0&k=3")
        assert json.loads(body)["neighbours"] == reply["neighbours"]
        for path, message in [
            ("api/neighbours?run=0&row=abc", "row must be a whole number"),
            ("api/neighbours?run=5&row=1", "run must be 0 .. 0"),
            ("api/duplicates?run=0&threshold=x", "threshold must be a number"),
            ("api/thumbnail?run=0", "no endpoint /api/thumbnail"),
        ]:
            status, body = get(url + path)
            assert status in (400, 404) and message in json.loads(body)["error"]
        status, body = get(
            url + "api/query?run=0",
            data=b"garbage",
            headers={"Content-Type": "application/octet-stream", "X-Filename": "bad%20scan.png"},
        )
        assert status == 400
        assert json.loads(body)["error"].startswith("cannot decode query image bad scan.png")
        status, body = get(
            url + "api/query?run=0",
            data=json.dumps({"text": "a seven"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        assert status == 400 and "a sentence cannot be searched" in json.loads(body)["error"]
        assert get(url + "api/outliers?run=0")[0] == 200  # still serving
        assert get(url + "api/accuracy?run=0")[0] == 200


def test_the_page_is_package_data():
    assert b"<canvas" not in static_file("index.html")  # drawn by the script
    assert b"class MapView" in static_file("app.js") and b"#hover" in static_file("app.css")


def test_a_taken_port_is_one_clear_error(digits_run, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SelfsupError, match=f"port {port} on 127.0.0.1 is in use.*--port"):
            bind("127.0.0.1", port)
        assert main(["explore", str(digits_run), "--port", str(port), "--no-browser"]) == 2
    assert "--port N with a free port" in capsys.readouterr().err


def test_a_run_without_an_encoder_is_refused_before_serving(digits_run, tmp_path, capsys):
    shutil.copy(digits_run / "config.json", tmp_path / "config.json")
    assert main(["explore", str(tmp_path), "--no-browser"]) == 2
    assert "no exported encoder" in capsys.readouterr().err
    assert main(["explore", str(digits_run), str(digits_run), str(digits_run)]) == 2


def test_the_command_serves_opens_the_browser_and_stops_on_ctrl_c(
    digits_run, digits_explorer, monkeypatch, capsys
):
    opened = []
    monkeypatch.setattr(explore_server.webbrowser, "open", opened.append)

    def interrupted(self):
        raise KeyboardInterrupt  # the user presses Ctrl-C once it serves

    monkeypatch.setattr(explore_server.ExploreServer, "serve_forever", interrupted)
    monkeypatch.setitem(sys.modules, "umap", None)  # the fixture's t-SNE map, read from the cache
    assert main(["explore", str(digits_run), "--port", "0"]) == 0
    out = capsys.readouterr().out
    assert opened and opened[0].startswith("http://127.0.0.1:") and opened[0] in out
    assert "stopped" in out
