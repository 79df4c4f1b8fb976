"""The operator SIGKILLed at each step of the loop, then restarted: the loop completes with no duplicate Job,
ModelVersion, Deployment or retrain TrainingJob, one Production version per model, and a history without gaps.

Each crash is deterministic: the operator runs with DRIFTLINE_FAILPOINTS naming one point (handlers/failpoints.py),
kills itself there the first time it reaches it — at the very instant a node failure could — and a plain operator is
started on the wreck. The truth is in the cluster, never in the dead process's memory."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import Cluster
from tests.e2e.conftest import pvc
from tests.e2e.test_drift import SHIFT, retrain_service, traffic
from tests.e2e.test_serving import DIS, MODEL, Client, dis, inferenceservice, ready_at
from tests.e2e.test_training import TJ, finished, trainingjob, versions
from tests.operator_proc import OperatorProcess

pytestmark = pytest.mark.e2e
LOGREG = "sklearn.linear_model.LogisticRegression"


class Operators:
    """One operator at a time: started armed with a failpoint or plain, and what became of each."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.current: OperatorProcess | None = None

    def start(self, failpoint: str = "") -> OperatorProcess:
        self.stop()
        env = {"DRIFTLINE_FAILPOINTS": failpoint} if failpoint else {}
        log = self.cluster.dir / "logs" / f"operator-crash-{failpoint or 'plain'}.log"
        self.current = OperatorProcess(self.cluster.kubeconfig, log, env=env).start()
        return self.current

    def killed_at(self, point: str, timeout: float = 240) -> None:
        """Wait for the armed operator to reach `point` and die there of SIGKILL."""
        op = self.current
        assert op is not None and op.proc is not None
        proc = op.proc
        self.cluster.wait_for(f"the operator to die at {point}", lambda: proc.poll() is not None, timeout=timeout)
        assert proc.returncode == -9, f"exited {proc.returncode}, not killed at {point}:\n{op.log_tail()}"

    def stop(self) -> None:
        if self.current is not None:
            self.current.stop()
            self.current = None


@pytest.fixture
def operators(cluster: Cluster, crds: None) -> Iterator[Operators]:
    ops = Operators(cluster)
    yield ops
    ops.stop()


def jobs_of(cluster: Cluster, ns: str) -> list[str]:
    return sorted(j["metadata"]["name"] for j in cluster.api.get(f"/apis/batch/v1/namespaces/{ns}/jobs")["items"])


def stages(cluster: Cluster, ns: str) -> dict[int, str]:
    return {mv["spec"]["version"]: (mv.get("status") or {}).get("stage", "") for mv in versions(cluster, ns).values()}


def trained(cluster: Cluster, ns: str, name: str) -> dict[str, Any]:
    st: dict[str, Any] = cluster.wait_for(
        f"TrainingJob {name} finished", lambda: finished(cluster, ns, name), timeout=240
    )
    assert st["phase"] == "Succeeded", st
    return st


def v1_in_production(cluster: Cluster, ns: str, operators: Operators) -> None:
    """A claim for artifacts, a plain operator, and v1 trained and Production."""
    pvc(cluster, ns)
    operators.start()
    cluster.api.create(TJ.format(ns=ns), trainingjob("v1", LOGREG, {"max_iter": 5000}))
    trained(cluster, ns, "v1")
    cluster.wait_for("v1 Production", lambda: stages(cluster, ns) == {1: "Production"})


@pytest.mark.parametrize(
    "point",
    [
        "trainingjob.job-created",  # the Job exists, the TrainingJob's status does not say so
        "trainingjob.job-finished",  # the Job completed, no ModelVersion yet
        "trainingjob.version-created",  # the ModelVersion exists, without a stage, its policy not applied
    ],
)
def test_killed_while_training(cluster: Cluster, namespace: str, operators: Operators, point: str) -> None:
    ns = namespace
    pvc(cluster, ns)
    operators.start(point)
    cluster.api.create(TJ.format(ns=ns), trainingjob("lr", LOGREG, {"max_iter": 5000}))
    operators.killed_at(point)
    operators.start()
    st = trained(cluster, ns, "lr")
    cluster.wait_for("v1 Production", lambda: stages(cluster, ns) == {1: "Production"})
    assert st["version"] == 1 and st["modelVersion"] == f"{MODEL}-v1"
    assert jobs_of(cluster, ns) == [st["jobName"]]  # one Job, however many times the operator started


