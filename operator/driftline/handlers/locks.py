"""Serialises work on one object or one model inside this operator process.

Only one operator replica acts at a time (kopf peering), so an in-process lock is enough to stop two handlers of
the same process from racing, e.g. two TrainingJobs of one model promoting at the same moment. The decisions
themselves always re-read the cluster: the lock orders them, it holds no state.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Hashable

_guard = threading.Lock()
_locks: defaultdict[Hashable, threading.Lock] = defaultdict(threading.Lock)


def lock(key: Hashable) -> threading.Lock:
    with _guard:
        return _locks[key]
