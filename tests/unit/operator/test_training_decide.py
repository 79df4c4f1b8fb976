"""A TrainingJob's phase from its Job, and the termination summary parser."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from driftline.decide import training
from driftline.decide.pods import PodProblem
from driftline.decide.training import (
    RECHECK_SECONDS,
    Step,
    failure_text,
    job_facts,
    needs_failure_message,
    needs_pods,
    needs_versions,
    observe,
    parse_summary,
    recheck_after,
    ttl_patch,
    with_pod_problem,
)

pytestmark = pytest.mark.unit


def job(**status: Any) -> dict[str, Any]:
    return {"spec": {}, "status": status}


def cond(ctype: str, **kw: str) -> dict[str, Any]:
    return {"type": ctype, "status": "True", **kw}


def ready(obs_conditions: list[Any]) -> Any:
    return next(c for c in obs_conditions if c.type == "Ready")


@pytest.mark.parametrize(
    ("the_job", "mv", "phase", "step", "stalled"),
    [
        (None, None, "Pending", Step.CREATE_JOB, False),
        (job(), None, "Pending", Step.WAIT, False),
        (job(active=1, startTime="t"), None, "Running", Step.WAIT, False),
        (job(conditions=[cond("Complete")], startTime="t"), None, "Running", Step.REGISTER, False),
        (job(conditions=[cond("Complete")], startTime="t", completionTime="u"), "m-v1", "Succeeded", Step.DONE, False),
        (job(conditions=[cond("Failed", reason="BackoffLimitExceeded")]), None, "Failed", Step.FAIL, True),
        ({"spec": {"suspend": True}, "status": {}}, None, "Pending", Step.WAIT, False),
    ],
)
def test_observe(the_job: dict[str, Any] | None, mv: str | None, phase: str, step: Step, stalled: bool) -> None:
    obs = observe(the_job, None, mv)
    assert (obs.phase, obs.step) == (phase, step)
    assert ready(obs.conditions).status is (phase == "Succeeded")
    assert next(c for c in obs.conditions if c.type == "Stalled").status is stalled


@pytest.mark.parametrize(
    ("recorded", "mv", "phase", "step"),
    [
        ({"phase": "Succeeded", "jobName": "j"}, "m-v1", "Succeeded", Step.DONE),
        ({"phase": "Failed", "jobName": "j", "message": "EmptyDataset: no rows"}, None, "Failed", Step.FAIL),
        ({"phase": "Running", "jobName": "j"}, None, "Pending", Step.CREATE_JOB),
        ({"phase": "Failed"}, None, "Pending", Step.CREATE_JOB),  # an invalid spec, fixed: no Job was ever made
        (None, None, "Pending", Step.CREATE_JOB),
    ],
)
def test_a_finished_runs_deleted_job_is_never_run_again(
    recorded: dict[str, Any] | None, mv: str | None, phase: str, step: Step
) -> None:
    """ttlSecondsAfterFinished deletes the Job: the version made, or the failure recorded, stands for it."""
    obs = observe(None, None, mv, recorded)
    assert (obs.phase, obs.step) == (phase, step)
    if phase == "Failed":
        assert obs.message == "EmptyDataset: no rows"


@pytest.mark.parametrize(
    ("the_job", "versions", "pods"),
    [
        (None, True, False),
        (job(), False, False),
        (job(active=1), False, False),
        (job(conditions=[cond("Complete")]), True, False),
        (job(conditions=[cond("Failed")]), False, True),
    ],
)
def test_reads_only_what_the_jobs_state_can_need(the_job: dict[str, Any] | None, versions: bool, pods: bool) -> None:
    assert (needs_versions(the_job), needs_failure_message(the_job)) == (versions, pods)


def test_a_recorded_trainer_message_outlives_the_pods() -> None:
    recorded = {"phase": "Failed", "jobName": "j", "message": "EmptyDataset: no rows"}
    failed = job(conditions=[cond("Failed", message="Job has reached the specified backoff limit")])
    assert observe(failed, None, None, recorded).message == "EmptyDataset: no rows"
    assert observe(failed, None, None, None).message == "Job has reached the specified backoff limit"


def test_failed_job_carries_the_trainers_message() -> None:
    msg = json.dumps({"ok": False, "reason": "MissingTargetColumn", "message": "column 'label' not found"})
    obs = observe(job(conditions=[cond("Failed")]), failure_text(msg), None)
    assert obs.message == "MissingTargetColumn: column 'label' not found"
    assert ready(obs.conditions).message == obs.message


@pytest.mark.parametrize(
    ("message", "ok", "reason"),
    [
        (None, False, "SummaryUnreadable"),
        ("Traceback (most recent call last): ...", False, "SummaryUnreadable"),
        ("[1, 2]", False, "SummaryUnreadable"),
        ('{"ok": false, "reason": "EmptyDataset", "message": "no rows"}', False, "EmptyDataset"),
        ('{"ok": true, "artifact": {"storageUri": "pvc://m/x"}}', False, "SummaryUnreadable"),
        (
            '{"ok": true, "artifact": {"storageUri": "pvc://m/x", "sha256": "ab"}, "metrics": {"a": "x"}}',
            False,
            "SummaryUnreadable",
        ),
        ('{"ok": true, "artifact": {"storageUri": "pvc://m/x", "sha256": "ab"}, "metrics": {"a": 0.9}}', True, ""),
        # A key's fingerprint, or nothing: anything else would make the ModelVersion invalid.
        (
            '{"ok": true, "artifact": {"storageUri": "pvc://m/x", "sha256": "ab", "signedBy": "me"}}',
            False,
            "SummaryUnreadable",
        ),
        (
            '{"ok": true, "artifact": {"storageUri": "pvc://m/x", "sha256": "ab", "signedBy": "sha256:'
            + "c" * 64
            + '"}}',
            True,
            "",
        ),
    ],
)
def test_parse_summary_never_trusts_the_message(message: str | None, ok: bool, reason: str) -> None:
    s = parse_summary(message)
    assert s.ok is ok and s.reason == reason


@pytest.mark.parametrize(
    ("reported", "ok"),
    [
        ("s3://models/iris/run-1234abcd", True),
        ("s3://models/iris/run-1234abcd/", True),  # the same prefix
        ("s3://models/credit/good-run-99999999", False),  # another model's artifact
        ("s3://models/iris/run-1234abcd/../other", False),
        ("s3://models/iris", False),  # a parent of this run's
        ("pvc://models/iris/run-1234abcd", False),
    ],
)
def test_a_version_is_registered_only_from_its_own_runs_artifact(reported: str, ok: bool) -> None:
    message = json.dumps({"ok": True, "artifact": {"storageUri": reported, "sha256": "ab"}, "metrics": {"a": 0.99}})
    s = parse_summary(message, "s3://models/iris/run-1234abcd")
    assert s.ok is ok
    if not ok:
        assert s.reason == "ArtifactOutsideRun"
        assert reported in s.message and "this run's artifact is s3://models/iris/run-1234abcd" in s.message


@pytest.mark.parametrize(
    ("the_job", "step", "ttl", "patch"),
    [
        (job(conditions=[cond("Complete")]), Step.REGISTER, 0, None),  # the summary is not read yet
        (job(conditions=[cond("Complete")]), Step.DONE, 0, {"spec": {"ttlSecondsAfterFinished": 0}}),
        (job(conditions=[cond("Failed")]), Step.FAIL, 60, {"spec": {"ttlSecondsAfterFinished": 60}}),
        ({"spec": {"ttlSecondsAfterFinished": 60}, "status": {}}, Step.FAIL, 60, None),  # already handed over
        (job(conditions=[cond("Complete")]), Step.DONE, None, None),  # no TTL asked for: the Job stays
        (None, Step.DONE, 0, None),
    ],
)
def test_the_ttl_is_set_only_once_the_outcome_is_recorded(
    the_job: dict[str, Any] | None, step: Step, ttl: int | None, patch: dict[str, Any] | None
) -> None:
    assert ttl_patch(the_job, step, ttl) == patch


def test_job_facts_change_with_what_the_training_reads_and_only_with_that() -> None:
    base = {
        "metadata": {"name": "t-1", "resourceVersion": "1"},
        "spec": {"suspend": True},
        "status": {"conditions": [cond("Suspended", reason="JobSuspended")]},
    }
    facts = job_facts(base)
    # The controller's own bookkeeping and a new resourceVersion are no news to the TrainingJob.
    noise = json.loads(json.dumps(base))
    noise["metadata"]["resourceVersion"] = "2"
    noise["status"]["conditions"][0]["lastTransitionTime"] = "2026-11-24T00:00:00Z"
    noise["status"].update(uncountedTerminatedPods={}, ready=0, active=0)
    assert job_facts(noise) == facts
    # Each thing observe, ttl_patch or the needs_* checks read is.
    for change in (
        {"spec": {"suspend": False}},
        {"spec": {"suspend": True, "ttlSecondsAfterFinished": 60}},
        {"status": {"active": 1}},
        {"status": {"ready": 1}},
        {"status": {"startTime": "t"}},
        {"status": {"completionTime": "t"}},
        {"status": {"conditions": [cond("Complete")]}},
        {"status": {"conditions": [cond("Failed", message="OOMKilled")]}},
    ):
        assert job_facts({**base, **change}) != facts, change


NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def started(age: float, **status: Any) -> dict[str, Any]:
    created = (NOW - timedelta(seconds=age)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"metadata": {"creationTimestamp": created}, "spec": {}, "status": status}


def test_a_training_pod_is_read_only_while_the_job_waits_for_it_past_the_grace() -> None:
    """A training that starts at once costs no request for its pods; one whose pod waits is read, and looked at
    again, until a pod is ready or the Job ends."""
    assert not needs_pods(started(2, active=1, ready=0), NOW)  # just created: no news yet
    assert needs_pods(started(15, active=1, ready=0), NOW)
    assert not needs_pods(started(15, active=1, ready=1), NOW)  # the trainer runs
    assert not needs_pods(started(15, conditions=[cond("Complete")]), NOW)
    assert not needs_pods({**started(15, active=1), "spec": {"suspend": True}}, NOW)
    assert not needs_pods(None, NOW)
    assert recheck_after(started(2, active=1)) == RECHECK_SECONDS
    assert recheck_after(started(15, active=1, ready=1)) is None
    assert recheck_after(started(15, conditions=[cond("Failed")])) is None


def test_a_pod_that_cannot_start_is_the_trainingjobs_reason_not_just_waiting() -> None:
    waiting = observe(started(30, active=1, ready=0), None, None)
    problem = PodProblem("lr-train-abc", "CreateContainerConfigError", 'secret "s3" not found', "create the Secret")
    obs = with_pod_problem(waiting, problem)
    assert obs.phase == waiting.phase and obs.step is Step.WAIT
    r = ready(obs.conditions)
    assert (r.status, r.reason) == (False, "CreateContainerConfigError")
    assert r.message == 'pod lr-train-abc: secret "s3" not found; create the Secret' == obs.message
    reconciling = next(c for c in obs.conditions if c.type == "Reconciling")
    stalled = next(c for c in obs.conditions if c.type == "Stalled")
    assert reconciling.status is True and stalled.status is False  # the kubelet keeps trying
    assert with_pod_problem(waiting, None) == waiting
    done = observe(started(30, conditions=[cond("Complete")]), None, "bc-v1")
    assert with_pod_problem(done, problem) == done  # a finished training is not reopened by a stale pod


def test_the_trainers_last_words_come_from_the_newest_finished_pod_and_an_oom_kill_says_the_limit() -> None:
    def pod(name: str, created: str, phase: str, terminated: dict[str, Any], limit: str = "256Mi") -> dict[str, Any]:
        return {
            "metadata": {"name": name, "creationTimestamp": created},
            "spec": {"containers": [{"name": "trainer", "resources": {"limits": {"memory": limit}}}]},
            "status": {"phase": phase, "containerStatuses": [{"name": "trainer", "state": {"terminated": terminated}}]},
        }

    old = pod("j-1", "2026-01-01T00:00:00Z", "Failed", {"exitCode": 1, "reason": "Error", "message": "first try"})
    new = pod("j-2", "2026-01-01T00:01:00Z", "Failed", {"exitCode": 137, "reason": "OOMKilled", "message": "log"})
    said = training.trainer_words([old, new], failed=True)
    assert said is not None and "OOMKilled (exit code 137): over its memory limit 256Mi" in said
    assert "raise resources.limits.memory" in said and "spec.resources" in said
    assert training.trainer_words([old], failed=True) == "first try"
    done = pod("j-3", "2026-01-01T00:02:00Z", "Succeeded", {"exitCode": 0, "message": '{"artifact": {}}'})
    assert training.trainer_words([old, new, done], failed=False) == '{"artifact": {}}'
    assert training.trainer_words([old], failed=False) is None


DIGEST = "sha256:" + "ab" * 32


def _ran(image_id: str, name: str = "trainer", phase: str = "Succeeded", created: str = "2026-12-07T10:00:00Z") -> Any:
    statuses = [{"name": "sidecar", "imageID": "sha256:" + "cd" * 32}, {"name": name, "imageID": image_id}]
    return {"metadata": {"creationTimestamp": created}, "status": {"phase": phase, "containerStatuses": statuses}}


@pytest.mark.parametrize(
    ("image_id", "found", "pullable"),
    [
        (f"registry.example.com:5000/ml/runtime@{DIGEST}", f"registry.example.com:5000/ml/runtime@{DIGEST}", True),
        (f"docker-pullable://driftline/runtime@{DIGEST}", f"driftline/runtime@{DIGEST}", True),  # dockershim's scheme
        (DIGEST, DIGEST, False),  # an image the node had of its own (containerd, podman): no registry digest
        ("driftline-local://driftline/runtime:0.1.0", None, False),  # the local cluster's process mode
        ("", None, False),
        (f"driftline/runtime@{DIGEST[:-1]}", None, False),
    ],
)
def test_the_image_that_trained_is_the_one_its_node_reported_by_digest(
    image_id: str, found: str | None, pullable: bool
) -> None:
    got = training.trainer_image([_ran(image_id)])
    assert (got.id, got.pullable) == (found, pullable) if found else got is None


def test_the_trainer_image_comes_from_the_newest_succeeded_pod_and_its_trainer_container() -> None:
    old = _ran(f"r/old@{DIGEST}", created="2026-12-07T09:00:00Z")
    failed = _ran(f"r/failed@{DIGEST}", phase="Failed", created="2026-12-07T11:00:00Z")
    new = _ran(f"r/new@{DIGEST}", created="2026-12-07T10:00:00Z")
    got = training.trainer_image([old, failed, new])
    assert got is not None and got.id == f"r/new@{DIGEST}"
    custom = _ran(f"r/custom@{DIGEST}", name="mine")  # a template's container: its first one
    assert training.trainer_image([custom]) == training.TrainerImage("sha256:" + "cd" * 32, False)


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("driftline/runtime:0.1.0", f"driftline/runtime@{DIGEST}"),
        ("registry.example.com:5000/ml/runtime:1", f"registry.example.com:5000/ml/runtime@{DIGEST}"),
        ("registry.example.com:5000/ml/runtime", f"registry.example.com:5000/ml/runtime@{DIGEST}"),
        (f"driftline/runtime@sha256:{'ef' * 32}", f"driftline/runtime@{DIGEST}"),
    ],
)
def test_a_built_in_trainers_version_serves_the_bytes_that_trained_it(image: str, pinned: str) -> None:
    assert training.pinned(image, training.TrainerImage(f"mirror.local/runtime@{DIGEST}", True)) == pinned
    assert training.pinned(image, training.TrainerImage(DIGEST, False)) == image  # not pullable by that id
    assert training.pinned(image, None) == image
