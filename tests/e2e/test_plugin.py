"""`kubectl driftline` as a person runs it: through the real kubectl (found on PATH, as kubectl finds its plugins),
against a served model on the real control plane."""

from __future__ import annotations

import difflib
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cluster
from tests.e2e.test_serving import DIS, MODEL, dis, ready_at, served  # noqa: F401  (served: the fixture)
from tests.e2e.test_training import trainingjob, versions
from tests.operator_proc import OperatorProcess

pytestmark = pytest.mark.e2e
PLUGIN_DIR = Path(sys.executable).parent  # where the package installed kubectl-driftline
GOLDEN = Path(__file__).resolve().parents[1] / "data" / "plugin"
"""What each verb prints, whole (stdout, then stderr after a `--- stderr` line), with what differs from run to run
replaced by a placeholder. DRIFTLINE_UPDATE_GOLDEN=1 rewrites them; review the diff before committing it."""
VOLATILE = [
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"), "YYYY-MM-DDTHH:MM:SSZ"),  # timestamps, request tokens
    (re.compile(r"\b[0-9a-f]{12}(?:[0-9a-f]{52})?\b"), lambda m: "#" * len(m[0])),  # digests, whole or cut to 12
    (re.compile(r"(?<=/registry/breast-cancer/)([a-z0-9-]+)-[0-9a-f]{8}\b"), r"\1-########"),  # a run: job uid
]
"""Same width as what they replace, so the columns of a table stay aligned in the file."""


