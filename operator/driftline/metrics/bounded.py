"""An HTTP GET with a deadline and a size cap, for the URLs tenants name (a Prometheus server, a pod's /metrics).

requests' `timeout` bounds each socket operation, not the request: a server sending a byte a second held a read for
30 s against a 5 s timeout, and a 100 MiB answer was read whole into the operator's memory. Here every read of the
body gets only the time left, and reading stops at the cap. The status line and headers are bounded per read only
(requests reads them before handing anything over).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

import requests
import urllib3

CHUNK = 64 * 1024


class TooSlow(requests.Timeout):
    """The whole answer did not arrive within the deadline."""


class TooLarge(requests.RequestException):
    """The answer is larger than the cap."""


@dataclass(frozen=True)
class Answer:
    status: int
    text: str


def get(
    url: str,
    *,
    deadline: float,
    max_bytes: int,
    params: Mapping[str, str] | None = None,
    trust_env: bool = True,
) -> Answer:
    """GET `url`, all of it within `deadline` seconds and `max_bytes`; raises a requests.RequestException otherwise."""
    end = time.monotonic() + deadline
    with requests.Session() as s:
        s.trust_env = trust_env
        # Identity: a compressed answer's cap would count compressed bytes. Headers are bounded per read only.
        headers = {"Accept-Encoding": "identity"}
        with s.get(url, params=params, headers=headers, timeout=deadline, stream=True) as r:
            declared = r.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise TooLarge(f"the answer is {int(declared)} bytes, more than the {max_bytes} bytes allowed")
            body = bytearray()
            while True:
                left = end - time.monotonic()
                if left <= 0:
                    raise TooSlow(f"no whole answer within {deadline:g}s")
                _limit_next_read(r, left)
                try:
                    chunk = r.raw.read1(CHUNK)  # one socket read at most: a trickle cannot hold it past `left`
                except (OSError, ValueError, urllib3.exceptions.HTTPError) as e:  # the time left ran out mid-read
                    raise TooSlow(f"no whole answer within {deadline:g}s: {e}") from e
                if not chunk:
                    break
                body += chunk
                if len(body) > max_bytes:
                    raise TooLarge(f"the answer is more than the {max_bytes} bytes allowed")
            return Answer(r.status_code, body.decode(r.encoding or "utf-8", errors="replace"))


def _limit_next_read(r: requests.Response, seconds: float) -> None:
    conn = getattr(r.raw, "connection", None)
    sock = getattr(conn, "sock", None)
    if sock is not None:
        sock.settimeout(seconds)
