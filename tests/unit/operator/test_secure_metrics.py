"""The secure metrics endpoint as a process: its own certificate, made without keeping cryptography in memory, and
what it answers before the API server is asked (no token) or when it cannot be (503, never a cached refusal)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from driftline.devcluster import procs
from tests.e2e.test_tenancy import get_metrics

pytestmark = pytest.mark.unit

SERVE = textwrap.dedent(
    """
    import sys, time
    import driftline.handlers  # the operator as it runs
    from driftline.k8s import secure_metrics
    secure_metrics.serve(int(sys.argv[1]), "127.0.0.1")
    print("cryptography" in sys.modules, flush=True)
    time.sleep(60)
    """
)


def test_a_self_signed_endpoint_that_never_keeps_cryptography_and_answers_without_the_api_server() -> None:
    port = procs.free_port()
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "False"
        deadline = time.monotonic() + 10
        while True:
            try:
                status, headers, body = get_metrics(port)
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert status == 401 and headers["WWW-Authenticate"] == 'Bearer realm="driftline-operator"'
        assert body == "Unauthorized: a bearer token is required (Authorization: Bearer <token>)\n"
        assert get_metrics(port, "Basic x")[0] == 401
        # No API server to ask (the operator has not logged in): 503, and asked again next time.
        for _ in range(2):
            status, _, body = get_metrics(port, "some-token")
            assert status == 503 and "the API server could not review the request" in body
    finally:
        proc.kill()
        proc.wait()
