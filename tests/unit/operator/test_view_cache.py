"""The operator's view of the cluster (k8s/cache.py): what the watches and its own writes leave in it, in the orders
the API server may deliver them."""

from __future__ import annotations

from typing import Any

import pytest

from driftline.api import constants as c
from driftline.decide import serving
from driftline.k8s import cache

pytestmark = pytest.mark.unit


def _obj(kind: str, name: str, rv: int, uid: str = "u1", ns: str = "ml", **extra: Any) -> dict[str, Any]:
    labels = extra.pop("labels", {})
    meta = {"name": name, "namespace": ns, "uid": uid, "resourceVersion": str(rv), "labels": labels}
    return {"kind": kind, "metadata": meta, **extra}


def _isvc(name: str, rv: int, model: str = "iris", uid: str = "u1", **status: Any) -> dict[str, Any]:
    return _obj("InferenceService", name, rv, uid, spec={"model": model}, status=status)


def _mv(name: str, version: int, rv: int, stage: str | None = "Candidate", uid: str = "") -> dict[str, Any]:
    artifact = {"storageUri": f"pvc://m/iris/v{version}", "sha256": "ab"}
    return _obj(
        "ModelVersion",
        name,
        rv,
        uid or name,
        spec={"model": "iris", "version": version, "artifact": artifact},
        status={"stage": stage} if stage else {},
    )


def test_the_newer_version_of_an_object_wins_whatever_the_order() -> None:
    view = cache.Cache()
    view.wrote(_isvc("svc", 12, phase="Ready"))  # the answer to the operator's own status write
    view.services.put(_isvc("svc", 11, phase="Progressing"))  # the watch event of the change before it, late
    held = view.services.get("ml", "svc")
    assert held is not None and held["status"]["phase"] == "Ready"
    view.services.put(_isvc("svc", 13, phase="Degraded"))
    held = view.services.get("ml", "svc")
    assert held is not None and held["status"]["phase"] == "Degraded"


def test_a_deleted_object_is_not_brought_back_by_an_older_listing_but_a_new_one_of_the_name_is_held() -> None:
    view = cache.Cache()
    view.services.put(_isvc("svc", 5))
    view.services.delete(_isvc("svc", 6))
    assert view.services.get("ml", "svc") is None
    view.services.put(_isvc("svc", 5))  # a listing made before the deletion, read after it
    assert view.services.get("ml", "svc") is None
    assert view.services.in_group("ml", "iris") == []
    view.services.put(_isvc("svc", 7, uid="u2"))  # created again: another object
    assert view.services.get("ml", "svc") is not None


def test_a_reader_gets_its_own_copy() -> None:
    view = cache.Cache()
    view.services.put(_isvc("svc", 1, phase="Ready"))
    first = view.services.get("ml", "svc")
    assert first is not None
    first["status"]["phase"] = "changed by a reader"
    again = view.services.get("ml", "svc")
    assert again is not None and again["status"]["phase"] == "Ready"


def test_managed_fields_are_not_held() -> None:
    view = cache.Cache()
    obj = _isvc("svc", 1)
    obj["metadata"]["managedFields"] = [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]
    view.services.put(obj)
    held = view.services.get("ml", "svc")
    assert held is not None and "managedFields" not in held["metadata"]


def test_services_are_found_by_their_model_as_it_changes() -> None:
    view = cache.Cache()
    view.services.put(_isvc("a", 1, model="iris"))
    view.services.put(_isvc("b", 1, model="iris", uid="u2"))
    assert view.services.in_group("ml", "iris") == ["a", "b"]
    view.services.put(_isvc("b", 2, model="wine", uid="u2"))
    assert view.services.in_group("ml", "iris") == ["a"]
    assert view.services.in_group("ml", "wine") == ["b"]
    assert view.services.in_group("other", "iris") == []


def test_versions_are_held_as_what_serving_reads_newest_state_first_come() -> None:
    view = cache.Cache()
    view.versions.put(_mv("iris-v2", 2, rv=10, stage="Candidate"))
    view.versions.put(_mv("iris-v1", 1, rv=9, stage="Production"))
    view.wrote(_mv("iris-v2", 2, rv=12, stage="Production"))
    view.versions.put(_mv("iris-v2", 2, rv=10, stage="Candidate"))  # an older event after the write's answer
    held = view.versions.of("ml", "iris")
    assert [(v.version, v.stage) for v in held] == [(1, "Production"), (2, "Production")]
    assert held[1] == serving.version_of(_mv("iris-v2", 2, rv=12, stage="Production"))
    view.versions.delete(_mv("iris-v1", 1, rv=13))
    assert [v.name for v in view.versions.of("ml", "iris")] == ["iris-v2"]
    assert view.versions.of("ml", "wine") == []


def test_a_version_no_schema_would_admit_is_left_out() -> None:
    view = cache.Cache()
    broken = _mv("iris-v1", 1, rv=1)
    broken["spec"]["version"] = "one"
    view.versions.put(broken)
    assert view.versions.of("ml", "iris") == []


