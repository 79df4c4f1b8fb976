"""The per-object locks (handlers/locks.py): one lock per key while anyone uses it, none kept afterwards."""

from __future__ import annotations

import gc

import pytest

from driftline.handlers import locks

pytestmark = pytest.mark.unit


def test_one_lock_per_key_while_it_is_held_and_none_left_afterwards() -> None:
    key = ("inferenceservice", "ml", "iris")
    held = locks.lock(key)
    with held:
        assert locks.lock(key) is held, "a second reconcile of the object waits for the first"
        assert locks.lock(("inferenceservice", "ml", "other")) is not held
        assert not held.acquire(blocking=False)
    del held
    gc.collect()
    assert key not in locks._locks, "a lock nobody holds is not kept for every object ever met"
