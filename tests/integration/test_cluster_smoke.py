"""The local control plane, driven through the real controllers: Jobs, Deployments, garbage collection, volumes."""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import Cluster
from tests.pods import RESTRICTED_CONTAINER, RUNTIME_IMAGE, python_container

pytestmark = pytest.mark.integration

POD_SECURITY: dict[str, Any] = {"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}}


def job(name: str, code: str, backoff: int = 0, **container: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": backoff,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    **POD_SECURITY,
                    "containers": [python_container("main", code, **container)],
                }
            },
        },
    }


def pods_of(cluster: Cluster, ns: str, selector: str) -> list[dict[str, Any]]:
    return list(cluster.api.get(f"/api/v1/namespaces/{ns}/pods", labelSelector=selector)["items"])


def job_condition(cluster: Cluster, ns: str, name: str, ctype: str) -> bool:
    j = cluster.api.get(f"/apis/batch/v1/namespaces/{ns}/jobs/{name}")
    return any(c["type"] == ctype and c["status"] == "True" for c in j.get("status", {}).get("conditions", []))


def test_kubectl_sees_node_and_pods(cluster: Cluster) -> None:
    out = cluster.kubectl("get", "nodes,pods", "-A", "-o", "wide").stdout
    assert "driftline-local-1" in out and "driftline-local-2" in out and "Ready" in out
    version = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == binaries_version()


def binaries_version() -> str:
    from driftline.devcluster.binaries import versions

    return versions()["KUBERNETES_VERSION"]


def test_job_with_python_command_completes_with_termination_message(cluster: Cluster, namespace: str) -> None:
    code = "import os; print('hello'); open(os.environ['MSG_FILE'], 'w').write('trained: 42')"
    env = [{"name": "MSG_FILE", "value": "/dev/termination-log"}]
    cluster.api.create(f"/apis/batch/v1/namespaces/{namespace}/jobs", job("ok", code, env=env))
    cluster.wait_for("job Complete", lambda: job_condition(cluster, namespace, "ok", "Complete"))
    (pod,) = pods_of(cluster, namespace, "job-name=ok")
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 0 and terminated["reason"] == "Completed"
    assert terminated["message"] == "trained: 42"
    assert pod["status"]["phase"] == "Succeeded"
    assert pod["status"]["podIP"].startswith("127.")


def test_failing_job_with_backoff_limit_1_fails_after_two_pods(cluster: Cluster, namespace: str) -> None:
    cluster.api.create(f"/apis/batch/v1/namespaces/{namespace}/jobs", job("bad", "import sys; sys.exit(1)", backoff=1))
    cluster.wait_for("job Failed", lambda: job_condition(cluster, namespace, "bad", "Failed"), timeout=90)
    pods = pods_of(cluster, namespace, "job-name=bad")
    assert len(pods) == 2
    for pod in pods:
        assert pod["status"]["phase"] == "Failed"
        assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 1
    j = cluster.api.get(f"/apis/batch/v1/namespaces/{namespace}/jobs/bad")
    assert j["status"]["failed"] == 2


def deployment(name: str, replicas: int, greeting: str) -> dict[str, Any]:
    server = (
        "import http.server, os\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        body = (os.environ['GREETING'] + ' ' + os.environ['POD_NAME']).encode()\n"
        "        self.send_response(200); self.end_headers(); self.wfile.write(body)\n"
        "    def log_message(self, *a): pass\n"
        "http.server.ThreadingHTTPServer(('0.0.0.0', 8080), H).serve_forever()\n"
    )
    container = python_container(
        "web",
        server,
        ports=[{"name": "http", "containerPort": 8080}],
        env=[
            {"name": "GREETING", "value": greeting},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        readinessProbe={"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"terminationGracePeriodSeconds": 5, **POD_SECURITY, "containers": [container]},
            },
        },
    }


