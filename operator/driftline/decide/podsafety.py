"""What a custom pod template may ask of the node. The operator creates training pods with its own identity, so a
template's host namespaces, hostPath volumes, privileged containers or added capabilities would reach the node for
anyone who may create a TrainingJob (or edit an InferenceService's retrain template), in a namespace without Pod
Security enforcement too. Refused for everyone unless the cluster's admin allows them (Helm values under
customPods); the admission policy refuses the same at `kubectl apply`, and this check runs again before the Job is
created, so a policy that is not installed never means "allowed". Pure: the template's pod spec in, refusals out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

HOST_NAMESPACES = "hostNamespaces"
HOST_PATH = "hostPath"
PRIVILEGED = "privileged"
ALLOWANCES = (HOST_NAMESPACES, HOST_PATH, PRIVILEGED)
"""The names the operator's DRIFTLINE_CUSTOM_POD_ALLOW takes (the chart writes it from customPods.allow*)."""

_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


@dataclass(frozen=True)
class Allowances:
    """What the cluster's admin lets custom pod templates use; the default allows none of it."""

    allow: frozenset[str] = frozenset()
    capabilities: frozenset[str] = frozenset()


def refusals(pod_spec: Mapping[str, Any], allowed: Allowances, path: str) -> list[str]:
    """Each field of `pod_spec` (found at `path`, e.g. "spec.template.spec") that asks for more than `allowed`, with
    the Helm value that would allow it. Empty when the pod may be created."""
    found: list[str] = []
    if HOST_NAMESPACES not in allowed.allow:
        found += [
            f"{path}.{field}: host namespaces are not allowed (Helm value customPods.allowHostNamespaces)"
            for field in ("hostNetwork", "hostPID", "hostIPC")
            if pod_spec.get(field) is True
        ]
    if HOST_PATH not in allowed.allow:
        found += [
            f"{path}.volumes[{i}].hostPath: hostPath volumes are not allowed (Helm value customPods.allowHostPath)"
            for i, volume in enumerate(_dicts(pod_spec.get("volumes")))
            if "hostPath" in volume
        ]
    for kind in _CONTAINER_LISTS:
        for i, container in enumerate(_dicts(pod_spec.get(kind))):
            where = f"{path}.{kind}[{i}].securityContext"
            found += _container_refusals(_dict(container.get("securityContext")), allowed, where)
    return found


def _container_refusals(sc: Mapping[str, Any], allowed: Allowances, where: str) -> list[str]:
    found: list[str] = []
    if PRIVILEGED not in allowed.allow and sc.get("privileged") is True:
        found.append(
            f"{where}.privileged: privileged containers are not allowed (Helm value customPods.allowPrivileged)"
        )
    added = [str(cap) for cap in _list(_dict(sc.get("capabilities")).get("add"))]
    extra = sorted({cap.upper().removeprefix("CAP_") for cap in added} - allowed.capabilities)
    if extra:
        found.append(
            f"{where}.capabilities.add: {', '.join(extra)} not allowed (Helm value customPods.allowedCapabilities)"
        )
    return found


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: Any) -> Sequence[Any]:
    return value if isinstance(value, list) else []


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in _list(value) if isinstance(v, Mapping)]


def parse(allow: str | None, capabilities: str | None) -> Allowances:
    """The operator's environment (comma lists) as Allowances; unknown names are ignored, as unset ones."""
    names = {a.strip() for a in (allow or "").split(",")} & set(ALLOWANCES)
    caps = {cap.strip().upper().removeprefix("CAP_") for cap in (capabilities or "").split(",") if cap.strip()}
    return Allowances(frozenset(names), frozenset(caps))
