"""Serialises work on one object or one model inside this operator process.

Only one operator replica acts at a time (kopf peering), so an in-process lock is enough to stop two handlers of
the same process from racing, e.g. two TrainingJobs of one model promoting at the same moment. The decisions
themselves always re-read the cluster: the lock orders them, it holds no state.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Hashable

_guard = threading.Lock()
_locks: weakref.WeakValueDictionary[Hashable, threading.Lock] = weakref.WeakValueDictionary()
"""Held weakly: a lock lives while some thread holds it or waits for it, then goes (no lock left behind for every
object the operator ever met)."""


def lock(key: Hashable) -> threading.Lock:
    with _guard:
        found = _locks.get(key)
        if found is None:
            found = _locks[key] = threading.Lock()
        return found
