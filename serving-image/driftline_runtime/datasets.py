"""Loading a training table from a URI into pandas, with the sha256 that pins exactly which bytes were used.

Supported: `sklearn://<name>` (the datasets bundled with scikit-learn, no network), `http(s)://…`, `s3://bucket/key`
(object storage, configured as storage.py says), `file:///abs`, and plain paths. The operator mounts volumes and
passes plain paths; the URI the user wrote travels separately.

An http(s) download sends the Authorization header found in DRIFTLINE_DATASET_AUTHORIZATION (the kubelet fills it
from the Secret the TrainingJob names), to the dataset's own origin only. Its value is never printed: messages name
the variable, the HTTP status and the URL without its query string.
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
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from driftline_runtime import storage
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
AUTHORIZATION_ENV = "DRIFTLINE_DATASET_AUTHORIZATION"
# Visible ASCII with inner spaces: anything else (CR/LF above all) would be refused by http.client in an error
# message quoting the value.
_HEADER_VALUE = re.compile(r"[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?")
_DEFAULT_PORTS = {"http": 80, "https": 443}


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
    if scheme == "s3":
        return _load_object(uri, fmt)
    if scheme:
        raise Failure(
            "UnsupportedDatasetUri",
            f"cannot read dataset {uri!r}: scheme {scheme}:// is not readable by the trainer "
            "(use sklearn://, http(s)://, s3://, file:// or a path; the operator mounts volumes, passes their paths)",
        )
    return load_file(uri, fmt, shown_as=uri)


def _load_object(uri: str, fmt: str | None) -> Dataset:
    """An object downloaded into the pod's temporary storage, then read as a file (its name gives the format)."""
    location = storage.parse(uri)
    name = os.path.basename(location.key) or "dataset"
    with tempfile.TemporaryDirectory(prefix="driftline-dataset-") as d:
        path = os.path.join(d, name)
        try:
            storage.retrying(3, 1.0, lambda: storage.download(location, path))
        except storage.StorageFailure as e:
            reason = "DatasetNotFound" if e.reason in ("NoSuchKey", "NoSuchBucket") else "DatasetAccessDenied"
            if e.retryable:
                reason = "DatasetUnreachable"
            raise Failure(reason, f"cannot read dataset {uri!r}: {e.reason}: {e.message}") from e
        return load_file(path, fmt or format_from_name(name), shown_as=uri)


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


def authorization_from_env(environ: Mapping[str, str] = os.environ) -> str | None:
    """The Authorization header value for an http(s) dataset, if the pod was given one; surrounding whitespace (the
    trailing newline of a Secret made from a file) is dropped. A value that cannot be sent fails without showing it."""
    raw = environ.get(AUTHORIZATION_ENV)
    if raw is None:
        return None
    value = raw.strip()
    if not _HEADER_VALUE.fullmatch(value):
        problem = "empty" if not value else "not a valid header value (visible ASCII characters and inner spaces only)"
        raise Failure(
            "InvalidArguments",
            f"{AUTHORIZATION_ENV} (the dataset's Authorization header, from the Secret named in "
            f"spec.dataset.authorization) is {problem}; the value is not shown",
        )
    return value


def shown_url(url: str) -> str:
    """A URL for messages and logs: without user:password@ and without its query string, where signed URLs keep
    their signature."""
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "<query hidden>" if parts.query else "", ""))


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects, carrying the Authorization header only to the dataset's own scheme, host and port (as curl
    and requests do): a redirect to object storage, another site or plain http never receives the credentials."""

    def __init__(self, origin: tuple[str, str, int | None], authorization: str | None) -> None:
        self.origin, self.authorization = origin, authorization

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and self.authorization is not None and _origin(newurl) == self.origin:
            new.add_unredirected_header("Authorization", self.authorization)
        return new


def _load_http(url: str, fmt: str | None, timeout: float) -> Dataset:
    name = os.path.basename(urllib.parse.urlsplit(url).path) or "dataset"
    authorization = authorization_from_env()
    tmp = tempfile.mkdtemp(prefix="driftline-dataset-")
    try:
        local = os.path.join(tmp, name)
        _download(url, local, timeout, authorization)
        return load_file(local, fmt or format_from_name(name), shown_as=shown_url(url))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _download(url: str, dest: str, timeout: float, authorization: str | None = None) -> None:
    shown = shown_url(url)
    request = urllib.request.Request(url, headers={"User-Agent": "driftline-runtime"})
    if authorization is not None:
        # Unredirected: urllib would otherwise copy it to wherever a redirect points; _Redirects decides instead.
        request.add_unredirected_header("Authorization", authorization)
    opener = urllib.request.build_opener(_Redirects(_origin(url), authorization))
    try:
        with opener.open(request, timeout=timeout) as response, open(dest, "wb") as out:
            expected = response.headers.get("Content-Length")
            got = 0
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                got += len(chunk)
    except urllib.error.HTTPError as e:
        raise _http_failure(shown, e.code, str(e.reason), authorization is not None) from e
    except http.client.IncompleteRead as e:
        raise Failure(
            "TruncatedDataset", f"dataset {shown!r} is truncated: the connection closed before the announced length"
        ) from e
    except (urllib.error.URLError, OSError) as e:
        raise Failure("DatasetDownloadFailed", f"downloading dataset {shown!r} failed: {e}") from e
    if expected is not None and expected.isdigit() and int(expected) != got:
        raise Failure(
            "TruncatedDataset", f"dataset {shown!r} is truncated: Content-Length claims {expected} bytes, got {got}"
        )


def _http_failure(shown: str, code: int, reason: str, authorized: bool) -> Failure:
    text = f"downloading dataset {shown!r} failed: HTTP {code} {reason}"
    if code in (404, 410):
        return Failure("DatasetNotFound", text)
    if code in (401, 403):
        if authorized:
            hint = (
                f"the server refused the Authorization header from {AUTHORIZATION_ENV} (the Secret key named in "
                "spec.dataset.authorization): check the Secret's value and what it may read"
            )
        else:
            hint = (
                "the server wants credentials: name a Secret key holding the Authorization header in "
                "spec.dataset.authorization"
            )
        return Failure("DatasetAccessDenied", f"{text}; {hint}")
    return Failure("DatasetDownloadFailed", text)
