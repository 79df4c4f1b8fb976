"""The operator's /metrics over HTTPS, for callers the API server vouches for: each request's bearer token is
reviewed (TokenReview) and its holder's right to `get /metrics` checked (SubjectAccessReview), as
controller-runtime's secure metrics do. The metrics name every tenant's objects and decisions.

prometheus-client serves TLS but has no authorization hook, so its WSGI app is wrapped here. Answers are cached per
token (a minute when allowed, 10 s when refused) so a scrape every 30 s costs the API server two reviews a minute at
most; an API server that cannot answer gets a 503, never a cached refusal. The TLS handshake runs in the request's
own thread with a deadline: a client that connects and sends nothing never holds up the others."""

from __future__ import annotations

import hashlib
import logging
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from http import HTTPStatus
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app

from driftline.decide import access
from driftline.k8s import client, reviews

log = logging.getLogger(__name__)

VERB, PATH = "get", "/metrics"
ALLOWED_SECONDS, REFUSED_SECONDS = 60.0, 10.0
CACHE_SIZE = 512
CONNECTION_SECONDS = 10.0
"""A connection's TLS handshake and request must arrive within this."""

StartResponse = Callable[..., Any]
Wsgi = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


class _Answers:
    """Recent answers by the token's sha256 (never the token itself), oldest dropped first past CACHE_SIZE."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[str, tuple[float, access.Answer]] = OrderedDict()

    def get(self, key: str) -> access.Answer | None:
        with self._lock:
            found = self._items.get(key)
            if found is None or found[0] < time.monotonic():
                return None
            return found[1]

    def put(self, key: str, answer: access.Answer) -> None:
        ttl = ALLOWED_SECONDS if answer.allowed else REFUSED_SECONDS
        with self._lock:
            self._items[key] = (time.monotonic() + ttl, answer)
            self._items.move_to_end(key)
            while len(self._items) > CACHE_SIZE:
                self._items.popitem(last=False)


def check(authorization: str | None, answers: _Answers) -> access.Answer:
    """What to answer a request with this Authorization header."""
    token = access.bearer(authorization)
    if token is None:
        return access.unauthenticated(None) or access.Answer(401, "")
    key = hashlib.sha256(token.encode()).hexdigest()
    if (cached := answers.get(key)) is not None:
        return cached
    try:
        review = reviews.token(token)
        answer = access.unauthenticated(review)
        if answer is None:
            user = dict(review.get("user") or {})
            answer = access.decide(user, reviews.non_resource(user, VERB, PATH), VERB, PATH)
    except client.ApiError as e:
        log.warning("could not review a /metrics request: %s", e)
        return access.Answer(503, f"Service Unavailable: the API server could not review the request ({e.reason})")
    answers.put(key, answer)
    return answer


def app(registry: CollectorRegistry = REGISTRY) -> Wsgi:
    metrics: Wsgi = make_wsgi_app(registry)
    answers = _Answers()

    def guarded(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        answer = check(environ.get("HTTP_AUTHORIZATION"), answers)
        if answer.allowed:
            return metrics(environ, start_response)
        body = (answer.message + "\n").encode()
        headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
        if answer.status == 401:
            headers.append(("WWW-Authenticate", 'Bearer realm="driftline-operator"'))
        start_response(f"{answer.status} {HTTPStatus(answer.status).phrase}", headers)
        return [body]

    return guarded


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    tls: ssl.SSLContext

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()  # plain: the handshake happens in the request's thread
        return self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("metrics connection from %s ended in error", client_address, exc_info=True)


class _Handler(WSGIRequestHandler):
    timeout = CONNECTION_SECONDS

    def setup(self) -> None:
        super().setup()  # the socket's timeout first, then the handshake within it
        assert isinstance(self.connection, ssl.SSLSocket)
        self.connection.do_handshake()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(port: int, address: str, cert_dir: Path | None = None) -> _Server:
    """Serve /metrics on `address`:`port` in a daemon thread, with tls.crt/tls.key from `cert_dir`, or a certificate
    of its own (self-signed, as controller-runtime's) when there is none."""
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_dir is not None:
        tls.load_cert_chain(cert_dir / "tls.crt", cert_dir / "tls.key")
    else:
        with tempfile.TemporaryDirectory() as tmp:
            # In a child process: the cryptography library would stay in the operator's memory for good (8 MiB).
            command = [sys.executable, "-m", "driftline.k8s.selfsigned", tmp]
            subprocess.run(command, check=True, timeout=60, stdout=subprocess.DEVNULL)
            tls.load_cert_chain(Path(tmp) / "tls.crt", Path(tmp) / "tls.key")
    server = make_server(address, port, app(), _Server, handler_class=_Handler)
    server.tls = tls
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
