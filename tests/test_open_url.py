"""``tutor open URL`` / ``tutor check URL`` against a real HTTP server on 127.0.0.1:
the download is kept in the data home, the session reopens after the server stopped,
a changed file is a changed explainer, and every bad download gets a one-line error."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from tutor.cli import cli
from tutor.errors import TutorError
from tutor.fetch import fetch

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "explainers" / "sqlite-wal.md"


class Server:
    """Serves ``files`` (path -> (content type, bytes)) until stopped."""

    def __init__(self, files: dict[str, tuple[str, bytes]]):
        self.files = files
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path not in outer.files:
                    self.send_error(404)
                    return
                ctype, body = outer.files[self.path]
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server({"/sqlite-wal.md": ("text/markdown; charset=utf-8", SAMPLE.read_bytes())})
    yield s
    s.stop()


def open_url(url: str, script: str = "yes\n/quit\n"):
    return CliRunner().invoke(cli, ["open", url, "--plain", "--offline"], input=script)


def test_open_url_then_reopen_after_server_stopped(server):
    url = server.url + "/sqlite-wal.md"
    r = open_url(url)
    assert r.exit_code == 0, r.output
    assert "write-ahead log" in r.output
    server.stop()
    r = open_url(url, "/quit\n")
    assert r.exit_code == 0, r.output
    assert "cannot be reached: using the copy downloaded before" in r.output
    assert "Resuming session" in r.output


def test_changed_file_at_url_is_a_changed_explainer(server):
    url = server.url + "/sqlite-wal.md"
    assert open_url(url).exit_code == 0
    body = SAMPLE.read_bytes().replace(b"Pages are numbered from 1", b"Pages are counted from 1")
    server.files["/sqlite-wal.md"] = ("text/markdown", body)
    r = open_url(url, "/quit\n")
    assert r.exit_code == 0, r.output
    assert "Resuming session" in r.output
    assert f"{url} changed since this session started; your progress is kept." in r.output


def test_check_url(server):
    r = CliRunner().invoke(cli, ["check", server.url + "/sqlite-wal.md"])
    assert r.exit_code == 0, r.output
    assert r.output.startswith(server.url + "/sqlite-wal.md: OK")


def test_check_url_names_the_url_and_the_line_of_each_problem():
    broken = SAMPLE.read_text(encoding="utf-8").replace("  - id: wal-file\n", "  - id: Wal File!\n", 1)
    line = next(n for n, t in enumerate(broken.splitlines(), 1) if "Wal File!" in t)
    s = Server({"/broken.md": ("text/markdown", broken.encode())})
    try:
        r = CliRunner().invoke(cli, ["check", s.url + "/broken.md"])
    finally:
        s.stop()
    assert r.exit_code == 1
    assert f"{s.url}/broken.md:{line}:" in r.output and "tutor-home" not in r.output  # never the downloaded copy


@pytest.mark.parametrize(
    ("path", "ctype", "body", "expect"),
    [
        ("/missing.md", None, b"", "404"),
        ("/page.html", "text/html", b"<html></html>", "not a Markdown file"),
        ("/latin1.md", "text/markdown", b"# caf\xe9\n", "not UTF-8"),
        ("/big.md", "text/markdown", b"#" * 2000, "limit"),
    ],
)
def test_bad_downloads_get_a_clear_error(tmp_path, path, ctype, body, expect):
    s = Server({path: (ctype, body)} if ctype else {})
    try:
        with pytest.raises(Exception) as info:
            fetch(s.url + path, tmp_path, max_bytes=1000)
        assert expect in str(info.value)
        r = CliRunner().invoke(cli, ["check", s.url + path]) if expect != "limit" else None
        if r is not None:
            assert r.exit_code == 1 and expect in r.output and "Traceback" not in r.output
    finally:
        s.stop()
    assert not list(tmp_path.rglob("*.md"))  # nothing half-downloaded is kept


def test_unreachable_without_a_copy(tmp_path):
    s = Server({})
    url = s.url + "/x.md"
    s.stop()
    r = subprocess.run([sys.executable, "-m", "tutor", "open", url, "--plain", "--offline"], input="/quit\n",
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 1 and "cannot download it" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) <= 2, r.stderr


def test_timeout(tmp_path):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)  # accepts the connection, never answers
    try:
        with pytest.raises(Exception) as info:
            fetch(f"http://127.0.0.1:{sock.getsockname()[1]}/x.md", tmp_path, timeout=0.5)
        assert "cannot download it" in str(info.value)
    finally:
        sock.close()


def test_a_server_that_trickles_forever_is_given_up_on(tmp_path):
    """16.4: each read got its own timeout, so one byte every few seconds kept `tutor open
    URL` waiting without end. The whole download now has a deadline."""
    import socket
    import time

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    stop = threading.Event()

    def trickle():
        conn, _ = sock.accept()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/markdown\r\n\r\n# T\n")
        while not stop.is_set():
            try:
                conn.sendall(b"x")
            except OSError:
                break
            time.sleep(0.05)
        conn.close()

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    try:
        t0 = time.monotonic()
        with pytest.raises(TutorError) as info:
            fetch(f"http://127.0.0.1:{sock.getsockname()[1]}/x.md", tmp_path, timeout=1.0, deadline=1.0)
        assert time.monotonic() - t0 < 5
        assert "took more than 1 s" in str(info.value)
    finally:
        stop.set()
        sock.close()
