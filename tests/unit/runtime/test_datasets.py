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
