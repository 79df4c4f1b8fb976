"""The serving Deployment and Service: deterministic, owned, restricted, zero-downtime, with the right arguments."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from driftline.api.common import PodSettings
from driftline.api.inferenceservice import InferenceServiceSpec
from driftline.decide.serving import Version
from driftline.render.common import controlled_by
from driftline.render.serving import (
    deployment,
    deployment_name,
    edited_fields,
    needs_update,
    pod_disruption_budget,
    selector_string,
    service,
    url,
)

pytestmark = pytest.mark.unit

SHA = "b" * 64
V3 = Version(3, "Production", SHA, "pvc://models/registry/m/lr-0123abcd", "m-v3")


def isvc(name: str = "bc", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "driftline.dev/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": name, "namespace": "ns", "uid": "u-1234567890"},
        "spec": {"model": "m", **spec},
    }


def render(obj: dict[str, Any], version: Version = V3, previous: int | None = 2) -> dict[str, Any]:
    return deployment(
        obj,
        InferenceServiceSpec.model_validate(obj["spec"]),
        version,
        runtime_image="driftline/runtime:9",
        previous_version=previous,
    )


def container(dep: dict[str, Any]) -> dict[str, Any]:
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    return dict(c)


def test_deployment_is_deterministic_owned_and_restricted() -> None:
    dep = render(isvc())
    assert dep == render(isvc())
    assert dep["metadata"]["name"] == "bc-stable" == deployment_name(isvc())
    owner = dep["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("InferenceService", "u-1234567890", True)
    assert controlled_by(dep, "u-1234567890") and not controlled_by(dep, "someone-else")
    pod = dep["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["seccompProfile"]
    assert pod["automountServiceAccountToken"] is False
    sc = container(dep)["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]


def test_the_server_serves_the_version_read_only_from_its_claim() -> None:
    dep = render(isvc(port=9000))
    c = container(dep)
    assert c["image"] == "driftline/runtime:9"
    assert c["args"] == [
        "serve",
        "--model-dir=/mnt/models/registry/m/lr-0123abcd",
        "--model-name=m",
        "--model-version=3",
        f"--expected-sha256={SHA}",
        "--port=9000",
        "--drain-seconds=3",
        "--termination-log=/dev/termination-log",
    ]
    assert c["ports"] == [{"name": "http", "containerPort": 9000, "protocol": "TCP"}]
    assert {"name": "models", "mountPath": "/mnt/models", "readOnly": True} in c["volumeMounts"]
    volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    assert volumes["models"]["persistentVolumeClaim"] == {"claimName": "models", "readOnly": True}
    assert volumes["tmp"] == {"name": "tmp", "emptyDir": {}}
    assert c["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert c["resources"]["requests"]


def test_labels_selector_and_a_rollout_that_never_drops_capacity() -> None:
    dep = render(isvc(replicas=3, rollout={"progressDeadlineSeconds": 120}))
    spec = dep["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    assert "driftline.dev/version" not in spec["selector"]["matchLabels"]  # the selector is immutable
    assert (labels["driftline.dev/model"], labels["driftline.dev/version"]) == ("m", "3")
    assert (labels["driftline.dev/inferenceservice"], labels["driftline.dev/track"]) == ("bc", "stable")
    assert spec["replicas"] == 3 and spec["progressDeadlineSeconds"] == 120
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    assert spec["template"]["spec"]["terminationGracePeriodSeconds"] > 3  # longer than the drain
    assert selector_string(isvc()) == "driftline.dev/inferenceservice=bc,driftline.dev/track=stable"


def test_previous_version_rides_on_the_deployment() -> None:
    assert render(isvc(), previous=2)["metadata"]["annotations"]["driftline.dev/previous-version"] == "2"
    assert "driftline.dev/previous-version" not in render(isvc(), previous=None)["metadata"]["annotations"]


def test_spec_overrides_image_resources_and_drift_window() -> None:
    resources = {"requests": {"cpu": "2"}, "limits": {"memory": "3Gi"}}
    c = container(render(isvc(image="reg/driftline/runtime:1", resources=resources)))
    assert c["image"] == "reg/driftline/runtime:1" and c["resources"] == resources
    sized = container(render(isvc(drift={"window": {"size": 500}, "minSamples": 50})))["args"]
    assert sized[-2:] == ["--drift-window-size=500", "--drift-min-samples=50"]
    timed = container(render(isvc(drift={"window": {"seconds": 600}})))["args"]
    assert "--drift-window-seconds=600" in timed and not any(a.startswith("--drift-window-size") for a in timed)


def test_a_long_name_still_gives_a_dns_label() -> None:
    name = "a" * 60
    assert len(render(isvc(name))["metadata"]["name"]) <= 63


def test_service_fronts_every_serving_pod_on_port_80() -> None:
    obj = isvc()
    svc = service(obj, InferenceServiceSpec.model_validate(obj["spec"]))
    assert svc["metadata"]["name"] == "bc" and svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    pod_labels = render(obj)["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    assert "driftline.dev/track" not in svc["spec"]["selector"]  # a canary's pods get their share of traffic
    assert svc["metadata"]["ownerReferences"][0]["uid"] == "u-1234567890"


@pytest.mark.parametrize(("protocol", "path"), [("v2", "/v2/models/m/infer"), ("v1", "/v1/models/m:predict")])
def test_url_points_at_the_predict_endpoint_of_the_protocol(protocol: str, path: str) -> None:
    obj = isvc(protocol=protocol)
    assert url(obj, InferenceServiceSpec.model_validate(obj["spec"])) == f"http://bc.ns.svc.cluster.local{path}"


def test_needs_update_only_on_a_real_difference() -> None:
    desired = render(isvc())
    live = copy.deepcopy(desired)
    live["metadata"]["resourceVersion"] = "42"
    live["status"] = {"replicas": 1}
    assert needs_update(None, desired)
    assert not needs_update(live, desired)
    assert needs_update(live, render(isvc(replicas=2)))  # the spec changed: another hash
    assert needs_update(live, render(isvc(), version=Version(4, "Production", SHA, "pvc://models/x", "m-v4")))
    scaled_by_hand = copy.deepcopy(live)
    scaled_by_hand["spec"]["replicas"] = 5
    assert needs_update(scaled_by_hand, desired)
    edited = copy.deepcopy(live)
    edited["spec"]["template"]["metadata"]["labels"]["driftline.dev/version"] = "1"
    assert needs_update(edited, desired)


def test_needs_update_on_any_field_the_operator_renders_and_on_nothing_else() -> None:
    """A person's `kubectl set image` or edit of an owned field is a difference; what the API server defaults and what
    others add (annotations, labels, env, a sidecar) is not: apply would leave it alone anyway."""
    desired = render(isvc(resources={"requests": {"cpu": "0.5", "memory": "256Mi"}, "limits": {"cpu": 1}}))
    live = copy.deepcopy(desired)
    pod = live["spec"]["template"]["spec"]
    (server,) = pod["containers"]
    server["imagePullPolicy"] = "IfNotPresent"  # defaults
    server["readinessProbe"]["httpGet"]["scheme"] = "HTTP"
    server["resources"] = {"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"cpu": "1"}}  # canonical
    pod["dnsPolicy"] = "ClusterFirst"
    live["metadata"]["annotations"]["example.com/owner"] = "team-a"  # others' fields
    live["metadata"]["labels"]["example.com/cost-center"] = "ml"
    server["env"] = [{"name": "EXAMPLE_DEBUG", "value": "1"}]
    pod["containers"].append({"name": "sidecar", "image": "example.com/sidecar:1"})
    assert not needs_update(live, desired)
    for path, value in [
        (("spec", "template", "spec", "containers", 0, "image"), "example.com/someone/server:hotfix"),
        (("spec", "template", "spec", "containers", 0, "args", 0), "serve-something-else"),
        (("spec", "template", "spec", "containers", 0, "resources", "requests", "cpu"), "600m"),
        (("spec", "template", "spec", "securityContext", "runAsNonRoot"), False),
        (("spec", "strategy", "rollingUpdate", "maxUnavailable"), 1),
        (("metadata", "labels", "driftline.dev/track"), "other"),
    ]:
        edited = copy.deepcopy(live)
        *parents, leaf = path
        target: Any = edited
        for key in parents:
            target = target[key]
        target[leaf] = value
        assert needs_update(edited, desired), path
    extra_arg = copy.deepcopy(live)
    extra_arg["spec"]["template"]["spec"]["containers"][0]["args"].append("--debug")
    assert needs_update(extra_arg, desired)  # args is one atomic list


S3 = {
    "s3": {
        "endpoint": "http://seaweedfs.storage:8333",
        "region": "eu-west-1",
        "pathStyle": True,
        "caBundle": {"name": "s3-ca", "key": "ca.pem"},
        "credentials": {
            "accessKeyId": {"name": "s3", "key": "id"},
            "secretAccessKey": {"name": "s3", "key": "secret"},
        },
    }
}
V4_S3 = Version(4, "Production", SHA, "s3://models/registry/m/lr-0123abcd", "m-v4")


def test_an_object_storage_version_is_fetched_into_the_pod_and_checked_before_the_server_starts() -> None:
    dep = render(isvc(storage=S3), V4_S3)
    pod = dep["spec"]["template"]["spec"]
    (fetch,) = pod["initContainers"]
    assert fetch["image"] == container(dep)["image"] == "driftline/runtime:9"
    assert fetch["args"] == [
        "fetch",
        "--from=s3://models/registry/m/lr-0123abcd",
        "--to=/mnt/models",
        f"--expected-sha256={SHA}",
        "--termination-log=/dev/termination-log",
    ]
    assert fetch["securityContext"] == container(dep)["securityContext"]  # restricted, read-only root
    env = {e["name"]: e for e in fetch["env"]}
    assert env["AWS_ENDPOINT_URL"]["value"] == "http://seaweedfs.storage:8333"
    assert env["AWS_REGION"]["value"] == "eu-west-1"
    assert env["DRIFTLINE_S3_PATH_STYLE"]["value"] == "true"
    assert env["AWS_CA_BUNDLE"]["value"] == "/etc/driftline/s3-ca/ca.pem"
    # The keys go by reference: the Deployment carries the Secret's name and key, never a value.
    assert env["AWS_ACCESS_KEY_ID"] == {
        "name": "AWS_ACCESS_KEY_ID",
        "valueFrom": {"secretKeyRef": {"name": "s3", "key": "id"}},
    }
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"] == {"secretKeyRef": {"name": "s3", "key": "secret"}}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["models"] == {"name": "models", "emptyDir": {}}
    assert volumes["s3-ca"]["configMap"] == {"name": "s3-ca", "items": [{"key": "ca.pem", "path": "ca.pem"}]}
    assert "--model-dir=/mnt/models" in container(dep)["args"]
    assert {"name": "models", "mountPath": "/mnt/models", "readOnly": True} in container(dep)["volumeMounts"]
    assert "env" not in container(dep)  # the server itself never reaches object storage


def test_without_storage_settings_the_fetch_uses_the_default_chain() -> None:
    fetch = render(isvc(), V4_S3)["spec"]["template"]["spec"]["initContainers"][0]
    assert "env" not in fetch  # no endpoint, no keys: AWS, with web identity / pod identity / instance profile
    assert not render(isvc())["spec"]["template"]["spec"].get("initContainers")  # a claim needs no fetch


def test_trusted_keys_reach_every_serving_pod_and_a_change_of_them_rolls_it() -> None:
    keys = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
    obj = isvc()
    spec = InferenceServiceSpec.model_validate(obj["spec"])
    plain = render(obj)
    signed = deployment(obj, spec, V3, runtime_image="driftline/runtime:9", previous_version=2, trusted_keys=keys)
    assert "env" not in container(plain)
    assert container(signed)["env"] == [{"name": "DRIFTLINE_TRUSTED_KEYS", "value": keys}]
    assert needs_update(plain, signed) and needs_update(signed, plain)


def test_a_persons_edit_of_a_rendered_field_is_named_and_their_own_fields_are_not() -> None:
    desired = render(isvc(resources={"requests": {"cpu": "500m"}}))
    live = copy.deepcopy(desired)
    assert edited_fields(live, desired) == []
    live["spec"]["replicas"] = 3  # kubectl scale
    (live_server,) = live["spec"]["template"]["spec"]["containers"]
    live_server["image"] = "example.com/hotfix:1"  # kubectl set image
    live_server["env"] = [{"name": "DEBUG", "value": "1"}]  # theirs: the operator renders no env here
    live_server["resources"]["requests"]["cpu"] = "0.5"  # the same quantity, written otherwise
    live["metadata"]["labels"]["example.com/team"] = "a"  # theirs
    assert edited_fields(live, desired) == ["spec.replicas", "spec.template.spec.containers[server].image"]
    assert needs_update(live, desired)
    # A new rendering (another spec hash) is the operator's change, not an edit to announce.
    assert edited_fields(live, render(isvc(replicas=2))) == []
    assert edited_fields(None, desired) == []
    # A container of the rendering gone altogether is named as a whole.
    del live["spec"]["template"]["spec"]["containers"][0]
    assert "spec.template.spec.containers[server]" in edited_fields(live, desired)


def test_the_pods_take_their_settings_from_the_spec_over_the_charts_defaults() -> None:
    defaults = PodSettings.model_validate(
        {
            "labels": {"team": "platform", "cost-center": "ml"},
            "imagePullSecrets": [{"name": "regcred"}],
            "nodeSelector": {"pool": "general"},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "models", "effect": "NoSchedule"}],
        }
    )
    obj = isvc(pod={"labels": {"team": "fraud"}, "annotations": {"sidecar.istio.io/inject": "false"},
                    "nodeSelector": {"pool": "gpu"}, "priorityClassName": "models-high"})  # fmt: skip
    spec = InferenceServiceSpec.model_validate(obj["spec"])
    dep = deployment(obj, spec, V3, runtime_image="driftline/runtime:9", previous_version=None, pod_defaults=defaults)
    template = dep["spec"]["template"]
    assert template["metadata"]["labels"]["team"] == "fraud" and template["metadata"]["labels"]["cost-center"] == "ml"
    assert template["metadata"]["labels"]["driftline.dev/version"] == "3"  # the operator's own stay
    assert template["metadata"]["annotations"]["sidecar.istio.io/inject"] == "false"
    assert template["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    pod = template["spec"]
    assert pod["nodeSelector"] == {"pool": "gpu"} and pod["priorityClassName"] == "models-high"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}] and pod["tolerations"][0]["key"] == "dedicated"
    assert pod["securityContext"]["runAsNonRoot"] is True  # restricted as ever
    plain = render(isvc())["spec"]["template"]["spec"]
    assert not {"nodeSelector", "imagePullSecrets", "tolerations", "affinity", "priorityClassName"} & set(plain)


def test_the_operators_labels_cannot_be_taken_over() -> None:
    with pytest.raises(ValueError, match=r"labels under driftline\.dev/ are the operator's own"):
        PodSettings.model_validate({"labels": {"driftline.dev/version": "9"}})


def test_more_than_one_replica_gets_a_disruption_budget_of_one_stable_pod() -> None:
    obj = isvc(replicas=3)
    pdb = pod_disruption_budget(obj, InferenceServiceSpec.model_validate(obj["spec"]))
    assert pdb is not None and (pdb["apiVersion"], pdb["kind"]) == ("policy/v1", "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == render(obj)["spec"]["selector"]["matchLabels"]  # stable pods
    assert controlled_by(pdb, "u-1234567890")
    one = isvc(replicas=1)
    assert pod_disruption_budget(one, InferenceServiceSpec.model_validate(one["spec"])) is None


def test_a_version_serves_with_the_image_that_trained_it_unless_the_service_names_one() -> None:
    trained = Version(3, "Production", "c" * 64, "pvc://models/m/3", "m-v3", image="driftline/runtime:0.1.0")
    assert container(render(isvc(), trained))["image"] == "driftline/runtime:0.1.0"  # not the operator's :9
    assert container(render(isvc(), V3))["image"] == "driftline/runtime:9"  # a version that does not say
    assert container(render(isvc(image="registry.example/rt:2"), trained))["image"] == "registry.example/rt:2"


def test_batching_flags_only_when_asked_and_the_server_takes_them() -> None:
    from driftline_runtime.server.main import parse_args  # the runtime image's own parser: the flags must agree

    plain = container(render(isvc()))["args"]
    assert not any(a.startswith("--batch") for a in plain)  # no new flag: no restart of the pods of an upgrade
    asked = container(render(isvc(batching={"maxRows": 64, "maxWait": "5ms"})))["args"]
    assert "--batch-max-rows=64" in asked and "--batch-max-wait-seconds=0.005" in asked
    parsed = parse_args(asked[1:])
    assert (parsed.batch_max_rows, parsed.batch_max_wait_seconds) == (64, 0.005)
    off = container(render(isvc(batching={"maxRows": 0})))["args"]
    assert parse_args(off[1:]).batch_max_rows == 0
