"""The pod runner resolves env references as a kubelet does: Secrets read through the API at container start, and a
missing Secret or key keeps the container waiting in CreateContainerConfigError instead of starting it."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from driftline.devcluster.podrunner.sandbox import ConfigError, PodSandbox
from tests.pods import RUNTIME_IMAGE

pytestmark = pytest.mark.unit


class FakeApi:
    """Objects by API path; records what was read."""

    def __init__(self, objects: dict[str, Any]) -> None:
        self.objects, self.reads = objects, []

    def get_or_none(self, path: str) -> Any:
        self.reads.append(path)
        return self.objects.get(path)


SECRET = "/api/v1/namespaces/ns/secrets/data-credentials"
CREDENTIALS = {"data": {"authorization": base64.b64encode(b"Bearer abc").decode()}}


def sandbox(tmp_path: Path, api: FakeApi, env: list[dict[str, Any]]) -> tuple[PodSandbox, list[tuple[str, str, str]]]:
    pod = {
        "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "trainer", "image": RUNTIME_IMAGE, "args": ["--help"], "env": env}],
        },
    }
    events: list[tuple[str, str, str]] = []
    box = PodSandbox(
        api,  # type: ignore[arg-type]
        pod,
        tmp_path,
        "127.9.0.2",
        "https://127.0.0.1:1",
        "ca.crt",
        tmp_path,
        event=lambda *e: events.append(e),
        wake=lambda: None,
    )
    return box, events


def ref(name: str = "data-credentials", key: str = "authorization", **extra: Any) -> list[dict[str, Any]]:
    return [{"name": "AUTH", "valueFrom": {"secretKeyRef": {"name": name, "key": key, **extra}}}]


def test_a_secret_key_becomes_the_variable(tmp_path: Path) -> None:
    api = FakeApi({SECRET: CREDENTIALS})
    box, _ = sandbox(tmp_path, api, ref())
    assert box.resolve_env(box.pod["spec"]["containers"][0], {})["AUTH"] == "Bearer abc"
    assert api.reads == [SECRET]


@pytest.mark.parametrize(
    ("objects", "env", "message"),
    [
        ({}, ref(), 'secret "data-credentials" not found'),
        ({SECRET: CREDENTIALS}, ref(key="token"), "couldn't find key token in Secret ns/data-credentials"),
    ],
)
def test_a_missing_secret_or_key_is_a_config_error_with_the_kubelets_message(
    tmp_path: Path, objects: dict[str, Any], env: list[dict[str, Any]], message: str
) -> None:
    box, _ = sandbox(tmp_path, FakeApi(objects), env)
    with pytest.raises(ConfigError, match=message):
        box.resolve_env(box.pod["spec"]["containers"][0], {})


@pytest.mark.parametrize("objects", [{}, {SECRET: {"data": {}}}])
def test_an_optional_reference_may_be_missing(tmp_path: Path, objects: dict[str, Any]) -> None:
    box, _ = sandbox(tmp_path, FakeApi(objects), ref(optional=True))
    assert "AUTH" not in box.resolve_env(box.pod["spec"]["containers"][0], {})


def test_the_container_waits_in_create_container_config_error_until_the_secret_exists(tmp_path: Path) -> None:
    api = FakeApi({})
    box, events = sandbox(tmp_path, api, ref())
    box.step()
    (container,) = box.main
    assert container.proc is None
    status = box.status(None)
    assert status["phase"] == "Pending"
    waiting = status["containerStatuses"][0]["state"]["waiting"]
    assert waiting == {"reason": "CreateContainerConfigError", "message": 'secret "data-credentials" not found'}
    assert events == [("Warning", "Failed", 'Error: secret "data-credentials" not found')]
    container.next_start = 0.0
    box.step()  # the same cause again: no second Event (a kubelet would bump the first one's count)
    assert len(events) == 1 and len(api.reads) == 2
    api.objects[SECRET] = CREDENTIALS
    container.next_start = 0.0
    box.step()
    try:
        assert container.proc is not None and container.env["AUTH"] == "Bearer abc"
        assert box.status(None)["containerStatuses"][0]["state"].get("running")
    finally:
        box.stop(5.0)
