"""An HTTP GET with a deadline and a size cap, for the URLs tenants name (a Prometheus server, a pod's /metrics).

requests' `timeout` bounds each socket operation, not the request: a server sending a byte a second held a read for
30 s against a 5 s timeout (of the body, or of a header line), and a 100 MiB answer was read whole into the operator's
memory. Here a timer shuts the connection's socket down at the deadline, whatever is being read (status line,
headers or body: a blocked read returns at once), and reading stops at the cap.
"""

from __future__ import annotations

import contextlib
import contextvars
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
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
            heapq.heappush(self._heap, (due, next(self._seq), deadline))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="bounded-watchdog", daemon=True)
                self._thread.start()
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


class _Adapter(HTTPAdapter):
    """requests' adapter, its connections (direct or through a proxy) watched by the current deadline."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, *args: Any, **kwargs: Any) -> Any:
        manager = super().proxy_manager_for(*args, **kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager


def get(
    url: str,
    *,
    deadline: float,
    max_bytes: int,
    params: Mapping[str, str] | None = None,
    trust_env: bool = True,
) -> Answer:
    """GET `url`, all of it within `deadline` seconds and `max_bytes`; raises a requests.RequestException otherwise.
    Connections are kept alive between GETs (a drift reading every few seconds to the same Prometheus need not
    connect each time); a connection a deadline shut down is not reused."""
    with _Deadline(deadline) as d:
        token = _current.set(d)
        try:
            return _read(_session(trust_env), url, params, deadline, max_bytes, d)
        except requests.RequestException as e:
            if d.expired and not isinstance(e, TooLarge):
                raise TooSlow(f"no whole answer within {deadline:g}s") from e
            raise
        except (OSError, ValueError, urllib3.exceptions.HTTPError) as e:  # a read the deadline cut short
            if d.expired:
                raise TooSlow(f"no whole answer within {deadline:g}s") from e
            raise requests.ConnectionError(str(e)) from e
        finally:
            _current.reset(token)


_sessions: dict[bool, requests.Session] = {}
_sessions_lock = threading.Lock()
POOL_CONNECTIONS = 16
"""Hosts (Prometheus servers, pods) with connections kept, and connections kept per host."""


def _session(trust_env: bool) -> requests.Session:
    """One session per proxy setting, shared by the reading threads (its connection pools are thread-safe)."""
    with _sessions_lock:
        if trust_env not in _sessions:
            s = requests.Session()
            s.trust_env = trust_env
            adapter = _Adapter(pool_connections=POOL_CONNECTIONS, pool_maxsize=POOL_CONNECTIONS)
            s.mount("http://", adapter)
            s.mount("https://", adapter)
            _sessions[trust_env] = s
        return _sessions[trust_env]


def _read(
    s: requests.Session,
    url: str,
    params: Mapping[str, str] | None,
    deadline: float,
    max_bytes: int,
    d: _Deadline,
) -> Answer:
    # Identity: a compressed answer's cap would count compressed bytes.
    headers = {"Accept-Encoding": "identity"}
    with s.get(url, params=params, headers=headers, timeout=deadline, stream=True) as r:
        declared = r.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            raise TooLarge(f"the answer is {int(declared)} bytes, more than the {max_bytes} bytes allowed")
        body = bytearray()
        while chunk := r.raw.read1(CHUNK):
            body += chunk
            if len(body) > max_bytes:
                raise TooLarge(f"the answer is more than the {max_bytes} bytes allowed")
        if d.expired:  # a socket shut down mid-answer reads as its end: never take a cut answer for a whole one
            raise TooSlow(f"no whole answer within {deadline:g}s")
        return Answer(r.status_code, body.decode(r.encoding or "utf-8", errors="replace"))
