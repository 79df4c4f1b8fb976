"""The pod runner's pure parts: $(VAR) expansion, path mapping, image references, pod phase."""

from __future__ import annotations

import pytest

from driftline.devcluster.podrunner.downward import UnsupportedField, field_value
from driftline.devcluster.podrunner.expand import PathMap, expand
from driftline.devcluster.podrunner.images import lookup, repository_of
from driftline.devcluster.podrunner.status import ContainerState, pod_phase, pod_status

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("$(A)", "1"),
        ("x-$(A)-$(B)", "x-1-two"),
        ("$$(A)", "$(A)"),  # escaped
        ("$(MISSING)", "$(MISSING)"),  # unknown references stay, as in Kubernetes
        ("$A", "$A"),
        ("$$", "$"),
    ],
)
def test_expand_follows_kubernetes(value: str, expected: str) -> None:
    assert expand(value, {"A": "1", "B": "two"}) == expected


def test_path_map_rewrites_at_path_boundaries_only() -> None:
    m = PathMap({"/mnt/data": "/h/pvc", "/mnt/data/models": "/h/models", "/dev/termination-log": "/h/term"})
    assert m.translate("/mnt/data/x.csv") == "/h/pvc/x.csv"
    assert m.translate("/mnt/data/models/v1") == "/h/models/v1"  # the longest mapping wins
    assert m.translate("--output=/mnt/data/out") == "--output=/h/pvc/out"
    assert m.translate("/dev/termination-log") == "/h/term"
    assert m.translate("/mnt/database") == "/mnt/database"  # not a path boundary
    assert m.translate("http://host/mnt/data") == "http://host/mnt/data"
    assert m.host_path("/elsewhere") is None


@pytest.mark.parametrize(
    ("image", "repo", "known"),
    [
        ("driftline/runtime:0.1.0", "driftline/runtime", True),
        ("registry.local:5000/driftline/runtime:dev", "driftline/runtime", True),
        ("driftline/operator@sha256:abc", "driftline/operator", True),
        ("nginx:1.27", "nginx", False),
        ("library/python:3.11", "library/python", False),
    ],
)
def test_image_lookup(image: str, repo: str, known: bool) -> None:
    assert repository_of(image) == repo
    assert (lookup(image) is not None) is known


def c(state: str, exit_code: int | None = None, started: bool = True) -> ContainerState:
    return ContainerState(name="c", image="i", state=state, exit_code=exit_code, ever_started=started)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("policy", "init", "main", "phase"),
    [
        ("Never", [], [c("waiting", started=False)], "Pending"),
        ("Never", [], [c("running")], "Running"),
        ("Never", [], [c("terminated", 0)], "Succeeded"),
        ("Never", [], [c("terminated", 1)], "Failed"),
        ("OnFailure", [], [c("terminated", 1)], "Running"),
        ("Always", [], [c("terminated", 0)], "Running"),
        ("Never", [c("running")], [c("waiting", started=False)], "Pending"),
        ("Never", [c("terminated", 2)], [c("waiting", started=False)], "Failed"),
        ("Always", [c("terminated", 0)], [c("running"), c("terminated", 0)], "Running"),
    ],
)
def test_pod_phase(policy: str, init: list[ContainerState], main: list[ContainerState], phase: str) -> None:
    assert pod_phase(policy, init, main) == phase


def test_ready_condition_keeps_transition_time_while_unchanged() -> None:
    running = c("running")
    running.ready = True
    first = pod_status(
        restart_policy="Always",
        init=[],
        main=[running],
        pod_ip="127.1.0.2",
        host_ip="127.0.0.1",
        start_time="t0",
        now="t1",
    )
    again = pod_status(
        restart_policy="Always",
        init=[],
        main=[running],
        pod_ip="127.1.0.2",
        host_ip="127.0.0.1",
        start_time="t0",
        now="t2",
        previous_conditions=first["conditions"],
    )
    ready = next(x for x in again["conditions"] if x["type"] == "Ready")
    assert ready["status"] == "True" and ready["lastTransitionTime"] == "t1"


def test_downward_api_fields() -> None:
    pod = {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u", "labels": {"app": "x"}},
        "spec": {"nodeName": "n", "serviceAccountName": "sa"},
    }
    assert field_value(pod, "metadata.name", "127.1.0.2") == "p"
    assert field_value(pod, "status.podIP", "127.1.0.2") == "127.1.0.2"
    assert field_value(pod, "metadata.labels['app']", "ip") == "x"
    with pytest.raises(UnsupportedField):
        field_value(pod, "spec.unknown", "ip")
