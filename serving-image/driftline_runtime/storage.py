"""Object storage (s3://): where datasets are read from, and artifacts written to and fetched from.

The talking is done by obstore (the Python face of the Rust `object_store` crate: request signing, retries, the AWS
credential chain). This module holds what Driftline adds: the environment the operator renders, artifacts that are
immutable and complete or absent, and failures with a reason a person can act on, never a credential.

Configuration comes from the pod's environment, under the names the AWS SDKs use, so a custom trainer using boto3
reads the same settings:
- AWS_ENDPOINT_URL: an S3-compatible service (SeaweedFS, Ceph, R2, ...); http:// is allowed. AWS when unset.
- AWS_REGION (or AWS_DEFAULT_REGION): us-east-1 when unset.
- DRIFTLINE_S3_PATH_STYLE=true: path-style addressing (http://host/bucket/key), which most S3-compatible services
  want; virtual-hosted (http://bucket.host/key), as AWS prefers, otherwise.
- AWS_CA_BUNDLE: a PEM file of CAs to trust beside the system's (a service with a private CA).
- AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN (the kubelet fills them from the Secret a spec names).
  Without them, the default chain: web identity (IRSA: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN), container
  credentials (EKS Pod Identity, ECS), then the instance profile.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from driftline_runtime.termination import Failure

SCHEME = "s3://"
PATH_STYLE_ENV = "DRIFTLINE_S3_PATH_STYLE"
_CHUNK = 8 << 20
T = TypeVar("T")

if TYPE_CHECKING:
    from obstore.store import ClientConfig, S3Config


@dataclass(frozen=True)
class ObjectUri:
    """s3://bucket/key: `key` has no leading slash; a prefix ("directory") has no trailing one either."""

    bucket: str
    key: str

    def __str__(self) -> str:
        return f"{SCHEME}{self.bucket}/{self.key}" if self.key else f"{SCHEME}{self.bucket}"

    def child(self, name: str) -> ObjectUri:
        return ObjectUri(self.bucket, f"{self.key}/{name}" if self.key else name)


def is_object_uri(uri: str) -> bool:
    return uri.startswith(SCHEME)


def parse(uri: str) -> ObjectUri:
    if not is_object_uri(uri):
        raise Failure("InvalidStorageUri", f"{uri!r} is not an s3://<bucket>/<key> URI")
    bucket, _, key = uri[len(SCHEME) :].partition("/")
    key = key.strip("/")
    if not bucket or "//" in key or any(part in (".", "..") for part in key.split("/")):
        raise Failure("InvalidStorageUri", f"{uri!r} is not an s3://<bucket>/<key> URI")
    return ObjectUri(bucket, key)


# --- failures -------------------------------------------------------------------------------------------------------


class StorageFailure(Failure):
    """A request to object storage failed. `retryable` when trying again later may succeed (the service is down or
    busy), not when it said no (no such key, access denied, bad credentials)."""

    def __init__(self, reason: str, message: str, *, retryable: bool) -> None:
        super().__init__(reason, message)
        self.retryable = retryable


_S3_CODE = re.compile(r"<Code>([A-Za-z]+)</Code>")
_CODES = {
    # S3's error code -> (reason, retryable). https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html
    "NoSuchKey": ("NoSuchKey", False),
    "NoSuchBucket": ("NoSuchBucket", False),
    "AccessDenied": ("AccessDenied", False),
    "AllAccessDisabled": ("AccessDenied", False),
    "AccountProblem": ("AccessDenied", False),
    "SignatureDoesNotMatch": ("InvalidCredentials", False),
    "InvalidAccessKeyId": ("InvalidCredentials", False),
    "InvalidToken": ("InvalidCredentials", False),
    "ExpiredToken": ("InvalidCredentials", False),
    "TokenRefreshRequired": ("InvalidCredentials", False),
    "PreconditionFailed": ("AlreadyExists", False),
    "SlowDown": ("ServiceUnavailable", True),
    "ServiceUnavailable": ("ServiceUnavailable", True),
    "InternalError": ("ServiceUnavailable", True),
    "RequestTimeout": ("ServiceUnavailable", True),
}
_MEANINGS = {
    "NoSuchKey": "no such object",
    "NoSuchBucket": "no such bucket",
    "AccessDenied": "access denied (the credentials' policy does not allow it)",
    "InvalidCredentials": "the service refused the credentials (wrong key id, secret or token)",
    "AlreadyExists": "the object already exists",
    "ServiceUnavailable": "the service is busy or failing; trying again may work",
}