def test_only_the_services_own_children_are_held_from_write_answers() -> None:
    view = cache.Cache()
    owned = {c.LABEL_INFERENCE_SERVICE: "svc"}
    view.wrote(_obj("Deployment", "svc-stable", 1, labels=owned, spec={"replicas": 1}))
    view.wrote(_obj("Deployment", "someone-elses", 1, uid="u9", spec={"replicas": 1}))
    view.wrote(_obj("TrainingJob", "svc-retrain-1", 1, uid="u3", labels=owned))
    assert view.deployments.get("ml", "svc-stable") is not None
    assert view.deployments.get("ml", "someone-elses") is None
    assert view.retrains.in_group("ml", "svc") == ["svc-retrain-1"]
    view.deleted("Deployment", "ml", "svc-stable")
    assert view.deployments.get("ml", "svc-stable") is None


def test_a_namespace_is_primed_once_and_again_after_a_failed_listing() -> None:
    view = cache.Cache()
    calls: list[str] = []

    def failing() -> list[dict[str, Any]]:
        calls.append("failing")
        raise RuntimeError("the API server went away")

    with pytest.raises(RuntimeError):
        view.prime("ml", [(view.services, failing)])
    assert not view.primed("ml")

    def listing() -> list[dict[str, Any]]:
        calls.append("listing")
        return [_isvc("svc", 3)]

    view.services.put(_isvc("svc", 4, phase="Ready"))  # a watch event before the listing's answer
    view.prime("ml", [(view.services, listing)])
    view.prime("ml", [(view.services, listing)])
    assert calls == ["failing", "listing"]
    held = view.services.get("ml", "svc")
    assert held is not None and held["status"]["phase"] == "Ready", "the listing was older than the event"


def test_deleted_uids_are_remembered_only_so_long() -> None:
    gone = cache._Gone(keep=2)
    for uid in ("a", "b", "c"):
        gone.add(uid)
    assert "a" not in gone and "b" in gone and "c" in gone


def test_a_resource_version_that_is_not_a_number_reads_as_zero() -> None:
    assert cache.resource_version({"metadata": {"resourceVersion": "123"}}) == 123
    assert cache.resource_version({"metadata": {"resourceVersion": "abc"}}) == 0
    assert cache.resource_version({}) == 0


class _Listed:
    """A listing read at revision `snapshot` (k8s.objects.Listing's shape)."""

    def __init__(self, items: list[dict[str, Any]], snapshot: int) -> None:
        self.items, self.resource_version, self._snapshot = items, 0, snapshot

    def __iter__(self) -> Any:
        self.resource_version = self._snapshot
        return iter(self.items)


def test_a_resync_drops_what_was_deleted_unseen_and_keeps_what_is_newer_than_its_listing() -> None:
    view = cache.Cache()
    owned = {"labels": {c.LABEL_INFERENCE_SERVICE: "svc"}}
    view.deployments.put(_obj("Deployment", "svc-v1", 10, uid="d1", **owned))  # deleted while no watch was there
    view.deployments.put(_obj("Deployment", "svc-v2", 30, uid="d2", **owned))  # created after the listing's snapshot
    view.deployments.put(_obj("Deployment", "other", 11, uid="d3", ns="elsewhere", **owned))  # another namespace
    view.versions.put(_mv("iris-v1", 1, 12))
    view.versions.put(_mv("iris-v2", 2, 13))
    still = _obj("Deployment", "svc-v3", 14, uid="d4", **owned)
    dropped = view.resync(
        "ml",
        [
            (view.deployments, lambda: _Listed([still], snapshot=20)),
            (view.versions, lambda: _Listed([_mv("iris-v2", 2, 13)], snapshot=20)),
        ],
    )
    assert [o["metadata"]["name"] for o in dropped.objects] == ["svc-v1"] and dropped.models == ["iris"]
    assert view.deployments.get("ml", "svc-v1") is None
    assert view.deployments.get("ml", "svc-v2") is not None and view.deployments.get("ml", "svc-v3") is not None
    assert view.deployments.get("elsewhere", "other") is not None
    assert [v.name for v in view.versions.of("ml", "iris")] == ["iris-v2"]
    # The dropped uid is gone for good: a late watch event or listing from before the deletion does not bring it back.
    view.deployments.put(_obj("Deployment", "svc-v1", 10, uid="d1", **owned))
    assert view.deployments.get("ml", "svc-v1") is None


def test_a_listing_with_no_snapshot_drops_nothing() -> None:
    view = cache.Cache()
    view.services.put(_isvc("svc", 5))
    dropped = view.resync("ml", [(view.services, lambda: _Listed([], snapshot=0))])
    assert dropped.objects == [] and view.services.get("ml", "svc") is not None


def test_what_is_held_of_an_object_is_known_without_decoding_it() -> None:
    """A monitor's daemon keeps its decoded service while the view holds the same uid and resourceVersion."""
    view = cache.Cache()
    assert view.services.version("ml", "svc") is None
    view.services.put(_isvc("svc", 5))
    assert view.services.version("ml", "svc") == ("u1", 5)
    view.services.put(_isvc("svc", 4))  # older: not held, so the version does not move
    assert view.services.version("ml", "svc") == ("u1", 5)
    view.services.put(_isvc("svc", 9))
    assert view.services.version("ml", "svc") == ("u1", 9)
    view.services.delete(_isvc("svc", 10))
    view.services.put(_isvc("svc", 11, uid="u2"))  # made again: another uid, whatever its resourceVersion
    assert view.services.version("ml", "svc") == ("u2", 11)
