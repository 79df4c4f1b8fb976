"""Look at an object again later, when no watch event will come to say that something changed (a pod waiting for a
Secret, an image or a volume changes nothing the operator watches).

A hint, like handlers.hints: at most one pending look per key, kept in memory. A restart loses none of the truth, since
every object is reconciled once again at start-up (kopf's resume handlers), which schedules the looks it still needs.
Unlike a kopf timer, it puts no finalizer on the object and writes nothing to arm or disarm.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Hashable

log = logging.getLogger(__name__)

_pending: dict[Hashable, threading.Timer] = {}
_guard = threading.Lock()


def after(key: Hashable, seconds: float, look: Callable[[], None]) -> None:
    """Call `look` in `seconds`, unless a look for `key` is pending already. It runs in the caller's context: kopf
    posts Events through context variables that a bare thread does not have."""
    with _guard:
        if key in _pending:
            return
        ctx = contextvars.copy_context()
        timer = threading.Timer(seconds, ctx.run, (_run, key, seconds, look))
        timer.daemon = True
        _pending[key] = timer
    timer.start()


def _run(key: Hashable, seconds: float, look: Callable[[], None]) -> None:
    with _guard:
        _pending.pop(key, None)
    try:
        look()
    except Exception:  # the API server away for a moment: look again later; the operator stays up
        log.exception("looking again at %s failed; trying again in %.0fs", key, seconds)
        after(key, seconds, look)
