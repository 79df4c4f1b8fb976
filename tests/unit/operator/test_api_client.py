"""The handlers' API client (k8s.client, over urllib3 with kopf's login) and how objects maps its answers: what a
handler sees of a 404, a 409, a 5xx, an expired token or an API server that is down. Against a real HTTP server on
loopback that records what it was sent."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import kopf
import pytest

from driftline.api import constants as c
from driftline.k8s import client, objects

pytestmark = pytest.mark.unit


def status(code: int, reason: str, message: str = "", **details: Any) -> tuple[int, dict[str, Any]]:
    """An error answer as the API server writes it: a metav1.Status."""
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason, "message": message}
    return code, {**body, "code": code, **({"details": details} if details else {})}


class Recorder(BaseHTTPRequestHandler):
    answers: dict[tuple[str, str], tuple[int, dict[str, Any]] | tuple[int, dict[str, Any], dict[str, str]]] = {}
    seen: list[dict[str, Any]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.seen.append(
            {
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers),
                "body": json.loads(body) if body else None,
            }
        )
        code, answer, *extra = self.answers.get((self.command, self.path.split("?")[0]), status(404, "NotFound"))
        data = json.dumps(answer).encode()
        self.send_response(code)
        for name, value in (extra[0] if extra else {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_DELETE = _answer

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[type[Recorder]]:
    class Handler(Recorder):
        answers = {}
        seen = []

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    client.use(kopf.ConnectionInfo(server=f"http://127.0.0.1:{httpd.server_address[1]}/", token="t0k"))
    try:
        yield Handler
    finally:
        httpd.shutdown()
        httpd.server_close()


MV = f"/apis/{c.GROUP}/{c.VERSION}/namespaces/ml/{c.MODEL_VERSION.plural}"


def test_a_request_carries_the_login_and_its_body_and_returns_the_json(server: type[Recorder]) -> None:
    server.answers[("PATCH", f"{MV}/v1/status")] = (200, {"metadata": {"name": "v1"}, "status": {"stage": "Staging"}})
    out = objects.patch_status(c.MODEL_VERSION, "ml", "v1", {"stage": "Staging"}, resource_version="42")
    assert out == {"metadata": {"name": "v1"}, "status": {"stage": "Staging"}}
    (sent,) = server.seen
    assert sent["method"] == "PATCH" and sent["path"] == f"{MV}/v1/status"
    assert sent["headers"]["Authorization"] == "Bearer t0k"
    assert sent["headers"]["Content-Type"] == "application/merge-patch+json"
    assert sent["headers"]["User-Agent"] == client.USER_AGENT
    assert sent["body"] == {"status": {"stage": "Staging"}, "metadata": {"resourceVersion": "42"}}


def test_queries_are_encoded_and_empty_ones_left_out(server: type[Recorder]) -> None:
    server.answers[("GET", MV)] = (200, {"items": [{"metadata": {"name": "v1"}}]})
    assert objects.list_(c.MODEL_VERSION, "ml", fields={"spec.model": "churn model"}) == [{"metadata": {"name": "v1"}}]
    assert server.seen[0]["path"] == f"{MV}?fieldSelector=spec.model%3Dchurn+model"


def test_an_absent_object_is_none_and_a_conflict_says_which(server: type[Recorder]) -> None:
    assert objects.get(c.MODEL_VERSION, "ml", "gone") is None
    # Told apart by the Status reason, never by the wording (which is for people, and may change).
    server.answers[("POST", MV)] = status(409, "AlreadyExists", 'modelversions.driftline.dev "v1" exists')
    with pytest.raises(objects.AlreadyExists):
        objects.create(c.MODEL_VERSION, "ml", {"metadata": {"name": "v1"}})
    server.answers[("PATCH", f"{MV}/v1/status")] = status(409, "Conflict", "the object already exists in a new form")
    with pytest.raises(objects.Conflict):
        objects.patch_status(c.MODEL_VERSION, "ml", "v1", {}, resource_version="1")


@pytest.mark.parametrize("code", [401, 429, 500, 503])
def test_a_passing_failure_is_retried_later_by_kopf(server: type[Recorder], code: int) -> None:
    server.answers[("GET", f"{MV}/v1")] = status(code, "x")
    with pytest.raises(kopf.TemporaryError, match=f"API server: {code}") as e:
        objects.get(c.MODEL_VERSION, "ml", "v1")
    assert e.value.delay == objects.RETRY_DELAY


@pytest.mark.parametrize(
    ("header", "details", "delay"),
    [
        ({"Retry-After": "7"}, {}, 7.0),  # the header, as the API server's priority and fairness sends it
        ({}, {"retryAfterSeconds": 3}, 3.0),  # only in the Status
        ({"Retry-After": "2"}, {"retryAfterSeconds": 9}, 2.0),  # both: the header
        ({"Retry-After": "3600"}, {}, 60.0),  # never more than a minute
        ({"Retry-After": "0"}, {}, 1.0),  # never a hot loop
        ({"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}, {}, objects.RETRY_DELAY),  # the date form: ours
    ],
)
def test_too_many_requests_waits_as_long_as_the_api_server_asks(
    server: type[Recorder], header: dict[str, str], details: dict[str, Any], delay: float
) -> None:
    server.answers[("GET", f"{MV}/v1")] = (*status(429, "TooManyRequests", "too many requests", **details), header)
    with pytest.raises(kopf.TemporaryError) as e:
        objects.get(c.MODEL_VERSION, "ml", "v1")
    assert e.value.delay == delay


def test_a_refused_spec_is_raised_with_the_api_servers_message(server: type[Recorder]) -> None:
    server.answers[("POST", MV)] = status(422, "Invalid", "spec.model: Required value")
    with pytest.raises(client.ApiError, match=r"spec\.model: Required value") as e:
        objects.create(c.MODEL_VERSION, "ml", {})
    assert (e.value.status, e.value.status_reason) == (422, "Invalid")


def test_an_api_server_that_is_down_is_retried_later_by_kopf() -> None:
    with socket.socket() as s:  # a port with nothing listening on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client.use(kopf.ConnectionInfo(server=f"http://127.0.0.1:{port}"))
    with pytest.raises(kopf.TemporaryError, match="API server unreachable"):
        objects.get(c.MODEL_VERSION, "ml", "v1")
