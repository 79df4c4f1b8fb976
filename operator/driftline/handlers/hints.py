"""What the last reconcile acted on, per child object: a hint that only skips work.

A child's watch event whose facts (what a reconcile reads of it) equal those the last reconcile acted on is no news:
the child the reconcile just wrote coming back, the controller's bookkeeping. Empty after a restart, when every parent
is handled once again (handlers/diffbase.py); a deletion is always news."""

from __future__ import annotations

from collections.abc import Callable


def is_news(seen: dict[str, str], event_type: str | None, uid: str | None, facts: Callable[[], str]) -> bool:
    """Whether a child's event needs its parent reconciled; forgets a deleted child."""
    if event_type == "DELETED":
        seen.pop(uid or "", None)
        return True
    return seen.get(uid or "") != facts()
