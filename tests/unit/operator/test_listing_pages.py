"""The operator's paged listings (k8s/objects.py), as the view of the cluster is filled from them."""

from __future__ import annotations

from typing import Any

import pytest

from driftline.k8s import objects

pytestmark = pytest.mark.unit


def test_every_page_is_read_and_each_item_gets_the_lists_kind_without_managed_fields(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A list's items carry no kind of their own: without it, a Deployment from a listing differs from the same one
    rendered, and a restarted operator re-applied every Deployment it had (found by bench memory's restart)."""
    pages = {
        "": {"continue": "p2", "items": [{"metadata": {"name": "a", "managedFields": [{"manager": "x"}]}}]},
        "p2": {"continue": "", "items": [{"metadata": {"name": "b"}}]},
    }
    asked: list[dict[str, str]] = []

    def request(method: str, path: str, *, query: dict[str, str], **_: Any) -> dict[str, Any]:
        asked.append(query)
        page = pages[query.get("continue", "")]
        snapshot = "41" if not query.get("continue") else "57"  # a later page never moves the snapshot
        return {
            "kind": "DeploymentList",
            "apiVersion": "apps/v1",
            "metadata": {"continue": page["continue"], "resourceVersion": snapshot},
            "items": page["items"],
        }

    monkeypatch.setattr(objects, "request", request)
    listing = objects.all_deployments("ml", "driftline.dev/inferenceservice")
    got = list(listing)
    assert listing.resource_version == 41  # the revision the resync judges deletions by
    assert [(i["kind"], i["apiVersion"], i["metadata"]) for i in got] == [
        ("Deployment", "apps/v1", {"name": "a"}),
        ("Deployment", "apps/v1", {"name": "b"}),
    ]
    assert asked == [
        {"limit": "500", "labelSelector": "driftline.dev/inferenceservice"},
        {"limit": "500", "labelSelector": "driftline.dev/inferenceservice", "continue": "p2"},
    ]
