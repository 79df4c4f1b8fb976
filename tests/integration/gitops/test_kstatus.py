"""kstatus, the library behind Flux's health checks (`wait`, healthChecks) and kpt, built from its source
(hack/kstatus), over the same status fixtures: the Driftline conditions give Current, InProgress and Failed as a user
expects with no custom configuration, and the cases where kstatus cannot tell are pinned in expected.yaml."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.integration.gitops._tools import kstatus, kstatus_bin
from tests.unit.gitops._status import expectations, fixtures, load

pytestmark = pytest.mark.integration

FIXTURES = [str(p) for p in fixtures()]


@pytest.fixture(scope="module")
def binary() -> Path:
    return kstatus_bin()


@pytest.fixture(scope="module")
def results(binary: Path) -> dict[str, dict[str, Any]]:
    return dict(zip(FIXTURES, kstatus(binary, [load(rel) for rel in FIXTURES]), strict=True))


@pytest.mark.parametrize("rel", FIXTURES)
def test_fixture_status(results: dict[str, dict[str, Any]], rel: str) -> None:
    got = results[rel]
    assert not got.get("error"), got
    assert got["status"] == expectations()[rel]["kstatus"], got


def _true(obj: dict[str, Any], ctype: str) -> bool:
    return any(c["type"] == ctype and c["status"] == "True" for c in obj["status"].get("conditions") or [])


@pytest.mark.parametrize("rel", FIXTURES)
def test_the_kstatus_rules_a_user_expects(results: dict[str, dict[str, Any]], rel: str) -> None:
    """With a status of the current generation: Stalled=True is Failed, Reconciling=True is InProgress, Ready=True
    (and neither of those) is Current, and kstatus's message is the condition's."""
    obj, got = load(rel), results[rel]
    status = obj.get("status")
    if not status or status.get("observedGeneration") != obj["metadata"]["generation"]:
        return
    conditions = {c["type"]: c for c in status["conditions"]}
    if _true(obj, "Stalled"):
        assert (got["status"], got["message"]) == ("Failed", conditions["Stalled"]["message"])
    elif _true(obj, "Reconciling"):
        assert (got["status"], got["message"]) == ("InProgress", conditions["Reconciling"]["message"])
    elif _true(obj, "Ready"):
        assert got["status"] == "Current"
    else:
        assert got["status"] == "InProgress"  # Ready=False with nothing else said: kstatus keeps waiting


def test_a_lagging_generation_is_in_progress_whatever_the_conditions(binary: Path) -> None:
    objs = []
    for rel in ("trainingjob/succeeded.yaml", "modelversion/rejected-gates.yaml", "inferenceservice/ready.yaml"):
        obj = copy.deepcopy(load(rel))
        obj["metadata"]["generation"] = obj["status"]["observedGeneration"] + 1
        objs.append(obj)
    for got in kstatus(binary, objs):
        assert got["status"] == "InProgress", got
        assert "but latest observed generation is" in got["message"]


def test_an_object_being_deleted_is_terminating(binary: Path) -> None:
    obj = copy.deepcopy(load("inferenceservice/ready.yaml"))
    obj["metadata"]["deletionTimestamp"] = "2026-11-23T15:00:00Z"
    [got] = kstatus(binary, [obj])
    assert got["status"] == "Terminating"


def test_input_as_a_list_and_as_one_object(binary: Path) -> None:
    """The CLI reads what `kubectl get -o json` prints: one object or a List."""
    ready = load("inferenceservice/ready.yaml")
    [one] = kstatus(binary, [ready])
    for payload in (ready, {"apiVersion": "v1", "kind": "List", "items": [ready]}):
        out = subprocess.run([str(binary)], input=json.dumps(payload), capture_output=True, text=True, check=True)
        assert json.loads(out.stdout) == [one]
    bad = subprocess.run([str(binary)], input="not json", capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "not a JSON object" in bad.stderr