def ready_pods(cluster: Cluster, ns: str, app: str) -> list[dict[str, Any]]:
    pods = [p for p in pods_of(cluster, ns, f"app={app}") if not p["metadata"].get("deletionTimestamp")]
    return [
        p
        for p in pods
        if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    ]


def answers(ip: str) -> str | None:
    try:
        return requests.get(f"http://{ip}:8080/", timeout=2).text
    except requests.RequestException:
        return None


def port_closed(ip: str) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((ip, 8080)) != 0


def rollout_done(cluster: Cluster, ns: str, name: str, replicas: int) -> bool:
    d = cluster.api.get(f"/apis/apps/v1/namespaces/{ns}/deployments/{name}")
    st = d.get("status", {})
    return (
        st.get("observedGeneration") == d["metadata"]["generation"]
        and st.get("updatedReplicas") == replicas
        and st.get("readyReplicas") == replicas
        and st.get("replicas") == replicas
    )


def test_deployment_serves_rolls_and_is_garbage_collected(cluster: Cluster, namespace: str) -> None:
    api = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    cluster.api.create(api, deployment("web", 2, "v1"))
    cluster.wait_for("2 ready replicas", lambda: rollout_done(cluster, namespace, "web", 2), timeout=90)
    first = ready_pods(cluster, namespace, "web")
    ips = {p["status"]["podIP"] for p in first}
    assert len(ips) == 2, "each pod has its own IP"
    for pod in first:
        assert answers(pod["status"]["podIP"]) == f"v1 {pod['metadata']['name']}"

    # A rolling update replaces every pod; the new ones answer with the new config, the old ones are stopped.
    patch = {
        "spec": {"template": {"spec": {"containers": [{"name": "web", "env": [{"name": "GREETING", "value": "v2"}]}]}}}
    }
    cluster.api.patch(f"{api}/web", patch)
    cluster.wait_for("rollout of v2", lambda: rollout_done(cluster, namespace, "web", 2), timeout=120)
    second = cluster.wait_for(
        "only v2 pods left",
        lambda: (
            lambda ps: (
                ps
                if len(ps) == 2 and all((answers(p["status"]["podIP"]) or "").startswith("v2 ") for p in ps)
                else None
            )
        )(ready_pods(cluster, namespace, "web")),
        timeout=60,
    )
    assert not {p["metadata"]["uid"] for p in second} & {p["metadata"]["uid"] for p in first}
    for old_ip in ips - {p["status"]["podIP"] for p in second}:
        assert cluster.wait_for(f"old pod {old_ip} stopped", lambda ip=old_ip: port_closed(ip), timeout=30)

    # Deleting the Deployment: the garbage collector removes ReplicaSets and pods, the runner stops the processes.
    cluster.api.delete(f"{api}/web", {"propagationPolicy": "Background"})
    cluster.wait_for("pods gone", lambda: not pods_of(cluster, namespace, "app=web"), timeout=90)
    for pod in second:
        assert port_closed(pod["status"]["podIP"])


def test_a_service_answers_on_its_cluster_ip_from_every_ready_endpoint(cluster: Cluster, namespace: str) -> None:
    cluster.api.create(f"/apis/apps/v1/namespaces/{namespace}/deployments", deployment("svc", 2, "hi"))
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "svc"},
        "spec": {"selector": {"app": "svc"}, "ports": [{"name": "web", "port": 80, "targetPort": "http"}]},
    }
    ip = cluster.api.create(f"/api/v1/namespaces/{namespace}/services", service)["spec"]["clusterIP"]
    cluster.wait_for("2 ready replicas", lambda: rollout_done(cluster, namespace, "svc", 2), timeout=90)
    names = {p["metadata"]["name"] for p in ready_pods(cluster, namespace, "svc")}

    def through_the_service() -> str | None:
        try:
            return requests.get(f"http://{ip}:80/", timeout=2).text
        except requests.RequestException:
            return None

    # The real endpoint controller lists the ready pods; the runner's proxy spreads connections over them.
    seen = cluster.wait_for(
        "both pods answering on the ClusterIP",
        lambda: (lambda got: got if {f"hi {n}" for n in names} <= got else None)(
            {through_the_service() for _ in range(6)}
        ),
        timeout=60,
    )
    assert seen >= {f"hi {n}" for n in names}
    cluster.api.delete(f"/api/v1/namespaces/{namespace}/services/svc")
    cluster.wait_for("the ClusterIP closed", lambda: through_the_service() is None, timeout=30)


