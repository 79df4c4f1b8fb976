"""An HTTP GET with a deadline and a size cap, for the URLs tenants name (a Prometheus server, a pod's /metrics).

requests' `timeout` bounds each socket operation, not the request: a server sending a byte a second held a read for
30 s against a 5 s timeout (of the body, or of a header line), and a 100 MiB answer was read whole into the operator's
memory. Here a timer shuts the connection's socket down at the deadline, whatever is being read (status line,
headers or body: a blocked read returns at once), and reading stops at the cap.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import heapq
import itertools
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

CHUNK = 64 * 1024


class TooSlow(requests.Timeout):
    """The whole answer did not arrive within the deadline."""


class TooLarge(requests.RequestException):
    """The answer is larger than the cap."""


@dataclass(frozen=True)
class Answer:
    status: int
    text: str


class _Watchdog:
    """One thread for every deadline of the process: a heap of them, each shut down when due unless done first.
    (A timer thread per GET cost more CPU than the GET itself at 50 readings a second.)"""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Deadline]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, due: float, deadline: _Deadline) -> None:
        with self._cond:
            entry = (due, next(self._seq), deadline)
            heapq.heappush(self._heap, entry)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="bounded-watchdog", daemon=True)
                self._thread.start()
            if self._heap[0] is entry:  # due before the one it sleeps towards: wake it (else a thread switch a GET)
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    self._cond.wait(None if not self._heap else self._heap[0][0] - time.monotonic())
                _, _, deadline = heapq.heappop(self._heap)
            deadline.expire()


_WATCHDOG = _Watchdog()


class _Deadline:
    """Shuts down every socket of one GET when its time is up; a socket used after that, at once."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._done = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._seconds = seconds

    def __enter__(self) -> _Deadline:
        _WATCHDOG.add(time.monotonic() + self._seconds, self)
        return self

    def __exit__(self, *_: object) -> None:
        with self._lock:
            self._done = True
            self._sockets.clear()

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            if self._done:
                return
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)


_current: contextvars.ContextVar[_Deadline | None] = contextvars.ContextVar("bounded_deadline", default=None)


class _WatchedHTTP(HTTPConnection):
    """Its socket watched by the current GET's deadline, whether the connection is new or kept alive from an earlier
    GET (urllib3 calls request() for every request on a connection)."""

    def connect(self) -> None:
        super().connect()
        if (d := _current.get()) is not None:
            d.watch(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        if (d := _current.get()) is not None:
            d.watch(self.sock)
        super().request(*args, **kwargs)


class _WatchedHTTPS(HTTPSConnection):
    def connect(self) -> None:
        super().connect()
        if (d := _current.get()) is not None:
            d.watch(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        if (d := _current.get()) is not None:
            d.watch(self.sock)
        super().request(*args, **kwargs)


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTP


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPS


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}
POOL_CONNECTIONS = 16
"""Hosts (Prometheus servers, pods) with connections kept, and connections kept per host."""

_managers: dict[str | None, urllib3.PoolManager] = {}
_managers_lock = threading.Lock()


def _manager(url: str, trust_env: bool) -> urllib3.PoolManager:
    """The pools for `url`: direct, or through the proxy the environment names for it (HTTP(S)_PROXY, NO_PROXY, as
    requests reads them) when `trust_env`. Shared by the reading threads (urllib3's pools are thread-safe), so a
    reading every few seconds to the same Prometheus reuses its connection."""
    parts = urllib.parse.urlsplit(url)
    proxy = _proxy(parts.scheme, parts.hostname or "") if trust_env else None
    with _managers_lock:
        if proxy not in _managers:
            options: dict[str, Any] = {"num_pools": POOL_CONNECTIONS, "maxsize": POOL_CONNECTIONS}
            manager = urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)
            manager.pool_classes_by_scheme = _POOLS
            _managers[proxy] = manager
        return _managers[proxy]


@functools.lru_cache(maxsize=1024)
def _proxy(scheme: str, host: str) -> str | None:
    """The proxy the environment names for `host`, if any. Read once per host: the operator's environment does not
    change, and reading it cost more than the rest of a GET."""
    proxies = urllib.request.getproxies_environment()
    candidate = proxies.get(scheme) or proxies.get("all")
    if candidate and not urllib.request.proxy_bypass(host):
        return candidate
    return None


def get(
    url: str,
    *,
    deadline: float,
    max_bytes: int,
    params: Mapping[str, str] | None = None,
    trust_env: bool = True,
) -> Answer:
    """GET `url`, all of it within `deadline` seconds and `max_bytes`; raises a requests.RequestException otherwise.
    Over urllib3 itself: requests' own preparation of each request cost more CPU than the request (a drift reading
    every 10 s for each of 500 services). Connections are kept alive between GETs; one a deadline shut down, or whose
    answer was not read to its end, is closed, never reused."""
    full = url + ("?" + urllib.parse.urlencode(params) if params else "")
    return _request("GET", full, None, deadline=deadline, max_bytes=max_bytes, trust_env=trust_env)


def post_form(url: str, form: Mapping[str, str], *, deadline: float, max_bytes: int, trust_env: bool = True) -> Answer:
    """POST `form` url-encoded to `url`, bounded as `get` is: for a request too long for a URL (a batch of queries)."""
    return _request("POST", url, urllib.parse.urlencode(form).encode(), deadline, max_bytes, trust_env)


def _request(method: str, url: str, body: bytes | None, deadline: float, max_bytes: int, trust_env: bool) -> Answer:
    with _Deadline(deadline) as d:
        token = _current.set(d)
        try:
            return _read(_manager(url, trust_env), method, url, body, deadline, max_bytes, d)
        except requests.RequestException as e:
            if d.expired and not isinstance(e, TooLarge):
                raise TooSlow(f"no whole answer within {deadline:g}s") from e
            raise
        except (OSError, ValueError, urllib3.exceptions.HTTPError) as e:  # refused, reset, or cut short by the deadline
            if d.expired:
                raise TooSlow(f"no whole answer within {deadline:g}s") from e
            raise requests.ConnectionError(str(e)) from e
        finally:
            _current.reset(token)


def _read(
    manager: urllib3.PoolManager,
    method: str,
    url: str,
    body: bytes | None,
    deadline: float,
    max_bytes: int,
    d: _Deadline,
) -> Answer:
    # Identity: a compressed answer's cap would count compressed bytes.
    headers = {"Accept-Encoding": "identity"}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    r = manager.request(
        method,
        url,
        body=body,
        headers=headers,
        preload_content=False,
        retries=False,
        timeout=urllib3.Timeout(connect=deadline, read=deadline),
    )
    complete = False
    try:
        declared = r.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise TooLarge(f"the answer is {int(declared)} bytes, more than the {max_bytes} bytes allowed")
        got = bytearray()
        while chunk := r.read1(CHUNK):
            got += chunk
            if len(got) > max_bytes:
                raise TooLarge(f"the answer is more than the {max_bytes} bytes allowed")
        if d.expired:  # a socket shut down mid-answer reads as its end: never take a cut answer for a whole one
            raise TooSlow(f"no whole answer within {deadline:g}s")
        complete = True
        return Answer(r.status, got.decode(_charset(r.headers.get("Content-Type", "")), errors="replace"))
    finally:
        if complete:
            r.release_conn()
        else:
            r.close()  # the rest of the answer is never read: the connection goes with it


def _charset(content_type: str) -> str:
    for part in content_type.split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            return value.strip('"')
    return "utf-8"
