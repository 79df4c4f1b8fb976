"""The Argo CD health checks (examples/gitops/argocd/health/) on Debian's Lua 5.1, run as Argo CD runs them (see
argocd_harness.lua), over the status fixtures captured from the e2e runs: each gives the health and message in
tests/data/status/expected.yaml, every branch of every script is taken by some object, and no object, however
incomplete, makes a script fail."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.gitops._tools import Case, Run, argocd_health, lua_bin
from tests.unit.gitops._status import KINDS, expectations, fixtures, health_script, load

pytestmark = pytest.mark.integration

FIXTURES = [str(p) for p in fixtures()]


def _without(obj: dict[str, Any], *path: str) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    node = out
    for key in path[:-1]:
        node = node[key]
    node.pop(path[-1], None)
    return out


def _conditions(obj: dict[str, Any], **by_type: tuple[str, str]) -> dict[str, Any]:
    """`obj` with the named conditions set to (status, reason)."""
    out = copy.deepcopy(obj)
    for c in out["status"]["conditions"]:
        if c["type"] in by_type:
            c["status"], c["reason"] = by_type[c["type"]]
    return out


def synthetic() -> Iterator[tuple[str, dict[str, Any], str | None]]:
    """(id, object, expected health or None for "any valid one"): states the operator does not write today, and
    objects cut short, which a health check must still answer without an error."""
    for kind, sample in (
        ("TrainingJob", "trainingjob/running.yaml"),
        ("ModelVersion", "modelversion/candidate.yaml"),
        ("InferenceService", "inferenceservice/ready.yaml"),
    ):
        obj = load(sample)
        yield f"{kind}: no metadata.generation", _without(obj, "metadata", "generation"), None
        yield f"{kind}: no status.observedGeneration", _without(obj, "status", "observedGeneration"), None
        older = copy.deepcopy(obj)
        older["metadata"]["generation"] = obj["status"]["observedGeneration"] + 1
        yield f"{kind}: status of an older generation", older, "Progressing"
        yield f"{kind}: empty status", {**obj, "status": {}}, "Progressing"
        yield f"{kind}: empty conditions", {**obj, "status": {**obj["status"], "conditions": []}}, "Progressing"
        bare = copy.deepcopy(obj)
        for c in bare["status"]["conditions"]:
            c.pop("reason")
            c.pop("message")
        yield f"{kind}: conditions without reason or message", bare, None
        # A Ready condition that is neither True nor explained by another condition: wait, never fail.
        odd = _conditions(obj, Ready=("Unknown", "SomethingNew"), Reconciling=("False", "Reconciled"))
        yield f"{kind}: Ready Unknown for a reason not known today", odd, "Progressing"
        no_ready = copy.deepcopy(obj)
        no_ready["status"]["conditions"] = [c for c in obj["status"]["conditions"] if c["type"] == "Stalled"]
        yield f"{kind}: no Ready condition", no_ready, "Progressing"
    mv = load("modelversion/candidate.yaml")
    for value, health in (("false", "Healthy"), ("False", "Healthy"), ("yes", "Progressing")):
        asked = copy.deepcopy(mv)
        asked["metadata"]["annotations"] = {"driftline.dev/promote": value}
        yield f"ModelVersion: driftline.dev/promote {value!r}", asked, health
    done = copy.deepcopy(mv)
    done["metadata"]["annotations"] = {"driftline.dev/reject": "r1"}
    done["status"]["lastRejectRequest"] = "r1"
    yield "ModelVersion: a reject request already carried out", done, "Healthy"
    dis = load("inferenceservice/ready.yaml")
    handled = copy.deepcopy(dis)
    handled["metadata"]["annotations"] = {"driftline.dev/rollback": "t1"}
    handled["status"]["lastRollbackRequest"] = "t1"
    yield "InferenceService: a rollback request already carried out", handled, "Healthy"
    empty_token = copy.deepcopy(dis)
    empty_token["metadata"]["annotations"] = {"driftline.dev/rollback": ""}
    yield "InferenceService: an empty rollback token", empty_token, "Healthy"
    only = copy.deepcopy(dis)
    only["status"]["conditions"] = [
        {**c, "status": "True"} for c in dis["status"]["conditions"] if c["type"] == "Progressing"
    ]
    yield "InferenceService: Progressing=True and no other condition", only, "Progressing"
    reconciling = _conditions(dis, Reconciling=("True", "Unavailable"))
    yield "InferenceService: Ready=True and Reconciling=True", reconciling, "Progressing"
    idle = _conditions(dis, Ready=("False", "SomethingNew"))
    yield "InferenceService: Ready False, nothing progressing or degraded", idle, "Progressing"


SYNTHETIC = list(synthetic())


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    cases = [Case(rel, health_script(load(rel)["kind"]), load(rel)) for rel in FIXTURES]
    cases += [Case(f"synthetic: {name}", health_script(obj["kind"]), obj) for name, obj, _ in SYNTHETIC]
    return argocd_health(lua_bin(), cases, tmp_path_factory.mktemp("argocd"))


@pytest.mark.parametrize("rel", FIXTURES)
def test_fixture_health_and_message(run: Run, rel: str) -> None:
    want = expectations()[rel]
    got = run.verdicts[rel]
    assert not got.error, got.error
    assert (got.status, got.message) == (want["argocd"], want["message"])


@pytest.mark.parametrize(("name", "obj", "health"), SYNTHETIC, ids=[s[0] for s in SYNTHETIC])
def test_incomplete_or_unknown_objects_never_fail_the_check(
    run: Run, name: str, obj: dict[str, Any], health: str | None
) -> None:
    got = run.verdicts[f"synthetic: {name}"]
    assert not got.error, got.error
    assert got.status in ("Healthy", "Progressing", "Degraded", "Suspended")
    assert got.message
    if health is not None:
        assert got.status == health, got.message


@pytest.mark.parametrize("kind", KINDS)
def test_every_branch_of_the_script_runs(run: Run, kind: str) -> None:
    """Every line that sets a health status ran for some fixture or synthetic object."""
    script = health_script(kind)
    lines = script.read_text().splitlines()
    verdict_lines = {n for n, line in enumerate(lines, 1) if re.search(r"\bhs\.status\s*=", line)}
    missed = sorted(verdict_lines - run.coverage.get(script, set()))
    where = "; ".join(f"{n}: {lines[n - 1].strip()}" for n in missed)
    assert not missed, f"{script.name} of {kind}: never ran: {where}"


def test_the_harness_refuses_what_argo_cd_does_not_offer(tmp_path: Path) -> None:
    """The sandbox is as narrow as Argo CD's: no string methods or library, no math, io or debug; os only has time
    and date. A check that works here therefore works in Argo CD (as far as Lua 5.1 and gopher-lua agree)."""
    probes = {
        "string method": 'return {status = ("x"):upper()}',
        "string library": 'return {status = string.upper("healthy")}',
        "math": "return {status = tostring(math.floor(1))}",
        "io": 'return {status = io.read("*a")}',
        "os.exit": "os.exit(1)",
        "require of a library": 'local s = require("string"); return {status = "Healthy"}',
        "an invalid health": 'return {status = "Fine"}',
        "a string return": 'return "Healthy"',
    }
    allowed = {
        "os.time and os.date": 'return {status = "Healthy", message = os.date("!%Y", os.time())}',
        "table library": 'local t = {"b", "a"}; table.sort(t); return {status = "Healthy", message = table.concat(t)}',
        "require os": 'local os = require("os"); return {status = "Healthy", message = tostring(os.time() > 0)}',
    }
    cases = []
    for name, source in {**probes, **allowed}.items():
        script = tmp_path / (re.sub(r"\W+", "-", name) + ".lua")
        script.write_text(source)
        cases.append(Case(name, script, {"metadata": {}}))
    verdicts = argocd_health(lua_bin(), cases, tmp_path).verdicts
    for name in probes:
        assert verdicts[name].error, f"{name} was accepted: {verdicts[name]}"
    for name in allowed:
        assert verdicts[name].status == "Healthy" and not verdicts[name].error, (name, verdicts[name])