def check_golden(name: str, out: subprocess.CompletedProcess[str], ns: str) -> None:
    """`out` printed what tests/data/plugin/NAME.txt holds, once the namespace and VOLATILE are replaced."""
    text = out.stdout + (f"--- stderr\n{out.stderr}" if out.stderr else "")
    text = text.replace(ns, "<namespace>")
    for pattern, placeholder in VOLATILE:
        text = pattern.sub(placeholder, text)
    path = GOLDEN / f"{name}.txt"
    if os.environ.get("DRIFTLINE_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    want = path.read_text() if path.exists() else ""
    diff = "".join(difflib.unified_diff(want.splitlines(True), text.splitlines(True), str(path), "printed"))
    assert text == want, f"kubectl driftline {name}: output differs from its golden file\n{diff}"


def kubectl(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": cluster.kubeconfig, "PATH": f"{cluster.bin}:{PLUGIN_DIR}:{os.environ['PATH']}"}
    return subprocess.run(
        [str(cluster.bin / "kubectl"), *args], capture_output=True, text=True, timeout=60, env=env, check=False
    )


def test_kubectl_driftline_shows_a_service_and_a_model_and_rolls_back_with_a_gitops_warning(
    cluster: Cluster,
    served: str,  # noqa: F811
    operator: OperatorProcess,
) -> None:
    ns = served
    out = kubectl(cluster, "driftline", "-n", ns, "get", "inferenceservice", "bc")
    assert out.returncode == 0, out.stderr
    assert "Phase:     Ready" in out.stdout and "└── stable: breast-cancer-v1 (version 1, Production" in out.stdout
    check_golden("get-inferenceservice", out, ns)
    out = kubectl(cluster, "driftline", "-n", ns, "get", "model", MODEL)
    assert out.returncode == 0, out.stderr
    header, row = out.stdout.splitlines()[:2]
    assert header.startswith("VERSION") and row.split()[:2] == ["1", "Production"] and row.endswith("bc")
    check_golden("get-model", out, ns)
    out = kubectl(cluster, "driftline", "get", "model", MODEL, "-A", "-o", "wide")  # every namespace, wide
    assert out.returncode == 0, out.stderr
    header, *rows = out.stdout.splitlines()
    assert header.split()[:2] == ["NAMESPACE", "VERSION"] and header.endswith("ARTIFACT"), header
    mine = [r for r in rows if r.split()[0] == ns]
    assert mine and mine[0].split()[1:3] == ["1", "Production"] and "\x1b" not in out.stdout  # piped: no colour
    out = kubectl(cluster, "driftline", "-n", ns, "get", "dis", "bc", "-o", "json")
    assert out.returncode == 0 and '"activeVersion": 1' in out.stdout
    # --as reaches kubectl: a user with no rights here is refused by the API server, by name.
    out = kubectl(cluster, "driftline", "-n", ns, "--as", "someone-else", "get", "dis", "bc")
    assert out.returncode != 0 and 'User "someone-else" cannot get resource' in out.stderr, out.stderr
    # --watch: the tree once (nothing changes in 3 s), not redrawn: not a terminal, so no escape codes either.
    out = kubectl(cluster, "driftline", "-n", ns, "get", "dis", "bc", "--watch", "--timeout", "3")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("Name:      bc") == 1 and "\x1b" not in out.stdout, out.stdout
    # Where v1 came from and where it serves.
    out = kubectl(cluster, "driftline", "-n", ns, "lineage", f"{MODEL}-v1")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"ModelVersion {MODEL}-v1 (model {MODEL}, version 1, Production"), lines
    assert "├── trained by: TrainingJob lr (Succeeded)" in lines, lines
    assert "├── params: max_iter=5000, random_state=42" in lines, lines
    assert any(x.startswith("├── dataset: sklearn://breast_cancer sha256 ") for x in lines), lines
    assert lines[-1] == "└── served by: bc (stable)", lines
    check_golden("lineage", out, ns)

    # Managed by Argo CD: the change is made, and the person is told to make it in Git too, with the YAML.
    tracking = "argocd.argoproj.io/tracking-id=models:driftline.dev/InferenceService:ml/bc"
    cluster.kubectl("-n", ns, "annotate", "inferenceservice.driftline.dev/bc", tracking)
    out = kubectl(cluster, "driftline", "-n", ns, "rollback", "bc")
    assert out.returncode == 0, out.stderr
    assert "is managed by Argo CD" in out.stderr and "driftline.dev/rollback:" in out.stderr
    asked = dis(cluster, ns, "bc")["metadata"]["annotations"]["driftline.dev/rollback"]
    assert asked and asked in out.stderr  # the same token as the YAML printed for Git
    check_golden("rollback-gitops", out, ns)
    # Nothing to return to yet (only v1 has served): the operator says so, as for a rollback asked in Git.
    warned = cluster.wait_for(
        "the refused rollback told",
        lambda: [
            e["message"]
            for e in cluster.api.get(f"/api/v1/namespaces/{ns}/events")["items"]
            if e["reason"] == "RollbackRequested" and e["involvedObject"]["name"] == "bc"
        ],
        timeout=30,
    )
    assert "no previous version to return to" in warned[0]
    out = kubectl(cluster, "driftline", "-n", ns, "history", "bc")
    assert out.returncode == 0 and out.stdout.splitlines()[1].split()[1] == "RollForward", out.stdout
    check_golden("history", out, ns)
    out = kubectl(cluster, "driftline", "-n", ns, "why", "bc")
    assert out.returncode == 0 and out.stdout.startswith("Last decision: RollForward (version 1)"), out.stdout
    check_golden("why", out, ns)
    # A pin is the spec a person would write in Git; unpin removes it.
    out = kubectl(cluster, "driftline", "-n", ns, "pin", "bc", "1")
    assert out.returncode == 0 and "spec:\n  version: 1" in out.stderr  # managed by Argo CD: the YAML for Git
    check_golden("pin-gitops", out, ns)
    assert dis(cluster, ns, "bc")["spec"]["version"] == 1
    out = kubectl(cluster, "driftline", "-n", ns, "unpin", "bc")
    assert out.returncode == 0, out.stderr
    check_golden("unpin-gitops", out, ns)
    assert "version" not in dis(cluster, ns, "bc")["spec"]
    # kubectl's own errors come through, with a failing exit code.
    out = kubectl(cluster, "driftline", "-n", ns, "get", "dis", "no-such-service")
    assert out.returncode != 0 and 'inferenceservices.driftline.dev "no-such-service" not found' in out.stderr
    check_golden("get-not-found", out, ns)

    # retrain: a new TrainingJob from spec.retrain.template now, once per request, never two at once.
    # The retrain is promoted by hand below (promotion.auto off), so the same run covers promote and reject.
    template = trainingjob("unused", "sklearn.linear_model.LogisticRegression", {"max_iter": 5000}, auto=False)["spec"]
    cluster.api.patch(f"{DIS.format(ns=ns)}/bc", {"spec": {"retrain": {"template": template}}}, "merge")
    out = kubectl(cluster, "driftline", "-n", ns, "retrain", "bc")
    assert out.returncode == 0 and "driftline.dev/retrain:" in out.stderr, out.stderr  # managed by Argo CD: the YAML
    check_golden("retrain-gitops", out, ns)
    asked = dis(cluster, ns, "bc")["metadata"]["annotations"]["driftline.dev/retrain"]
    jobs = f"/apis/driftline.dev/v1alpha1/namespaces/{ns}/trainingjobs"

    def retrains() -> list[dict[str, Any]]:
        return cluster.api.get(jobs, labelSelector="driftline.dev/inferenceservice=bc")["items"]

    (job,) = cluster.wait_for("the retrain started", retrains, timeout=30)
    st = cluster.wait_for("the request recorded", lambda: (s := dis(cluster, ns, "bc")["status"]).get(
        "lastRetrainRequest") == asked and s)  # fmt: skip
    entry = st["history"][-1]
    assert (entry["action"], entry["reason"], entry["toVersion"]) == ("Retrain", "RetrainRequested", 1), entry
    assert job["metadata"]["annotations"]["driftline.dev/retrain-served-version"] == "1"
    # Asked again while it trains: refused, said in a Warning, and recorded as handled.
    time.sleep(1.1)  # the plugin's token is the second: a new one
    assert kubectl(cluster, "driftline", "-n", ns, "retrain", "bc").returncode == 0
    said = cluster.wait_for(
        "the second request refused",
        lambda: [
            e["message"]
            for e in cluster.api.get(f"/api/v1/namespaces/{ns}/events")["items"]
            if e["reason"] == "RetrainRequested" and e["type"] == "Warning"
        ],
        timeout=30,
    )
    assert f"while {job['metadata']['name']} is still running: not started" in said[0], said
    assert len(retrains()) == 1

    # The retrain's version: a Candidate, promoted by a person (served), rolled back, then rejected.
    cluster.wait_for("v2 registered", lambda: versions(cluster, ns).get(f"{MODEL}-v2"), timeout=180)
    out = kubectl(cluster, "driftline", "-n", ns, "get", "model", MODEL)
    assert out.returncode == 0 and out.stdout.splitlines()[1].split()[:2] == ["2", "Candidate"], out.stdout
    check_golden("get-model-new-version", out, ns)
    out = kubectl(cluster, "driftline", "-n", ns, "promote", f"{MODEL}-v2")
    assert out.returncode == 0, out.stderr
    check_golden("promote", out, ns)
    cluster.wait_for("bc Ready on v2", ready_at(cluster, ns, "bc", 2), timeout=120)
    out = kubectl(cluster, "driftline", "-n", ns, "get", "dis", "bc")
    assert out.returncode == 0 and "├── stable: breast-cancer-v2 (version 2, Production" in out.stdout, out.stdout
    check_golden("get-inferenceservice-promoted", out, ns)
    out = kubectl(cluster, "driftline", "-n", ns, "rollback", "bc")
    assert out.returncode == 0, out.stderr
    cluster.wait_for("bc Ready on v1 again", ready_at(cluster, ns, "bc", 1), timeout=120)
    out = kubectl(cluster, "driftline", "-n", ns, "history", "bc")
    assert out.returncode == 0 and out.stdout.splitlines()[-1].split()[1] == "Rollback", out.stdout
    check_golden("history-rolled-back", out, ns)
    out = kubectl(cluster, "driftline", "-n", ns, "why", "bc")
    assert out.returncode == 0 and out.stdout.startswith("Last decision: Rollback (version 2 -> 1)"), out.stdout
    check_golden("why-rolled-back", out, ns)
    out = kubectl(cluster, "driftline", "-n", ns, "reject", f"{MODEL}-v2")
    assert out.returncode == 0, out.stderr
    check_golden("reject", out, ns)
    cluster.wait_for("v2 rejected", lambda: versions(cluster, ns)[f"{MODEL}-v2"]["status"].get("stage") == "Rejected")
    out = kubectl(cluster, "driftline", "-n", ns, "get", "model", MODEL, "-o", "wide")
    assert out.returncode == 0, out.stderr
    check_golden("get-model-wide", out, ns)
    out = kubectl(cluster, "driftline", "-n", ns, "lineage", f"{MODEL}-v2")  # a retrain's lineage names who asked
    assert out.returncode == 0 and "a retrain by InferenceService bc while it served version 1" in out.stdout
    check_golden("lineage-retrain", out, ns)
