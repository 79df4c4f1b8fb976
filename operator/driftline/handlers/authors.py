"""The author's own rights, asked of the API server: glue between decide.authorship and SubjectAccessReviews."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from driftline.decide import authorship
from driftline.k8s import reviews


def refusal(obj: dict[str, Any], needs: Sequence[authorship.Need]) -> str | None:
    """Why the operator will not act for `obj`'s spec as its recorded author, or None."""
    meta = obj["metadata"]
    ns, author = meta["namespace"], authorship.author_of(meta.get("annotations"))
    if author is None or not needs:
        return authorship.refusal(ns, author, needs, [])
    who = (author.username, author.groups, ns)
    denied = [n for n in needs if not reviews.allowed(*who, n.verb, n.group, n.resource, n.name)]
    return authorship.refusal(ns, author, needs, denied)
