"""Named crash points for the fault-injection tests (tests/e2e/test_crash.py), in the manner of etcd's gofail:
DRIFTLINE_FAILPOINTS=name[,name...] makes the operator SIGKILL itself the first time it reaches one of them, exactly as
a node failure or an OOM kill would at that instant. Unset, as in production, `hit` is one set lookup."""

from __future__ import annotations

import os
import signal

_ARMED = frozenset(p.strip() for p in os.environ.get("DRIFTLINE_FAILPOINTS", "").split(",") if p.strip())


def hit(name: str) -> None:
    if name in _ARMED:
        os.kill(os.getpid(), signal.SIGKILL)
