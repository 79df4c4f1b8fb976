"""Loading a training table from a URI into pandas, with the sha256 that pins exactly which bytes were used.

Supported: `sklearn://<name>` (the datasets bundled with scikit-learn, no network), `http(s)://…`, `file:///abs`,
and plain paths. The operator mounts volumes and passes plain paths; the URI the user wrote travels separately.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

import pandas as pd

from driftline_runtime.artifact import sha256_file
from driftline_runtime.termination import Failure

SKLEARN_DATASETS = ("breast_cancer", "diabetes", "digits", "iris", "wine")
FORMATS = ("csv", "parquet", "json", "jsonl")
_EXTENSIONS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
_COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst", ".zip")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Dataset:
    frame: pd.DataFrame
    sha256: str
    size_bytes: int
    format: str


def format_from_name(name: str) -> str:
    """`x.csv.gz` -> csv, `x.parquet` -> parquet; anything unrecognised is read as CSV."""
    lowered = name.lower()
    for suffix in _COMPRESSIONS:
        if lowered.endswith(suffix):
            lowered = lowered[: -len(suffix)]
            break
    return _EXTENSIONS.get(os.path.splitext(lowered)[1], "csv")


def load(uri: str, fmt: str | None = None, *, timeout: float = 60.0) -> Dataset:
    scheme = urllib.parse.urlsplit(uri).scheme.lower() if "://" in uri else ""
    if scheme == "sklearn":
        return _load_sklearn(uri)
    if scheme in ("http", "https"):
        return _load_http(uri, fmt, timeout)
    if scheme == "file":
        return load_file(_file_uri_path(uri), fmt, shown_as=uri)
    if scheme:
        raise Failure(
            "UnsupportedDatasetUri",
            f"cannot read dataset {uri!r}: scheme {scheme}:// is not readable by the trainer "
            "(use sklearn://, http(s)://, file:// or a path; the operator mounts volumes and passes their paths)",
        )
    return load_file(uri, fmt, shown_as=uri)


def load_file(path: str, fmt: str | None, *, shown_as: str) -> Dataset:
    if not os.path.exists(path):
        where = "" if shown_as == path else f" ({path})"
        raise Failure("DatasetNotFound", f"dataset {shown_as!r} not found: no such file{where}")
    if os.path.isdir(path):
        raise Failure("UnreadableDataset", f"dataset {shown_as!r} is a directory ({path}); point at a single file")
    fmt = fmt or format_from_name(path)
    try:
        size = os.path.getsize(path)
        digest = sha256_file(path)
    except OSError as e:
        raise Failure("UnreadableDataset", f"cannot read dataset {shown_as!r}: {e.strerror or e}") from e
    if size == 0:
        raise Failure("EmptyDataset", f"dataset {shown_as!r} is an empty file (0 bytes)")
    frame = _parse(path, fmt, size, shown_as)
    frame.columns = [str(c) for c in frame.columns]
    if frame.shape[1] == 0 or frame.shape[0] == 0:
        raise Failure(
            "EmptyDataset", f"dataset {shown_as!r} has no rows ({frame.shape[1]} columns, {frame.shape[0]} rows)"
        )
    return Dataset(frame=frame, sha256=digest, size_bytes=size, format=fmt)


def _file_uri_path(uri: str) -> str:
    parts = urllib.parse.urlsplit(uri)
    if parts.netloc not in ("", "localhost"):
        raise Failure("UnsupportedDatasetUri", f"file URI {uri!r} names host {parts.netloc!r}; only local files work")
    return urllib.parse.unquote(parts.path)


def _parse(path: str, fmt: str, size: int, shown_as: str) -> pd.DataFrame:
    try:
        if fmt == "csv":
            frame = pd.read_csv(path, index_col=False, low_memory=False)
            _check_csv_tail(path, frame, shown_as)
            return frame
        if fmt == "parquet":
            return pd.read_parquet(path)
        if fmt in ("json", "jsonl"):
            return pd.read_json(path, lines=fmt == "jsonl")
    except Failure:
        raise
    except pd.errors.EmptyDataError as e:
        raise Failure("EmptyDataset", f"dataset {shown_as!r} has no columns: {e}") from e
    except EOFError as e:
        # gzip/bz2/xz streams that stop before their end marker: the upload or copy was cut.
        raise Failure("TruncatedDataset", f"dataset {shown_as!r} is truncated: {e}") from e
    except UnicodeDecodeError as e:
        raise Failure("UnreadableDataset", f"dataset {shown_as!r} is not UTF-8 text: {e}") from e
    except ImportError as e:
        raise Failure("UnreadableDataset", f"cannot read {fmt} dataset {shown_as!r}: {e}") from e
    except Exception as e:
        raise _parse_failure(e, fmt, size, shown_as) from e
    raise Failure("UnreadableDataset", f"unknown dataset format {fmt!r}; expected one of {', '.join(FORMATS)}")


def _parse_failure(e: Exception, fmt: str, size: int, shown_as: str) -> Failure:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if "EOF inside string" in text or "EOF following" in text:
        return Failure("TruncatedDataset", f"dataset {shown_as!r} is truncated: {text}")
    position = re.search(r"position (\d+)", text) if fmt in ("json", "jsonl") else None
    if position and int(position.group(1)) >= size - 2:
        return Failure("TruncatedDataset", f"dataset {shown_as!r} is truncated (JSON ends early): {text}")
    return Failure("UnreadableDataset", f"cannot parse dataset {shown_as!r} as {fmt}: {text}")


def _check_csv_tail(path: str, frame: pd.DataFrame, shown_as: str) -> None:
    """A CSV cut mid-row has no final newline and a short last row, which pandas would silently pad with NaN."""
    if path.lower().endswith(_COMPRESSIONS) or frame.empty or frame.shape[1] < 2:
        return
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        if f.read(1) in (b"\n", b"\r"):
            return
    last = frame.iloc[-1]
    if pd.isna(last.iloc[-1]):
        raise Failure(
            "TruncatedDataset",
            f"dataset {shown_as!r} looks truncated: its last row ({len(frame) + 1} lines in) ends without a newline "
            f"and has no value for column {frame.columns[-1]!r}",
        )


def _load_sklearn(uri: str) -> Dataset:
    name = uri.split("://", 1)[1].strip("/")
    if name not in SKLEARN_DATASETS:
        raise Failure(
            "UnknownDataset",
            f"unknown scikit-learn dataset {name!r} in {uri!r}; known: {', '.join(SKLEARN_DATASETS)}",
        )
    from sklearn import datasets

    bunch: Any = getattr(datasets, f"load_{name}")(as_frame=True)
    frame: pd.DataFrame = bunch.frame
    frame.columns = [str(c) for c in frame.columns]
    # No raw bytes exist for a bundled dataset: hash a canonical CSV rendering so lineage still pins the content.
    raw = canonical_csv(frame)
    return Dataset(frame=frame, sha256=hashlib.sha256(raw).hexdigest(), size_bytes=len(raw), format="sklearn")


def canonical_csv(frame: pd.DataFrame) -> bytes:
    text: str = frame.to_csv(index=False, lineterminator="\n")
    return text.encode("utf-8")


def _load_http(url: str, fmt: str | None, timeout: float) -> Dataset:
    name = os.path.basename(urllib.parse.urlsplit(url).path) or "dataset"
    tmp = tempfile.mkdtemp(prefix="driftline-dataset-")
    try:
        local = os.path.join(tmp, name)
        _download(url, local, timeout)
        return load_file(local, fmt or format_from_name(name), shown_as=url)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _download(url: str, dest: str, timeout: float) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "driftline-runtime"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, open(dest, "wb") as out:
            expected = response.headers.get("Content-Length")
            got = 0
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                got += len(chunk)
    except urllib.error.HTTPError as e:
        reason = "DatasetNotFound" if e.code in (404, 410) else "DatasetDownloadFailed"
        raise Failure(reason, f"downloading dataset {url!r} failed: HTTP {e.code} {e.reason}") from e
    except http.client.IncompleteRead as e:
        raise Failure(
            "TruncatedDataset", f"dataset {url!r} is truncated: the connection closed before the announced length"
        ) from e
    except (urllib.error.URLError, OSError) as e:
        raise Failure("DatasetDownloadFailed", f"downloading dataset {url!r} failed: {e}") from e
    if expected is not None and expected.isdigit() and int(expected) != got:
        raise Failure(
            "TruncatedDataset", f"dataset {url!r} is truncated: Content-Length claims {expected} bytes, got {got}"
        )
