"""Get, list, create and patch the objects Driftline owns or reads, with errors mapped for level-based handlers."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

import kopf
from kubernetes.client.exceptions import ApiException

from driftline.api.constants import FIELD_MANAGER, GROUP, VERSION, KindNames
from driftline.k8s import client

T = TypeVar("T")


class AlreadyExists(RuntimeError):
    pass


class Conflict(RuntimeError):
    """The object changed since it was read (resourceVersion precondition failed)."""


@contextlib.contextmanager
def _mapped() -> Iterator[None]:
    try:
        yield
    except ApiException as e:
        if e.status == 409:
            if "AlreadyExists" in (e.body or "") or "already exists" in (e.body or ""):
                raise AlreadyExists(str(e.reason)) from e
            raise Conflict(str(e.reason)) from e
        if e.status in (429, 500, 502, 503, 504) or e.status == 0:
            raise kopf.TemporaryError(f"API server: {e.status} {e.reason}", delay=5) from e
        raise
    except OSError as e:  # connection refused / reset while the API server restarts
        raise kopf.TemporaryError(f"API server unreachable: {e}", delay=5) from e


def _or_none(call: Callable[[], T]) -> T | None:
    try:
        with _mapped():
            return call()
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def _json(response: Any) -> dict[str, Any]:
    """The API server's own JSON, read with `_preload_content=False`: no round trip through the typed models, which
    costs CPU and rewrites every timestamp (2026-01-02T03:04:05+00:00 for the API's ...05Z), so an object read here
    and the same object from a watch event would compare unequal."""
    return cast(dict[str, Any], json.loads(response.data))


# -- Driftline's custom resources ---------------------------------------------------------------------------------


def get(kind: KindNames, namespace: str, name: str) -> dict[str, Any] | None:
    found = _or_none(lambda: client.custom().get_namespaced_custom_object(GROUP, VERSION, namespace, kind.plural, name))
    return None if found is None else cast(dict[str, Any], found)


def list_(
    kind: KindNames, namespace: str, labels: dict[str, str] | None = None, fields: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """`fields`: a field selector on the CRD's selectableFields (spec.model), so the API server sends only those
    objects, not a namespace's thousands. An API server older than selectable CRD fields (1.31) refuses it with 400:
    the caller filters the whole list itself, as it always does anyway."""
    selector = ",".join(f"{k}={v}" for k, v in (labels or {}).items())
    field_selector = ",".join(f"{k}={v}" for k, v in (fields or {}).items())
    api = client.custom()
    with _mapped():
        try:
            out = api.list_namespaced_custom_object(
                GROUP, VERSION, namespace, kind.plural, label_selector=selector, field_selector=field_selector
            )
        except ApiException as e:
            if e.status != 400 or not field_selector:
                raise
            out = api.list_namespaced_custom_object(GROUP, VERSION, namespace, kind.plural, label_selector=selector)
    return list(cast(dict[str, Any], out).get("items", []))


def create(kind: KindNames, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    with _mapped():
        created = client.custom().create_namespaced_custom_object(GROUP, VERSION, namespace, kind.plural, body)
    return cast(dict[str, Any], created)


def patch_status(
    kind: KindNames, namespace: str, name: str, status: dict[str, Any], resource_version: str | None = None
) -> dict[str, Any] | None:
    """A JSON merge patch of the status subresource; with resource_version, only if nothing changed since the read."""
    body: dict[str, Any] = {"status": status}
    if resource_version:
        body["metadata"] = {"resourceVersion": resource_version}
    out = _or_none(
        lambda: client.custom().patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, kind.plural, name, body
        )
    )
    return None if out is None else cast(dict[str, Any], out)


# -- batch Jobs and pods ---------------------------------------------------------------------------------------------


def get_job(namespace: str, name: str) -> dict[str, Any] | None:
    job = _or_none(lambda: client.batch().read_namespaced_job(name, namespace, _preload_content=False))
    return None if job is None else _json(job)


def create_job(body: dict[str, Any]) -> dict[str, Any]:
    with _mapped():
        created = client.batch().create_namespaced_job(
            body["metadata"]["namespace"],
            body,  # type: ignore[arg-type]
            _preload_content=False,
        )
    return _json(created)


def patch_job(namespace: str, name: str, patch: dict[str, Any]) -> None:
    _or_none(lambda: client.batch().patch_namespaced_job(name, namespace, patch))


def list_pods(namespace: str, selector: str) -> list[dict[str, Any]]:
    with _mapped():
        pods = client.core().list_namespaced_pod(namespace, label_selector=selector, _preload_content=False)
    return list(_json(pods)["items"])


# -- apps/v1 Deployments and core/v1 Services ------------------------------------------------------------------------
# Written by server-side apply under the operator's field manager: the rendered manifest is the whole truth of the
# fields the operator owns, so a field it stops rendering is removed, and fields others own are left alone.

_APPLY = "application/apply-patch+yaml"


def get_deployment(namespace: str, name: str) -> dict[str, Any] | None:
    dep = _or_none(lambda: client.apps().read_namespaced_deployment(name, namespace, _preload_content=False))
    return None if dep is None else _json(dep)


def _apply(patch: Callable[..., Any], body: dict[str, Any]) -> dict[str, Any]:
    """Create or update by server-side apply (force: the operator owns what it renders)."""
    meta = body["metadata"]
    with _mapped():
        out = patch(
            meta["name"],
            meta["namespace"],
            body,
            field_manager=FIELD_MANAGER,
            force=True,
            _content_type=_APPLY,
            _preload_content=False,
        )
    return _json(out)


def apply_deployment(body: dict[str, Any]) -> dict[str, Any]:
    return _apply(client.apps().patch_namespaced_deployment, body)


def delete_deployment(namespace: str, name: str) -> None:
    """Idempotent: an absent Deployment is already deleted. Its pods go with it (background propagation)."""
    _or_none(lambda: client.apps().delete_namespaced_deployment(name, namespace, propagation_policy="Background"))


def get_service(namespace: str, name: str) -> dict[str, Any] | None:
    svc = _or_none(lambda: client.core().read_namespaced_service(name, namespace, _preload_content=False))
    return None if svc is None else _json(svc)


def apply_service(body: dict[str, Any]) -> dict[str, Any]:
    return _apply(client.core().patch_namespaced_service, body)
