"""The server as a real process against clients that hold connections: a head sent a line at a time, a body sent in
part, more connections than it takes. Each is ended by its deadline or refused, and a polite client is served."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

import pytest

from tests.unit.runtime.server_kit import reference_data, write_model_dir
from tests.unit.runtime.test_server_process import serve_command, wait_for_address

pytestmark = pytest.mark.unit

LIMITS = ("--head-timeout", "1", "--body-timeout", "1", "--max-connections", "4")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    model = tmp_path_factory.mktemp("model")
    sha = write_model_dir(model)
    proc = subprocess.Popen(
        serve_command(model, sha, "--host", "127.0.0.1", "--port", "0", *LIMITS), stderr=subprocess.PIPE, text=True
    )
    try:
        url = urlparse(wait_for_address(proc, []))
        yield str(url.hostname), int(url.port or 0)
    finally:
        proc.kill()
        proc.wait()


def answer_of(sock: socket.socket, wait: float = 10.0) -> tuple[bytes, float]:
    """Everything the server sends until it closes the connection, and how long that took."""
    started = time.monotonic()
    sock.settimeout(wait)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data, time.monotonic() - started


def predict_body() -> bytes:
    return json.dumps({"instances": reference_data(2).tolist()}).encode()


def test_a_head_sent_a_line_at_a_time_is_ended_at_its_deadline(server: tuple[str, int]) -> None:
    with socket.create_connection(server) as sock:
        sock.sendall(b"POST /v1/models/iris:predict HTTP/1.1\r\nHost: x\r\n")  # and then nothing
        data, took = answer_of(sock)
    assert data.startswith(b"HTTP/1.1 408") and b"headers did not arrive within 1s" in data
    assert took < 5


def test_a_body_sent_in_part_is_answered_408_at_its_deadline(server: tuple[str, int]) -> None:
    with socket.create_connection(server) as sock:
        head = b"POST /v1/models/iris:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        sock.sendall(head + b"Content-Length: 100\r\n\r\n" + b'{"instances": ')
        sock.settimeout(10)
        started = time.monotonic()
        data = sock.recv(65536)
        took = time.monotonic() - started
    assert data.startswith(b"HTTP/1.1 408"), data
    assert json.loads(data.split(b"\r\n\r\n", 1)[1]) == {"error": "the request body did not arrive within 1s"}
    assert took < 5


def test_past_the_cap_a_connection_gets_a_503_and_a_freed_place_is_taken_again(server: tuple[str, int]) -> None:
    held = [socket.create_connection(server) for _ in range(4)]  # open, silent: no deadline runs yet
    try:
        time.sleep(0.3)
        with socket.create_connection(server) as extra:
            data, _ = answer_of(extra)
        assert data.startswith(b"HTTP/1.1 503") and b"too many connections" in data
        held.pop().close()
        assert served(server), "the place one connection freed was not taken again"
    finally:
        for sock in held:
            sock.close()
        assert served(server)  # the server's count drops when it sees them closed, a moment later


def served(server: tuple[str, int], within: float = 10.0) -> bool:
    """A prediction on a new connection answered 200, tried again while the server is still at its cap."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        conn = http.client.HTTPConnection(*server, timeout=10)
        try:
            conn.request("POST", "/v1/models/iris:predict", predict_body(), {"Content-Type": "application/json"})
            if conn.getresponse().status == 200:
                return True
        except OSError:  # refused at the cap: the 503 and the close can beat our request
            pass
        finally:
            conn.close()
        time.sleep(0.1)
    return False


def test_a_keep_alive_client_idle_past_the_head_deadline_is_served_again(server: tuple[str, int]) -> None:
    conn, first = taken(server)  # the test before this one left the server at its cap, for a moment
    try:
        assert first.status == 200 and len(json.loads(first.read())["predictions"]) == 2
        for _ in range(2):
            time.sleep(1.5)  # idle longer than the head deadline: idle is not slow
            conn.request("POST", "/v1/models/iris:predict", predict_body(), {"Content-Type": "application/json"})
            response = conn.getresponse()
            assert response.status == 200 and len(json.loads(response.read())["predictions"]) == 2
    finally:
        conn.close()


def test_a_body_sent_after_its_head_does_not_start_a_head_deadline(server: tuple[str, int]) -> None:
    # Once: body bytes arriving after their head was dispatched armed the next request's head deadline, so a
    # keep-alive connection then idle for longer than it was closed (408) under the client's next request.
    conn, first = taken(server)
    try:
        first.read()
        body = predict_body()
        head = "POST /v1/models/iris:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        assert conn.sock is not None
        conn.sock.sendall(f"{head}Content-Length: {len(body)}\r\n\r\n".encode())
        time.sleep(0.3)  # the head is dispatched; the handler waits for the body
        conn.sock.sendall(body)
        response = http.client.HTTPResponse(conn.sock)
        response.begin()
        assert response.status == 200
        response.read()
        time.sleep(1.5)  # idle past the head deadline
        conn.request("POST", "/v1/models/iris:predict", predict_body(), {"Content-Type": "application/json"})
        assert conn.getresponse().status == 200
    finally:
        conn.close()


def taken(server: tuple[str, int], within: float = 10.0) -> tuple[http.client.HTTPConnection, Any]:
    """A connection the server took, with the answer to its first prediction."""
    deadline = time.monotonic() + within
    while True:
        conn = http.client.HTTPConnection(*server, timeout=10)
        try:
            conn.request("POST", "/v1/models/iris:predict", predict_body(), {"Content-Type": "application/json"})
            response = conn.getresponse()
            if response.status != 503 or time.monotonic() > deadline:
                return conn, response
            response.read()
        except OSError:  # refused at the cap: the 503 and the close can beat our request
            if time.monotonic() > deadline:
                raise
        conn.close()
        time.sleep(0.1)
