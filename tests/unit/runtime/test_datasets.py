"""Dataset loading: URI forms, formats, the sha256 lineage, and how damaged files are told apart."""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from driftline_runtime import datasets
from driftline_runtime.termination import Failure

pytestmark = pytest.mark.unit

CSV = b"a,b,y\n1,2,0\n3,4,1\n5,6,0\n"


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("x.csv", "csv"),
        ("x.CSV.gz", "csv"),
        ("x.parquet", "parquet"),
        ("x.pq", "parquet"),
        ("x.json", "json"),
        ("x.jsonl", "jsonl"),
        ("x.ndjson.gz", "jsonl"),
        ("x.txt", "csv"),
        ("noext", "csv"),
    ],
)
def test_format_from_name(name: str, fmt: str) -> None:
    assert datasets.format_from_name(name) == fmt


def test_plain_path_and_file_uri_give_the_same_bytes_hash(tmp_path: Path) -> None:
    path = tmp_path / "my data.csv"
    path.write_bytes(CSV)
    by_path = datasets.load(str(path))
    by_uri = datasets.load("file://" + str(path).replace(" ", "%20"))
    assert by_path.sha256 == by_uri.sha256 == hashlib.sha256(CSV).hexdigest()
    assert by_path.frame.equals(by_uri.frame) and list(by_path.frame.columns) == ["a", "b", "y"]
    assert by_path.size_bytes == len(CSV) and by_path.format == "csv"


def test_file_uri_with_a_remote_host_is_refused() -> None:
    with pytest.raises(Failure) as caught:
        datasets.load("file://otherhost/data.csv")
    assert caught.value.reason == "UnsupportedDatasetUri"


