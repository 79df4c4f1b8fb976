"""A failpoint kills the process only where it is armed, with SIGKILL (no clean-up runs), and costs nothing unarmed."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit
SCRIPT = "from driftline.handlers import failpoints; failpoints.hit('a.b'); print('alive', flush=True)"


@pytest.mark.parametrize(("armed", "killed"), [("a.b", True), ("x.y, a.b", True), ("a.bc", False), ("", False)])
def test_only_an_armed_point_kills(armed: str, killed: bool) -> None:
    env = {**os.environ, "DRIFTLINE_FAILPOINTS": armed}
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout.strip()) == ((-9, "") if killed else (0, "alive"))
