"""Asking the API server who a token is (TokenReview) and whether they may do something (SubjectAccessReview): the
operator's /metrics trusts no caller the cluster itself has not vouched for."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from driftline.k8s import client


def token(token: str) -> dict[str, Any]:
    """The TokenReview's status for `token`: `authenticated`, `user` (username, uid, groups, extra) or `error`."""
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
    answer = client.request("POST", "/apis/authentication.k8s.io/v1/tokenreviews", body=review)
    return dict(answer.get("status") or {})


def non_resource(user: dict[str, Any], verb: str, path: str) -> dict[str, Any]:
    """The SubjectAccessReview's status for `user` (a TokenReview's status.user) doing `verb` on `path`."""
    spec: dict[str, Any] = {
        "user": user.get("username", ""),
        "groups": user.get("groups") or [],
        "nonResourceAttributes": {"path": path, "verb": verb},
    }
    if user.get("uid"):
        spec["uid"] = user["uid"]
    if user.get("extra"):
        spec["extra"] = user["extra"]
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
    answer = client.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body=review)
    return dict(answer.get("status") or {})


def allowed(
    username: str, groups: Sequence[str], namespace: str, verb: str, group: str, resource: str, name: str | None
) -> bool:
    """Whether `username` (in `groups`) may `verb` the `resource` (named `name`, if given) in `namespace`."""
    attributes = {"namespace": namespace, "verb": verb, "group": group, "resource": resource}
    if name:
        attributes["name"] = name
    spec = {"user": username, "groups": list(groups), "resourceAttributes": attributes}
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}
    answer = client.request("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", body=review)
    return bool((answer.get("status") or {}).get("allowed"))
