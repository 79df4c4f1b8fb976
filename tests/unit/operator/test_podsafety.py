"""What a custom pod template may ask of the node: refused for everyone unless the cluster's admin allows it."""

from __future__ import annotations

from typing import Any

import pytest

from driftline.api import constants as c
from driftline.api.trainingjob import TrainingJobSpec
from driftline.decide import podsafety, training

pytestmark = pytest.mark.unit

PATH = "spec.template.spec"
NONE = podsafety.Allowances()


def _pod(**fields: Any) -> dict[str, Any]:
    return {"containers": [{"name": "train", "image": "trainer:1"}], **fields}


def test_a_plain_pod_is_allowed() -> None:
    pod = _pod(
        securityContext={"runAsNonRoot": True},
        volumes=[{"name": "scratch", "emptyDir": {}}, {"name": "data", "persistentVolumeClaim": {"claimName": "d"}}],
    )
    pod["containers"][0]["securityContext"] = {"privileged": False, "capabilities": {"drop": ["ALL"]}}
    assert podsafety.refusals(pod, NONE, PATH) == []


@pytest.mark.parametrize("field", ["hostNetwork", "hostPID", "hostIPC"])
def test_host_namespaces_are_refused_naming_the_field(field: str) -> None:
    (found,) = podsafety.refusals(_pod(**{field: True}), NONE, PATH)
    assert found.startswith(f"{PATH}.{field}: host namespaces are not allowed")
    assert "customPods.allowHostNamespaces" in found
    assert podsafety.refusals(_pod(**{field: False}), NONE, PATH) == []


def test_host_path_volumes_are_refused_by_index() -> None:
    pod = _pod(volumes=[{"name": "ok", "emptyDir": {}}, {"name": "root", "hostPath": {"path": "/"}}])
    assert podsafety.refusals(pod, NONE, PATH) == [
        f"{PATH}.volumes[1].hostPath: hostPath volumes are not allowed (Helm value customPods.allowHostPath)"
    ]


def test_privileged_and_added_capabilities_in_any_container_list() -> None:
    pod = _pod(initContainers=[{"name": "init", "image": "i", "securityContext": {"privileged": True}}])
    pod["containers"].append(
        {"name": "side", "image": "s", "securityContext": {"capabilities": {"add": ["cap_sys_admin", "NET_ADMIN"]}}}
    )
    assert podsafety.refusals(pod, NONE, PATH) == [
        f"{PATH}.initContainers[0].securityContext.privileged: privileged containers are not allowed "
        "(Helm value customPods.allowPrivileged)",
        f"{PATH}.containers[1].securityContext.capabilities.add: NET_ADMIN, SYS_ADMIN not allowed "
        "(Helm value customPods.allowedCapabilities)",
    ]


def test_what_the_admin_allows_passes() -> None:
    pod = _pod(hostNetwork=True, volumes=[{"name": "root", "hostPath": {"path": "/data"}}])
    pod["containers"][0]["securityContext"] = {"privileged": True, "capabilities": {"add": ["NET_ADMIN", "SYS_TIME"]}}
    allowed = podsafety.parse("hostNamespaces, hostPath,privileged,bogus", "net_admin,CAP_SYS_TIME")
    assert allowed == podsafety.Allowances(
        frozenset({"hostNamespaces", "hostPath", "privileged"}), frozenset({"NET_ADMIN", "SYS_TIME"})
    )
    assert podsafety.refusals(pod, allowed, PATH) == []
    only_net = podsafety.parse(None, "NET_ADMIN")
    assert [r.split(":")[0] for r in podsafety.refusals(pod, only_net, PATH)] == [
        f"{PATH}.hostNetwork",
        f"{PATH}.volumes[0].hostPath",
        f"{PATH}.containers[0].securityContext.privileged",
        f"{PATH}.containers[0].securityContext.capabilities.add",
    ]


def test_malformed_fields_are_not_a_crash() -> None:
    pod = {"containers": ["x", {"securityContext": "y"}], "volumes": "z", "hostPID": "yes"}
    assert podsafety.refusals(pod, NONE, PATH) == []


def test_the_trainingjob_refusal_names_reason_and_every_field() -> None:
    raw = {
        "dataset": {"uri": "pvc://data/d.csv", "target": "y"},
        "output": {"storageUri": "pvc://models/m"},
        "model": "m",
        "template": {"spec": _pod(hostPID=True, volumes=[{"name": "r", "hostPath": {"path": "/"}}])},
    }
    spec = TrainingJobSpec.model_validate(raw)
    reason, message = training.refusal(spec, raw, ("sklearn.",), NONE) or ("", "")
    assert reason == c.Reason.POD_NOT_ALLOWED
    assert f"{PATH}.hostPID" in message and f"{PATH}.volumes[0].hostPath" in message
    raw["template"] = {"spec": _pod()}
    assert training.refusal(TrainingJobSpec.model_validate(raw), raw, ("sklearn.",), NONE) is None
