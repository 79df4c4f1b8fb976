"""Who may read the operator's /metrics, from what the API server said of the caller's token (a TokenReview) and of
their right to the path (a SubjectAccessReview), as controller-runtime's secure metrics decide it. The metrics name
every tenant's objects, so a caller the cluster does not vouch for gets nothing. Pure: the answers in, an HTTP status
and message out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Answer:
    status: int
    message: str

    @property
    def allowed(self) -> bool:
        return self.status == 200


def bearer(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None for any other or no header."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token and " " not in token else None


def unauthenticated(review: Mapping[str, Any] | None) -> Answer | None:
    """401 unless the TokenReview's status says authenticated; None when it did."""
    if review is None:
        return Answer(401, "Unauthorized: a bearer token is required (Authorization: Bearer <token>)")
    if review.get("authenticated") is not True:
        why = review.get("error") or "the API server did not authenticate the token"
        return Answer(401, f"Unauthorized: {why}")
    return None


def decide(user: Mapping[str, Any], access: Mapping[str, Any], verb: str, path: str) -> Answer:
    """200 when the SubjectAccessReview's status allows `verb` on `path` for `user`, else 403 naming what is missing."""
    if access.get("allowed") is True and access.get("denied") is not True:
        return Answer(200, "")
    name = user.get("username") or "the caller"
    why = access.get("reason") or access.get("evaluationError")
    needs = f'a ClusterRole with nonResourceURLs ["{path}"], verbs ["{verb}"]'
    message = f"Forbidden: {name} may not {verb} {path} ({needs})"
    return Answer(403, message + (f": {why}" if why else ""))
