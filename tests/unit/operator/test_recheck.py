"""handlers.recheck: one pending look per key, and a look that fails is tried again rather than lost."""

from __future__ import annotations

import contextvars
import threading

import pytest

from driftline.handlers import recheck

pytestmark = pytest.mark.unit


def test_one_look_per_key_however_often_it_is_asked_for() -> None:
    calls: list[str] = []
    done = threading.Event()

    def look() -> None:
        calls.append("a")
        done.set()

    for _ in range(5):
        recheck.after(("t", "ns", "a"), 0.05, look)
    assert done.wait(5)
    threading.Event().wait(0.2)
    assert calls == ["a"]
    recheck.after(("t", "ns", "a"), 0.01, look)  # the look ran: a new one may be scheduled
    threading.Event().wait(0.3)
    assert calls == ["a", "a"]


def test_a_look_that_fails_is_tried_again() -> None:
    attempts: list[int] = []
    done = threading.Event()

    def flaky() -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("the API server is away")
        done.set()

    recheck.after(("t", "ns", "flaky"), 0.01, flaky)
    assert done.wait(5)
    assert len(attempts) == 3


_who: contextvars.ContextVar[str] = contextvars.ContextVar("who")


def test_a_look_runs_in_the_context_of_whoever_asked_for_it() -> None:
    # kopf posts Events through context variables: a look without them would write status but post no Event
    seen: list[str] = []
    done = threading.Event()

    def look() -> None:
        seen.append(_who.get("nobody"))
        if len(seen) == 1:
            raise ConnectionError("again")  # the retry keeps the context too
        done.set()

    token = _who.set("handler")
    try:
        recheck.after(("t", "ns", "ctx"), 0.01, look)
    finally:
        _who.reset(token)
    assert done.wait(5)
    assert seen == ["handler", "handler"]