def _failure(e: Exception, what: str, uri: ObjectUri) -> StorageFailure:
    """What went wrong, as an S3 user names it: the S3 error code of the response when there is one, else obstore's
    exception type. The library's message is not passed on (a reason code and the URI are what a person acts on,
    and a message is no place for anything a request carried)."""
    from obstore import exceptions as ox

    text = str(e)
    found = _S3_CODE.search(text)
    if found and found.group(1) in _CODES:
        reason, retryable = _CODES[found.group(1)]
    elif isinstance(e, FileNotFoundError | ox.NotFoundError):
        reason, retryable = "NoSuchKey", False
    elif isinstance(e, ox.AlreadyExistsError | ox.PreconditionError):
        reason, retryable = "AlreadyExists", False
    elif isinstance(e, ox.PermissionDeniedError):
        reason, retryable = "AccessDenied", False
    elif isinstance(e, ox.UnauthenticatedError):
        reason, retryable = "InvalidCredentials", False
    elif any(s in text.lower() for s in ("certificate", "invalidcert", "unknownissuer")):
        return StorageFailure(
            "TLSError", f"{what} {uri}: the endpoint's certificate is not trusted (see AWS_CA_BUNDLE)", retryable=False
        )
    elif isinstance(e, ox.GenericError | OSError | TimeoutError):
        return StorageFailure("EndpointUnreachable", f"{what} {uri}: cannot reach {_endpoint_shown()}", retryable=True)
    else:
        return StorageFailure("StorageError", f"{what} {uri}: {type(e).__name__}", retryable=True)
    return StorageFailure(reason, f"{what} {uri}: {_MEANINGS[reason]}", retryable=retryable)


def _endpoint_shown() -> str:
    return os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT") or "the S3 endpoint"


def retrying(attempts: int, first_delay: float, fn: Callable[[], T], sleep: Callable[[float], None] = time.sleep) -> T:
    """fn(), again after first_delay, 2 x first_delay, ... while it fails with a retryable StorageFailure."""
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except StorageFailure as e:
            if not e.retryable or attempt == attempts:
                raise
            print(f"{e.reason}: {e.message}; trying again in {delay:.0f}s ({attempt}/{attempts})", flush=True)
            sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


# --- the store ------------------------------------------------------------------------------------------------------


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


def store_settings(env: Mapping[str, str]) -> tuple[S3Config, ClientConfig]:
    """obstore's (config, client_options) from the environment described above. The credentials are left to obstore,
    which reads them and the default chain from the same environment."""
    config: S3Config = {
        "region": env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        "virtual_hosted_style_request": not _truthy(env.get(PATH_STYLE_ENV)),
    }
    client: ClientConfig = {"connect_timeout": "5s", "timeout": "300s"}
    endpoint = env.get("AWS_ENDPOINT_URL") or env.get("AWS_ENDPOINT")
    if endpoint:
        config["endpoint"] = endpoint.rstrip("/")
        client["allow_http"] = endpoint.startswith("http://")
    if bundle := env.get("AWS_CA_BUNDLE"):
        try:
            with open(bundle, "rb") as f:
                client["root_certificate"] = f.read()
        except OSError as e:
            raise Failure("InvalidCABundle", f"AWS_CA_BUNDLE {bundle}: {e.strerror or e}") from e
    return config, client


_SETTINGS_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    PATH_STYLE_ENV,
    "AWS_CA_BUNDLE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)


def _store(bucket: str) -> Any:
    """One store per bucket and settings, so an artifact's three objects share one client and its connections."""
    return _cached_store(bucket, tuple(os.environ.get(name) for name in _SETTINGS_ENV))


@functools.lru_cache(maxsize=8)
def _cached_store(bucket: str, _settings: tuple[str | None, ...]) -> Any:
    from obstore.store import S3Store

    config, client = store_settings(os.environ)
    try:
        return S3Store(bucket, config=config, client_options=client, retry_config={"max_retries": 3})
    except Exception as e:
        raise Failure("InvalidStorageConfig", f"cannot use s3://{bucket}: {e}") from e


def _call(what: str, uri: ObjectUri, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except StorageFailure:
        raise
    except Exception as e:
        raise _failure(e, what, uri) from e


def list_keys(prefix: ObjectUri) -> list[str]:
    """The keys under prefix/ (relative to it), at any depth."""
    import obstore

    store = _store(prefix.bucket)
    start = f"{prefix.key}/" if prefix.key else ""

    def listing() -> list[str]:
        return [meta["path"][len(start) :] for batch in obstore.list(store, start or None) for meta in batch]

    return _call("listing", prefix, listing)


def download(uri: ObjectUri, path: str) -> str:
    """Write the object to `path` (through a partial file beside it) and return its sha256."""
    import obstore

    store = _store(uri.bucket)

    def get() -> str:
        digest = hashlib.sha256()
        partial = f"{path}.partial"
        with open(partial, "wb") as f:
            for chunk in obstore.get(store, uri.key).stream(min_chunk_size=_CHUNK):
                digest.update(chunk)
                f.write(chunk)
        os.replace(partial, path)
        return digest.hexdigest()

    try:
        return _call("reading", uri, get)
    finally:
        if os.path.exists(f"{path}.partial"):
            os.remove(f"{path}.partial")


def upload_new(path: str, uri: ObjectUri) -> None:
    """Put a file where no object is yet: a conditional put (If-None-Match: *) where the service supports it, so two
    writers can never both succeed."""
    import obstore

    store = _store(uri.bucket)
    _call("writing", uri, lambda: obstore.put(store, uri.key, Path(path), mode="create"))
