"""Who may read the operator's /metrics: the API server's word on the token and on the caller's right."""

from __future__ import annotations

import pytest

from driftline.decide import access

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer abc.def", "abc.def"),
        ("bearer  abc ", "abc"),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearer", None),
        ("Bearer a b", None),
        ("", None),
        (None, None),
    ],
)
def test_only_a_bearer_token_is_taken(header: str | None, token: str | None) -> None:
    assert access.bearer(header) == token


def test_no_token_or_an_unauthenticated_one_is_401_saying_why() -> None:
    assert access.unauthenticated(None) == access.Answer(
        401, "Unauthorized: a bearer token is required (Authorization: Bearer <token>)"
    )
    said = access.unauthenticated({"authenticated": False, "error": "token has expired"})
    assert said == access.Answer(401, "Unauthorized: token has expired")
    assert access.unauthenticated({}) == access.Answer(
        401, "Unauthorized: the API server did not authenticate the token"
    )
    assert access.unauthenticated({"authenticated": True, "user": {"username": "p"}}) is None


def test_the_access_review_decides_and_a_refusal_names_the_role_to_grant() -> None:
    user = {"username": "system:serviceaccount:monitoring:prometheus"}
    assert access.decide(user, {"allowed": True}, "get", "/metrics").allowed
    refused = access.decide(user, {"allowed": False, "reason": "no RBAC policy matched"}, "get", "/metrics")
    assert refused == access.Answer(
        403,
        "Forbidden: system:serviceaccount:monitoring:prometheus may not get /metrics (a ClusterRole with "
        'nonResourceURLs ["/metrics"], verbs ["get"]): no RBAC policy matched',
    )
    # An explicit deny (a webhook authorizer's) wins over allowed.
    assert not access.decide(user, {"allowed": True, "denied": True}, "get", "/metrics").allowed
    assert access.decide({}, {}, "get", "/metrics").message.startswith("Forbidden: the caller may not")