def test_killed_between_promoting_one_version_and_archiving_the_other(
    cluster: Cluster, namespace: str, operators: Operators
) -> None:
    ns = namespace
    v1_in_production(cluster, ns, operators)

    operators.start("registry.promoted")
    cluster.api.create(TJ.format(ns=ns), trainingjob("v2", LOGREG, {"max_iter": 5000, "C": 0.5}))
    operators.killed_at("registry.promoted")
    assert stages(cluster, ns) == {1: "Production", 2: "Production"}  # the window this test is about
    operators.start()
    cluster.wait_for("v2 alone Production", lambda: stages(cluster, ns) == {1: "Archived", 2: "Production"})
    assert jobs_of(cluster, ns) == ["v1-train", "v2-train"]


def test_killed_mid_canary(cluster: Cluster, namespace: str, operators: Operators) -> None:
    ns = namespace
    v1_in_production(cluster, ns, operators)
    canary = {"steps": [{"weight": 50}], "analysis": {"interval": "2s", "count": 2, "minSamples": 5}}
    svc = inferenceservice("bc", rollout={"strategy": "Canary", "canary": canary})
    cluster.api.create(DIS.format(ns=ns), svc)
    cluster.wait_for("bc Ready on v1", ready_at(cluster, ns, "bc", 1), timeout=120)

    operators.start("canary.deployment-applied")
    with Client(cluster, ns, "bc") as client:
        cluster.wait_for("the client under way", lambda: client.answered(1) >= 20)
        cluster.api.create(TJ.format(ns=ns), trainingjob("v2", LOGREG, {"max_iter": 5000, "C": 0.5}))
        operators.killed_at("canary.deployment-applied")
        assert cluster.api.get_or_none(f"/apis/apps/v1/namespaces/{ns}/deployments/bc-canary")
        operators.start()
        st = cluster.wait_for("bc Ready on v2", ready_at(cluster, ns, "bc", 2), timeout=240)
    assert client.failures == [], client.failures[:5]
    actions = Counter(h["action"] for h in st["history"])
    assert (actions["CanaryStarted"], actions["CanaryPromoted"]) == (1, 1), st["history"]
    deployments = cluster.api.get(f"/apis/apps/v1/namespaces/{ns}/deployments")["items"]
    assert [d["metadata"]["name"] for d in deployments] == ["bc-stable"]
    assert stages(cluster, ns) == {1: "Archived", 2: "Production"}


@pytest.mark.parametrize(
    "point",
    [
        "drift.action-decided",  # breaches confirmed, nothing done yet
        "drift.retrain-created",  # the retrain TrainingJob exists, status.drift does not name it
    ],
)
def test_killed_between_a_drift_breach_and_its_action(
    cluster: Cluster, namespace: str, operators: Operators, point: str
) -> None:
    ns = namespace
    v1_in_production(cluster, ns, operators)
    _, svc = retrain_service(cluster, ns)
    cluster.api.create(DIS.format(ns=ns), svc)
    cluster.wait_for("bc Ready on v1", ready_at(cluster, ns, "bc", 1), timeout=120)

    operators.start(point)
    with traffic(cluster, ns, "bc") as live:
        live.factor = SHIFT
        operators.killed_at(point, timeout=120)
        operators.start()
        st = cluster.wait_for("bc Ready on v2", ready_at(cluster, ns, "bc", 2), timeout=300)
    retrains = cluster.api.get(TJ.format(ns=ns), labelSelector="driftline.dev/retrain")["items"]
    assert [r["metadata"]["name"] for r in retrains] == ["bc-retrain-1"]
    actions = [(h["action"], h.get("fromVersion"), h["toVersion"]) for h in st["history"]]
    assert actions == [("RollForward", None, 1), ("Retrain", 1, 1), ("RollForward", 1, 2)], actions
    assert dis(cluster, ns, "bc")["status"]["drift"]["lastRetrainJob"] == "bc-retrain-1"
    assert stages(cluster, ns) == {1: "Archived", 2: "Production"}