def test_unknown_image_stays_pending_with_a_clear_reason(cluster: Cluster, namespace: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "nginx"},
        "spec": {**POD_SECURITY, "containers": [{"name": "nginx", "image": "nginx:1.27", **RESTRICTED_CONTAINER}]},
    }
    cluster.api.create(f"/api/v1/namespaces/{namespace}/pods", pod)

    def waiting_reason() -> dict[str, Any] | None:
        p = cluster.api.get(f"/api/v1/namespaces/{namespace}/pods/nginx")
        statuses = p.get("status", {}).get("containerStatuses") or []
        return statuses[0]["state"].get("waiting") if statuses else None

    waiting = cluster.wait_for("a waiting reason", waiting_reason)
    assert waiting["reason"] == "ErrImageNeverPull"
    assert "nginx:1.27" in waiting["message"]
    time.sleep(1)
    assert cluster.api.get(f"/api/v1/namespaces/{namespace}/pods/nginx")["status"]["phase"] == "Pending"
    events = cluster.api.get(f"/api/v1/namespaces/{namespace}/events")["items"]
    assert any(e["reason"] == "ErrImageNeverPull" and e["type"] == "Warning" for e in events)


def test_claim_is_shared_and_config_reaches_env_and_files(cluster: Cluster, namespace: str) -> None:
    cluster.api.create(
        f"/api/v1/namespaces/{namespace}/persistentvolumeclaims",
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "1Gi"}}},
        },
    )
    cluster.api.create(
        f"/api/v1/namespaces/{namespace}/configmaps",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"rows.csv": "a,b\n1,2\n"}},
    )
    cluster.api.create(
        f"/api/v1/namespaces/{namespace}/secrets",
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"}, "stringData": {"token": "s3cr3t"}},
    )
    volumes = [
        {"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
        {"name": "cfg", "configMap": {"name": "cfg"}},
    ]
    writer = job(
        "writer",
        "import os, sys; d = sys.argv[1]; "
        "open(os.path.join(d, 'out.txt'), 'w').write(open(sys.argv[2]).read() + os.environ['TOKEN'])",
        volumeMounts=[{"name": "data", "mountPath": "/mnt/data"}, {"name": "cfg", "mountPath": "/etc/cfg"}],
        env=[{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}],
    )
    writer["spec"]["template"]["spec"]["containers"][0]["args"] = ["/mnt/data", "/etc/cfg/rows.csv"]
    writer["spec"]["template"]["spec"]["volumes"] = volumes
    cluster.api.create(f"/apis/batch/v1/namespaces/{namespace}/jobs", writer)
    cluster.wait_for("writer Complete", lambda: job_condition(cluster, namespace, "writer", "Complete"), timeout=90)

    reader = job(
        "reader",
        "import os; open(os.environ['OUT'], 'w').write(open(os.environ['IN']).read())",
        volumeMounts=[{"name": "data", "mountPath": "/srv"}],
        env=[{"name": "IN", "value": "/srv/out.txt"}, {"name": "OUT", "value": "/dev/termination-log"}],
    )
    reader["spec"]["template"]["spec"]["volumes"] = volumes[:1]
    cluster.api.create(f"/apis/batch/v1/namespaces/{namespace}/jobs", reader)
    cluster.wait_for("reader Complete", lambda: job_condition(cluster, namespace, "reader", "Complete"), timeout=90)
    (pod,) = pods_of(cluster, namespace, "job-name=reader")
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"] == "a,b\n1,2\ns3cr3t"
    pvc = cluster.api.get(f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/data")
    assert pvc["status"]["phase"] == "Bound"


def test_restricted_namespace_rejects_a_privileged_pod(cluster: Cluster, namespace: str) -> None:
    out = cluster.kubectl(
        "run", "root", "-n", namespace, f"--image={RUNTIME_IMAGE}", "--privileged", "--restart=Never", check=False
    )
    assert out.returncode != 0
    assert "violates PodSecurity" in out.stderr


def test_a_mount_over_the_projects_own_path_does_not_hide_the_python_environment(
    cluster: Cluster, namespace: str
) -> None:
    """Regression: with the repository under /tmp (a fresh CI clone) an emptyDir at /tmp redirected PATH."""
    venv_bin = str(Path(sys.executable).parent)
    body = job("shadow", "", volumeMounts=[{"name": "shadow", "mountPath": venv_bin.rsplit("/", 1)[0]}])
    container = body["spec"]["template"]["spec"]["containers"][0]
    container["command"] = ["driftline-runtime", "--help"]  # an entrypoint found through PATH, like the trainer's
    body["spec"]["template"]["spec"]["volumes"] = [{"name": "shadow", "emptyDir": {}}]
    cluster.api.create(f"/apis/batch/v1/namespaces/{namespace}/jobs", body)
    cluster.wait_for("shadow Complete", lambda: job_condition(cluster, namespace, "shadow", "Complete"), timeout=90)
    (pod,) = pods_of(cluster, namespace, "job-name=shadow")
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0


def test_failing_liveness_probe_restarts_the_container(cluster: Cluster, namespace: str) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "sick"},
        "spec": {
            **POD_SECURITY,
            "restartPolicy": "Always",
            "containers": [
                python_container(
                    "main",
                    "import time; time.sleep(3600)",
                    livenessProbe={"exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 2},
                )
            ],
        },
    }
    cluster.api.create(f"/api/v1/namespaces/{namespace}/pods", pod)

    def restarted() -> dict[str, Any] | None:
        p = cluster.api.get(f"/api/v1/namespaces/{namespace}/pods/sick")
        statuses = p.get("status", {}).get("containerStatuses") or []
        return statuses[0] if statuses and statuses[0]["restartCount"] >= 1 else None

    status = cluster.wait_for("a restart", restarted, timeout=60)
    assert status["lastState"]["terminated"]["exitCode"] == 143  # SIGTERM, as a runtime reports it
    events = cluster.api.get(f"/api/v1/namespaces/{namespace}/events")["items"]
    assert any(e["reason"] == "Unhealthy" and "Liveness probe failed" in e["message"] for e in events)


def test_pod_acts_as_its_service_account_through_the_projected_token(cluster: Cluster, namespace: str) -> None:
    # Logged in as the operator's pod logs in (kopf reads the kubeconfig the pod is given), through its client.
    code = (
        "import os, kopf\n"
        "from driftline.handlers.startup import credentials\n"
        "from driftline.k8s import client\n"
        "client.use(credentials(settings=kopf.OperatorSettings(), logger=None))\n"
        "review = client.request('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews',\n"
        "    body={'apiVersion': 'authentication.k8s.io/v1', 'kind': 'SelfSubjectReview'})\n"
        "open(os.environ['OUT'], 'w').write(review['status']['userInfo']['username'])\n"
    )
    cluster.api.create(
        f"/apis/batch/v1/namespaces/{namespace}/jobs",
        job("whoami", code, env=[{"name": "OUT", "value": "/dev/termination-log"}]),
    )
    cluster.wait_for("whoami Complete", lambda: job_condition(cluster, namespace, "whoami", "Complete"), timeout=90)
    (pod,) = pods_of(cluster, namespace, "job-name=whoami")
    message = pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"]
    assert message == f"system:serviceaccount:{namespace}:default"