def test_explicit_format_wins_over_the_extension(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_text('[{"a": 1, "y": 0}, {"a": 2, "y": 1}]')
    assert datasets.load(str(path), "json").frame.shape == (2, 2)


def test_last_row_without_newline_is_fine_when_complete(tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(CSV.rstrip(b"\n"))
    assert len(datasets.load(str(path)).frame) == 3


def test_directory_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(Failure) as caught:
        datasets.load(str(tmp_path))
    assert caught.value.reason == "UnreadableDataset" and "directory" in caught.value.message


def test_sklearn_datasets_hash_their_canonical_csv() -> None:
    loaded = datasets.load("sklearn://iris")
    assert loaded.frame.shape == (150, 5) and loaded.frame.columns[-1] == "target"
    assert loaded.sha256 == hashlib.sha256(datasets.canonical_csv(loaded.frame)).hexdigest()
    assert datasets.load("sklearn://iris/").sha256 == loaded.sha256  # stable, and a trailing slash is harmless


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/data.csv":
            self._send(200, CSV, len(CSV))
        elif self.path == "/short.csv":
            self._send(200, CSV, len(CSV) + 100)  # claims more than it holds, then hangs up
            self.close_connection = True
        elif self.path == "/boom":
            self._send(500, b"oops", 4)
        else:
            self._send(404, b"no", 2)

    def _send(self, status: int, body: bytes, length: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_http_download(server: str) -> None:
    loaded = datasets.load(f"{server}/data.csv")
    assert loaded.sha256 == hashlib.sha256(CSV).hexdigest() and loaded.frame.shape == (3, 3)


@pytest.mark.parametrize(
    ("path", "reason", "text"),
    [
        ("/short.csv", "TruncatedDataset", "short.csv"),
        ("/missing.csv", "DatasetNotFound", "HTTP 404"),
        ("/boom", "DatasetDownloadFailed", "HTTP 500"),
    ],
)
def test_http_failures(server: str, path: str, reason: str, text: str) -> None:
    with pytest.raises(Failure) as caught:
        datasets.load(server + path, timeout=10)
    assert caught.value.reason == reason and text in caught.value.message


def test_unreachable_host_fails_cleanly() -> None:
    with pytest.raises(Failure) as caught:
        datasets.load("http://127.0.0.1:9/data.csv", timeout=5)
    assert caught.value.reason == "DatasetDownloadFailed"


TOKEN = "Bearer s3cr3t-7f1c2a"


class _Guarded(http.server.BaseHTTPRequestHandler):
    """Serves CSV only to requests carrying TOKEN; records every Authorization header it sees, per server."""

    seen: list[str | None]
    elsewhere: str  # a URL on another origin, for /away

    def do_GET(self) -> None:
        self.seen.append(self.headers.get("Authorization"))
        path = self.path.split("?", 1)[0]
        if path == "/hop":
            self._redirect("/data.csv")
        elif path == "/away":
            self._redirect(self.elsewhere)
        elif path == "/open.csv":
            self._send(200, CSV)
        elif self.headers.get("Authorization") != TOKEN:
            self._send(401, b"who are you?")
        elif path == "/data.csv":
            self._send(200, CSV)
        else:
            self._send(403, b"not yours")

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


def _serve(seen: list[str | None], elsewhere: str = "") -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = type("Handler", (_Guarded,), {"seen": seen, "elsewhere": elsewhere})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


@pytest.fixture
def guarded() -> Iterator[tuple[str, list[str | None], list[str | None]]]:
    """(base URL, headers the guarded server saw, headers another origin saw); /away redirects to the other one."""
    other_seen: list[str | None] = []
    other, other_url = _serve(other_seen)
    seen: list[str | None] = []
    httpd, url = _serve(seen, elsewhere=f"{other_url}/open.csv")
    try:
        yield url, seen, other_seen
    finally:
        for server in (httpd, other):
            server.shutdown()
            server.server_close()


def test_the_authorization_header_comes_from_the_environment(
    guarded: tuple[str, list[str | None], list[str | None]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, seen, _ = guarded
    monkeypatch.setenv(datasets.AUTHORIZATION_ENV, TOKEN + "\n")  # a Secret made from a file ends in a newline
    loaded = datasets.load(f"{url}/data.csv")
    assert loaded.frame.shape == (3, 3) and seen == [TOKEN]
    out = capsys.readouterr()
    assert "s3cr3t" not in out.out + out.err


def test_a_redirect_keeps_the_header_on_the_same_origin_only(
    guarded: tuple[str, list[str | None], list[str | None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, seen, other_seen = guarded
    monkeypatch.setenv(datasets.AUTHORIZATION_ENV, TOKEN)
    assert datasets.load(f"{url}/hop").frame.shape == (3, 3)
    assert seen == [TOKEN, TOKEN]
    assert datasets.load(f"{url}/away").frame.shape == (3, 3)  # another port is another origin
    assert seen[-1] == TOKEN and other_seen == [None]


@pytest.mark.parametrize(
    ("env", "hint"),
    [
        (None, "the server wants credentials"),
        ("Bearer wrong-9d2e", "refused the Authorization header from DRIFTLINE_DATASET_AUTHORIZATION"),
    ],
)
def test_refused_credentials_name_the_status_and_the_url_but_never_the_value(
    guarded: tuple[str, list[str | None], list[str | None]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: str | None,
    hint: str,
) -> None:
    url, _, _ = guarded
    if env is not None:
        monkeypatch.setenv(datasets.AUTHORIZATION_ENV, env)
    with pytest.raises(Failure) as caught:
        datasets.load(f"{url}/data.csv?X-Signature=abc123", timeout=10)
    failure = caught.value
    assert failure.reason == "DatasetAccessDenied"
    assert "HTTP 401" in failure.message and f"{url}/data.csv?<query hidden>" in failure.message
    assert hint in failure.message and "abc123" not in failure.message
    assert "wrong-9d2e" not in failure.message + str(failure) + capsys.readouterr().out


def test_forbidden_is_access_denied_too(
    guarded: tuple[str, list[str | None], list[str | None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _, _ = guarded
    monkeypatch.setenv(datasets.AUTHORIZATION_ENV, TOKEN)
    with pytest.raises(Failure) as caught:
        datasets.load(f"{url}/other.csv", timeout=10)
    assert caught.value.reason == "DatasetAccessDenied" and "HTTP 403" in caught.value.message
    assert "s3cr3t" not in caught.value.message


@pytest.mark.parametrize("value", ["", "  \n", "Bearer abc\r\nX-Evil: 1", "Bearer caf\u00e9"])
def test_an_unsendable_value_fails_without_showing_it(
    guarded: tuple[str, list[str | None], list[str | None]], monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    url, seen, _ = guarded
    monkeypatch.setenv(datasets.AUTHORIZATION_ENV, value)
    with pytest.raises(Failure) as caught:
        datasets.load(f"{url}/data.csv", timeout=10)
    assert caught.value.reason == "InvalidArguments" and "DRIFTLINE_DATASET_AUTHORIZATION" in caught.value.message
    assert "abc" not in caught.value.message and "caf" not in caught.value.message
    assert seen == []  # nothing was sent


def test_credentials_in_the_url_are_not_shown() -> None:
    assert datasets.shown_url("https://user:pw@host:8443/a/b.csv?sig=1#x") == "https://host:8443/a/b.csv?<query hidden>"
    assert datasets.shown_url("https://host/b.csv") == "https://host/b.csv"
