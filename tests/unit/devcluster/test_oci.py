"""Container mode's `podman run` command: what of a pod's spec a kubelet honours, as flags."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from driftline.devcluster.podrunner import oci

pytestmark = pytest.mark.unit

LIMITS = oci.Limits(nofile=1024, nproc=512)


def command(container: dict[str, Any], pod_spec: dict[str, Any] | None = None, **kw: Any) -> list[str]:
    args: dict[str, Any] = {
        "name": "c1",
        "image": "driftline/runtime:0.1.0",
        "pod_spec": pod_spec or {},
        "container": {"name": "server", **container},
        "env": {"HOSTNAME": "bc-1"},
        "mounts": {},
        "read_only": set(),
        "pod_ip": "127.1.0.5",
        "site_dir": "/site",
        "limits": LIMITS,
        "image_user": 65532,
        **kw,
    }
    return oci.run_command(**args)


def pairs(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == flag]


@pytest.mark.parametrize(
    ("text", "value"),
    [("512Mi", 512 * 2**20), ("1Gi", 2**30), ("1.5G", Decimal("1.5e9")), ("500m", Decimal("0.5")), ("2", 2),
     ("100k", 100_000)],
)  # fmt: skip
def test_quantities(text: str, value: Decimal) -> None:
    assert oci.quantity(text) == value


def test_the_restricted_profile_becomes_flags() -> None:
    pod_sc = {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 2000,
              "supplementalGroups": [3000], "seccompProfile": {"type": "RuntimeDefault"}}  # fmt: skip
    sc = {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    argv = command({"securityContext": sc}, {"securityContext": pod_sc})
    assert pairs(argv, "--user") == ["65532:65532"] and pairs(argv, "--group-add") == ["2000", "3000"]
    assert "--read-only" in argv and pairs(argv, "--tmpfs") == ["/tmp"]  # no volume at /tmp: a private one
    assert pairs(argv, "--cap-drop") == ["ALL"] and pairs(argv, "--security-opt") == ["no-new-privileges"]
    assert "seccomp=unconfined" not in argv  # RuntimeDefault: the engine's default profile


def test_the_containers_own_context_wins_over_the_pods() -> None:
    pod_sc = {"runAsUser": 65532, "runAsGroup": 7, "seccompProfile": {"type": "Unconfined"}}
    argv = command(
        {"securityContext": {"runAsUser": 1001, "capabilities": {"add": ["net_bind_service"]}}},
        {"securityContext": pod_sc},
    )
    assert pairs(argv, "--user") == ["1001:7"] and pairs(argv, "--cap-add") == ["NET_BIND_SERVICE"]
    assert pairs(argv, "--security-opt") == ["seccomp=unconfined"]


@pytest.mark.parametrize(
    ("sc", "image_user"),
    [({"runAsNonRoot": True, "runAsUser": 0}, 65532), ({"runAsNonRoot": True}, None)],
)
def test_run_as_non_root_refuses_a_root_user_as_a_kubelet_does(sc: dict[str, Any], image_user: int | None) -> None:
    with pytest.raises(oci.NotRunnable, match="runAsNonRoot"):
        command({"securityContext": sc}, image_user=image_user)


def test_limits_mounts_env_and_command() -> None:
    container = {
        "resources": {"limits": {"memory": "256Mi", "cpu": "500m"}},
        "command": ["driftline-runtime", "serve"],
        "args": ["--port", "8080"],
        "workingDir": "/work",
    }
    argv = command(
        container,
        env={"HOSTNAME": "bc-1", "A": "1", "PYTHONPATH": "/app"},
        mounts={"/models": "/host/models", "/tmp": "/host/tmp"},
        read_only={"/models"},
        label="dev.driftline.cluster=/c",
    )
    assert pairs(argv, "--memory") == [str(256 * 2**20)] and pairs(argv, "--memory-swap") == [str(256 * 2**20)]
    assert pairs(argv, "--cpus") == ["0.5"]
    assert set(pairs(argv, "-v")) == {"/host/models:/models:ro", "/host/tmp:/tmp", f"/site:{oci.SITE_MOUNT}:ro"}
    env = pairs(argv, "-e")
    assert {"A=1", "DRIFTLINE_POD_IP=127.1.0.5", f"PYTHONPATH={oci.SITE_MOUNT}:/app"} <= set(env)
    assert pairs(argv, "--network") == ["host"] and pairs(argv, "-w") == ["/work"]
    assert pairs(argv, "--label") == ["dev.driftline.cluster=/c"]
    assert pairs(argv, "--ulimit") == ["nofile=1024:1024", "nproc=512:512"]
    # command replaces the image's ENTRYPOINT, args its CMD: entrypoint, image, the rest after it.
    assert pairs(argv, "--entrypoint") == ["driftline-runtime"]
    assert argv[argv.index("driftline/runtime:0.1.0") :] == ["driftline/runtime:0.1.0", "serve", "--port", "8080"]


def test_a_memory_limit_goes_to_the_parent_cgroup_when_one_holds_it() -> None:
    argv = command({"resources": {"limits": {"memory": "64Mi", "cpu": "1"}}}, cgroup_parent="/driftline/c1")
    assert "--memory" not in argv and pairs(argv, "--cgroup-parent") == ["/driftline/c1"]
    assert pairs(argv, "--cpus") == ["1"]


def test_exec_probes_run_inside_the_container() -> None:
    spec = {"name": "s", "livenessProbe": {"exec": {"command": ["cat", "/tmp/ok"]}, "periodSeconds": 5},
            "readinessProbe": {"httpGet": {"port": 8080}}}  # fmt: skip
    out = oci.exec_in_container(spec, "c1")
    assert out["livenessProbe"]["exec"]["command"] == [*oci.ENGINE, "exec", "c1", "cat", "/tmp/ok"]
    assert out["livenessProbe"]["periodSeconds"] == 5 and out["readinessProbe"] == spec["readinessProbe"]
