"""Loaded by every pod process the runner starts (PYTHONPATH): gives the pod its own network identity.

A container binds 0.0.0.0 as on a real node; here all pods share one host, so a wildcard or loopback bind is moved to
the pod's own loopback address (DRIFTLINE_POD_IP). Nothing else is changed.
"""

import os
import socket
from typing import Any

_POD_IP = os.environ.get("DRIFTLINE_POD_IP")

if _POD_IP:
    _orig_bind = socket.socket.bind

    def _bind(self: socket.socket, address: Any) -> None:
        if (
            self.family == socket.AF_INET
            and isinstance(address, tuple)
            and address[0] in ("", "0.0.0.0", "127.0.0.1", "localhost")
        ):
            address = (_POD_IP, *address[1:])
        _orig_bind(self, address)

    socket.socket.bind = _bind  # type: ignore[method-assign,assignment]
