"""Get, list, create and patch the objects Driftline owns or reads, with errors mapped for level-based handlers."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import kopf

from driftline.api.base import StatusModel, unknown_fields
from driftline.api.constants import (
    FIELD_MANAGER,
    GROUP,
    INFERENCE_SERVICE,
    MODEL_VERSION,
    TRAINING_JOB,
    VERSION,
    KindNames,
)
from driftline.api.inferenceservice import InferenceServiceStatus
from driftline.api.modelversion import ModelVersionStatus
from driftline.api.trainingjob import TrainingJobStatus
from driftline.k8s.cache import VIEW
from driftline.k8s.client import APPLY_PATCH, MERGE_PATCH, ApiError, request

T = TypeVar("T")


class AlreadyExists(RuntimeError):
    pass


class Conflict(RuntimeError):
    """The object changed since it was read (resourceVersion precondition failed)."""


RETRY_DELAY = 5.0
"""Seconds before a retry after a temporary failure, unless the API server asked for another wait."""
MAX_RETRY_DELAY = 60.0


def _retry_delay(retry_after: float | None) -> float:
    """The wait before retrying: what the API server asked (Retry-After), within 1..60 s, else RETRY_DELAY."""
    return RETRY_DELAY if retry_after is None else min(max(retry_after, 1.0), MAX_RETRY_DELAY)


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    try:
        yield
    except ApiError as e:
        if e.status == 409:  # by the Status reason, not its wording: AlreadyExists on create, else a conflict
            if e.status_reason == "AlreadyExists":
                raise AlreadyExists(str(e.reason)) from e
            raise Conflict(str(e.reason)) from e
        if e.status == 0:  # refused, reset or timed out, as while the API server restarts
            raise kopf.TemporaryError(f"API server unreachable: {e.reason}", delay=RETRY_DELAY) from e
        if e.status in (401, 429, 500, 502, 503, 504):  # 401: expired credentials, until kopf's next login
            delay = _retry_delay(e.retry_after)
            raise kopf.TemporaryError(
                f"API server: {e.status} {e.reason}, retrying in {delay:.0f}s", delay=delay
            ) from e
        raise


def _or_none(call: Callable[[], T]) -> T | None:
    try:
        with _mapped():
            return call()
    except ApiError as e:
        if e.status == 404:
            return None
        raise


# -- Driftline's custom resources ---------------------------------------------------------------------------------


_STATUS_MODELS: dict[str, type[StatusModel]] = {
    TRAINING_JOB.kind: TrainingJobStatus,
    MODEL_VERSION.kind: ModelVersionStatus,
    INFERENCE_SERVICE.kind: InferenceServiceStatus,
}


def _path(kind: KindNames, namespace: str, name: str = "") -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{kind.plural}" + (f"/{name}" if name else "")


def get(kind: KindNames, namespace: str, name: str) -> dict[str, Any] | None:
    return _or_none(lambda: request("GET", _path(kind, namespace, name)))


def list_(
    kind: KindNames, namespace: str, labels: dict[str, str] | None = None, fields: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """`fields`: a field selector on the CRD's selectableFields (spec.model), so the API server sends only those
    objects, not a namespace's thousands. An API server older than selectable CRD fields (1.31) refuses it with 400:
    the caller filters the whole list itself, as it always does anyway."""
    query = {"labelSelector": ",".join(f"{k}={v}" for k, v in (labels or {}).items())}
    field_selector = ",".join(f"{k}={v}" for k, v in (fields or {}).items())
    with _mapped():
        try:
            out = request("GET", _path(kind, namespace), query={**query, "fieldSelector": field_selector})
        except ApiError as e:
            if e.status != 400 or not field_selector:
                raise
            out = request("GET", _path(kind, namespace), query=query)
    return list(out.get("items", []))


PAGE = 500
"""Objects per page of a listing: 10,000 versions in one response are 30 MB of JSON decoded at once."""


class Listing:
    """Every object at a path, a page at a time, each with its kind and apiVersion and without its managedFields
    (nothing reads them). Once iterated, `resource_version` is the snapshot the pages were read at (every page of a
    paged list comes from the first page's snapshot)."""

    def __init__(self, path: str, labels: str = "") -> None:
        self.path, self.labels = path, labels
        self.resource_version = 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        token = ""
        while True:
            query = {"limit": str(PAGE), "labelSelector": self.labels, "continue": token}
            with _mapped():
                out = request("GET", self.path, query={k: v for k, v in query.items() if v})
            meta = out.get("metadata") or {}
            if not token and str(meta.get("resourceVersion") or "").isdigit():
                self.resource_version = int(meta["resourceVersion"])
            # A list's items carry no kind and apiVersion of their own (a GET's and a watch event's object do):
            # given the list's, so an object from a listing compares equal to the same object read any other way.
            kind, api_version = str(out.get("kind") or "").removesuffix("List"), out.get("apiVersion")
            for item in out.get("items") or []:
                (item.get("metadata") or {}).pop("managedFields", None)
                item.setdefault("kind", kind)
                item.setdefault("apiVersion", api_version)
                yield item
            token = str(meta.get("continue") or "")
            if not token:
                return


def all_of(kind: KindNames, namespace: str, labels: str = "") -> Listing:
    """Every object of a custom kind in `namespace`, in pages."""
    return Listing(_path(kind, namespace), labels)


def all_deployments(namespace: str, labels: str) -> Listing:
    return Listing(f"/apis/apps/v1/namespaces/{namespace}/deployments", labels)


def all_services(namespace: str, labels: str) -> Listing:
    return Listing(f"/api/v1/namespaces/{namespace}/services", labels)


def all_pdbs(namespace: str, labels: str) -> Listing:
    return Listing(f"/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets", labels)


def create(kind: KindNames, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    with _mapped():
        created = request("POST", _path(kind, namespace), body=body)
    VIEW.wrote(created)
    return created


def patch_status(
    kind: KindNames, namespace: str, name: str, status: dict[str, Any], resource_version: str | None = None
) -> dict[str, Any] | None:
    """A JSON merge patch of the status subresource; with resource_version, only if nothing changed since the read.
    A key the kind's status has no field for is refused here: the API server would drop it without a word."""
    unknown = unknown_fields(_STATUS_MODELS[kind.kind], status, "status")
    if unknown:
        raise ValueError(
            f"{kind.kind} {namespace}/{name}: {', '.join(unknown)}: no such field, the write would be lost"
        )
    body: dict[str, Any] = {"status": status}
    if resource_version:
        body["metadata"] = {"resourceVersion": resource_version}
    path = _path(kind, namespace, name) + "/status"
    written = _or_none(lambda: request("PATCH", path, body=body, content_type=MERGE_PATCH))
    VIEW.wrote(written)
    return written


# -- batch Jobs and pods ---------------------------------------------------------------------------------------------


def _job(namespace: str, name: str = "") -> str:
    return f"/apis/batch/v1/namespaces/{namespace}/jobs" + (f"/{name}" if name else "")


def get_job(namespace: str, name: str) -> dict[str, Any] | None:
    return _or_none(lambda: request("GET", _job(namespace, name)))


def create_job(body: dict[str, Any]) -> dict[str, Any]:
    with _mapped():
        return request("POST", _job(body["metadata"]["namespace"]), body=body)


def patch_job(namespace: str, name: str, patch: dict[str, Any]) -> None:
    _or_none(lambda: request("PATCH", _job(namespace, name), body=patch, content_type=MERGE_PATCH))


def create_config_map(body: dict[str, Any]) -> dict[str, Any]:
    with _mapped():
        return request("POST", f"/api/v1/namespaces/{body['metadata']['namespace']}/configmaps", body=body)


def list_pods(namespace: str, selector: str) -> list[dict[str, Any]]:
    with _mapped():
        pods = request("GET", f"/api/v1/namespaces/{namespace}/pods", query={"labelSelector": selector})
    return list(pods["items"])


def list_pod_events(namespace: str, pod: str) -> list[dict[str, Any]]:
    """The Events about one pod, oldest first (read for a pod stuck creating: why a volume does not attach)."""
    with _mapped():
        out = request(
            "GET",
            f"/api/v1/namespaces/{namespace}/events",
            query={"fieldSelector": f"involvedObject.kind=Pod,involvedObject.name={pod}"},
        )
    items = list(out.get("items", []))
    return sorted(items, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))


# -- apps/v1 Deployments and core/v1 Services ------------------------------------------------------------------------
# Written by server-side apply under the operator's field manager: the rendered manifest is the whole truth of the
# fields the operator owns, so a field it stops rendering is removed, and fields others own are left alone.


def _deployment(namespace: str, name: str) -> str:
    return f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"


def _service(namespace: str, name: str) -> str:
    return f"/api/v1/namespaces/{namespace}/services/{name}"


def _apply(path: str, body: dict[str, Any]) -> dict[str, Any]:
    """Create or update by server-side apply (force: the operator owns what it renders)."""
    with _mapped():
        applied = request(
            "PATCH", path, query={"fieldManager": FIELD_MANAGER, "force": "true"}, body=body, content_type=APPLY_PATCH
        )
    VIEW.wrote(applied)
    return applied


def get_deployment(namespace: str, name: str) -> dict[str, Any] | None:
    """Read only where the operator's view holds no object of the name: a name someone else's object may hold."""
    return _or_none(lambda: request("GET", _deployment(namespace, name)))


def apply_deployment(body: dict[str, Any]) -> dict[str, Any]:
    return _apply(_deployment(body["metadata"]["namespace"], body["metadata"]["name"]), body)


def delete_deployment(namespace: str, name: str) -> None:
    """Idempotent: an absent Deployment is already deleted. Its pods go with it (background propagation)."""
    _or_none(lambda: request("DELETE", _deployment(namespace, name), query={"propagationPolicy": "Background"}))
    VIEW.deleted("Deployment", namespace, name)


def get_service(namespace: str, name: str) -> dict[str, Any] | None:
    """Read only where the operator's view holds no object of the name: a name someone else's object may hold."""
    return _or_none(lambda: request("GET", _service(namespace, name)))


def apply_service(body: dict[str, Any]) -> dict[str, Any]:
    return _apply(_service(body["metadata"]["namespace"], body["metadata"]["name"]), body)


def _pdb(namespace: str, name: str) -> str:
    return f"/apis/policy/v1/namespaces/{namespace}/poddisruptionbudgets/{name}"


def get_pdb(namespace: str, name: str) -> dict[str, Any] | None:
    """Read only where the operator's view holds no object of the name: a name someone else's object may hold."""
    return _or_none(lambda: request("GET", _pdb(namespace, name)))


def apply_pdb(body: dict[str, Any]) -> dict[str, Any]:
    return _apply(_pdb(body["metadata"]["namespace"], body["metadata"]["name"]), body)


def delete_pdb(namespace: str, name: str) -> None:
    """Idempotent: an absent budget is already deleted."""
    _or_none(lambda: request("DELETE", _pdb(namespace, name)))
    VIEW.deleted("PodDisruptionBudget", namespace, name)
