"""Where tenant-facing reads run: a canary's measurement round and a drift reading both on the reading threads, never
on kopf's handler threads or asyncio's default executor, where every other reconcile runs."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from driftline.handlers import inferenceservice, monitors

pytestmark = pytest.mark.unit


def test_a_canary_round_runs_on_a_reading_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, str, str, bool]] = []

    def reconcile(namespace: str, name: str, measure_now: bool = False) -> None:
        seen.append((threading.current_thread().name, namespace, name, measure_now))

    monkeypatch.setattr(inferenceservice, "reconcile", reconcile)
    asyncio.run(inferenceservice.on_canary_tick(name="s", namespace="ns"))
    ((thread, *call),) = seen
    assert thread.startswith("reading") and call == ["ns", "s", True]


def test_a_drift_reading_runs_on_a_reading_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    class Stop:
        def __init__(self) -> None:
            self.calls = 0

        def __bool__(self) -> bool:  # kopf's DaemonStopped is falsy until the daemon is to stop
            self.calls += 1
            return self.calls > 2

    def read_and_act(namespace: str, name: str, key: str = "drift") -> tuple[float, bool]:
        seen.append(threading.current_thread().name)
        return 1.0, False

    async def no_sleep(_: float) -> None:
        return None

    monkeypatch.setattr(monitors, "read_and_act", read_and_act)
    monkeypatch.setattr(monitors.asyncio, "sleep", no_sleep)
    stopped: Any = Stop()
    asyncio.run(monitors.drift_daemon(name="s", namespace="ns", spec={}, stopped=stopped))  # type: ignore[arg-type]
    assert len(seen) == 1 and seen[0].startswith("reading"), seen
