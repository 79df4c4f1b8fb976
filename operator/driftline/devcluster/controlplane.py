"""The local control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and the pod runner.

Usable from Python (`LocalCluster(dir).start()`) and from the command line (`driftline dev cluster up|down`).
Ports are chosen free at start, so two clusters run side by side; everything lives under one directory.
"""

from __future__ import annotations

import json
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import requests
import urllib3

from driftline.devcluster import binaries, procs
from driftline.devcluster.kubeconfig import write_kubeconfig
from driftline.devcluster.pki import Pki, create_pki
from driftline.devcluster.podrunner import oci, oci_io


def service_cidr(pod_ip_prefix: str) -> str:
    """The cluster's Service range: the upper half of its own loopback /16, which pod IPs never reach (eight nodes'
    ranges end below it), so the pod runner's service proxy can bind any ClusterIP (podrunner/services.py). 32,766
    Services: the memory benchmark's 1,000 InferenceServices and its plain client's 1,000 more fill a /22."""
    return f"{pod_ip_prefix}.128.0/17"


def kubernetes_service_ip(pod_ip_prefix: str) -> str:
    return f"{pod_ip_prefix}.128.1"


NODE_NAMES = tuple(f"driftline-local-{i}" for i in range(1, 9))
"""The pod runners' nodes, in order; a cluster has the first `nodes` of them."""
DEFAULT_NODES = 2
"""Two nodes: enough that a pod is placed away from another, a ReadWriteOnce claim cannot follow it, and nothing
passes only because every pod shares one machine's view."""

_AUDIT_POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
  # The control plane's own heartbeats (node leases, leader election) are noise; a lease anywhere else is logged, so
  # an operator taking one shows up (tests/e2e/test_helm.py compares the chart's RBAC with what it used).
  - level: None
    resources: [{group: "coordination.k8s.io", resources: ["leases"]}]
    namespaces: ["kube-system", "kube-node-lease"]
  - level: Metadata
"""


class ClusterError(RuntimeError):
    pass


@dataclass
class ClusterState:
    """What `down` and `status` need to find a running cluster again; saved as cluster.json."""

    directory: str
    server: str
    kubeconfig: str
    pod_ip_prefix: str
    ports: dict[str, int] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)


class LocalCluster:
    def __init__(
        self,
        directory: Path | str,
        *,
        pod_runner: bool = True,
        nodes: int = DEFAULT_NODES,
        controllers: bool = True,
        apiserver: tuple[Path, str] | None = None,
        containers: bool = False,
    ) -> None:
        """`controllers=False`: etcd and the API server only (what validating objects needs). `apiserver`: another
        kube-apiserver binary and its version (binaries.min_apiserver(): the oldest Kubernetes Driftline supports)."""
        if not 1 <= nodes <= len(NODE_NAMES):
            raise ValueError(f"a local cluster has 1 to {len(NODE_NAMES)} nodes, not {nodes}")
        if pod_runner and not controllers:
            raise ValueError("the pod runner needs the controllers (its pods come from Deployments and Jobs)")
        self.dir = Path(directory).resolve()
        self.pod_runner = pod_runner
        self.containers = containers  # container mode: the project's images run as real OCI containers (podman)
        self.controllers = controllers
        self.apiserver = apiserver
        self.nodes = NODE_NAMES[:nodes]
        self.state: ClusterState | None = None
        self._pki: Pki | None = None
        self._urllib3_quiet()

    # -- public API -----------------------------------------------------------------------------------------------

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    def start(self, timeout: float = 180.0, progress: bool = True) -> ClusterState:
        say = _say if progress else (lambda _msg: None)
        if (self.dir / "cluster.json").exists() and self.running():
            raise ClusterError(f"a cluster already runs in {self.dir}; `driftline dev cluster down` it first")
        started = time.monotonic()
        bins = binaries.bin_dir()
        self.dir.mkdir(parents=True, exist_ok=True)
        logs = self.dir / "logs"
        say(f"local control plane in {self.dir}")
        # One /16 of the loopback range per cluster for pod IPs and Services; 127.0.0.0/16 stays for ordinary localhost.
        prefix = f"127.{random.randint(20, 250)}"
        pki = self._pki = create_pki(self.dir / "pki", kubernetes_service_ip(prefix))
        ports = {
            "etcd": procs.free_port(),
            "etcd-peer": procs.free_port(),
            "apiserver": procs.free_port(),
            "controller-manager": procs.free_port(),
            "scheduler": procs.free_port(),
        }
        server = f"https://127.0.0.1:{ports['apiserver']}"
        state = ClusterState(
            directory=str(self.dir),
            server=server,
            kubeconfig=str(self.kubeconfig),
            pod_ip_prefix=prefix,
            ports=ports,
            versions={**binaries.versions(), **({"KUBERNETES_VERSION": self.apiserver[1]} if self.apiserver else {})},
        )
        self.state = state
        write_kubeconfig(
            self.kubeconfig,
            server=server,
            ca_cert=pki.ca_cert,
            user="driftline-admin",
            client_cert=pki.admin.cert,
            client_key=pki.admin.key,
        )
        try:
            self._start_etcd(bins, logs, ports)
            say(f"etcd {state.versions.get('ETCD_VERSION', '')} on :{ports['etcd']}")
            self._start_apiserver(bins, logs, ports, pki)
            self._wait_http(f"{server}/readyz", pki, timeout, "kube-apiserver")
            say(f"kube-apiserver {state.versions.get('KUBERNETES_VERSION', '')} ready at {server}")
            if not self.controllers:  # etcd and the API server only
                say(f"API server only, up in {time.monotonic() - started:.1f}s; kubeconfig: {self.kubeconfig}")
                return state
            self._start_controller_manager(bins, logs, ports, pki, server)
            self._start_scheduler(bins, logs, ports, pki, server)
            self._wait_http(
                f"https://127.0.0.1:{ports['controller-manager']}/healthz", None, timeout, "controller-manager"
            )
            self._wait_http(f"https://127.0.0.1:{ports['scheduler']}/healthz", None, timeout, "kube-scheduler")
            say("kube-controller-manager and kube-scheduler healthy")
            if self.pod_runner:
                for index, node in enumerate(self.nodes):
                    self._start_pod_runner(logs, node, index)
                for node in self.nodes:
                    self._wait_node_ready(pki, timeout, node)
                say(f"pod runners: nodes {', '.join(self.nodes)} Ready, pod IPs {prefix}.x.y")
        except BaseException:
            self.stop()
            raise
        finally:
            self._save()
        say(f"cluster up in {time.monotonic() - started:.1f}s; kubeconfig: {self.kubeconfig}")
        return state

    def stop(self) -> None:
        """Stop everything this cluster started, pods first, leaving no process behind."""
        state = self.state or self._load()
        if state:
            runners = [pid for name, pid in state.pids.items() if name.startswith("pod-runner") and pid]
            if runners:  # all at once: each stops its pods within their grace
                procs.terminate(runners, grace=15.0)
            for name in ["scheduler", "controller-manager", "apiserver", "etcd"]:
                pid = state.pids.get(name)
                if pid:
                    procs.terminate([pid], grace=5.0)
        leftovers = procs.marked_pids(self.dir)
        if leftovers:
            procs.terminate(leftovers, grace=3.0)
        if shutil.which("podman"):  # containers a runner stopped too late for (or a killed one) left running
            oci_io.remove_labelled(f"{oci.CLUSTER_LABEL}={self.dir}")
        if state:
            state.pids = {}
            self.state = state
            self._save()

    def restart(self, component: str, down_for: float = 0.0) -> None:
        """SIGKILL the API server or etcd, leave it down `down_for` seconds, then start it again on the same port and
        data: the crash and recovery clients must survive. Only for a cluster this object started."""
        if self.state is None or self._pki is None:
            raise ClusterError("restart needs the LocalCluster object that started the cluster")
        if component not in ("apiserver", "etcd"):
            raise ClusterError(f"can restart only apiserver or etcd, not {component}")
        bins, logs, ports, pki = binaries.bin_dir(), self.dir / "logs", self.state.ports, self._pki
        procs.kill(self.state.pids[component])
        time.sleep(down_for)
        if component == "etcd":
            self._start_etcd(bins, logs, ports)
        else:
            self._start_apiserver(bins, logs, ports, pki)
        self._wait_http(f"{self.state.server}/readyz", pki, 120, "kube-apiserver")

    def running(self) -> bool:
        state = self.state or self._load()
        return bool(state and state.pids and all(procs.alive(p) for p in state.pids.values()))

    def pki(self) -> Path:
        return self.dir / "pki"

    # -- components -----------------------------------------------------------------------------------------------

    def _record(self, name: str, proc_pid: int) -> None:
        assert self.state is not None
        self.state.pids[name] = proc_pid
        self._save()

    def _start_etcd(self, bins: Path, logs: Path, ports: dict[str, int]) -> None:
        client = f"http://127.0.0.1:{ports['etcd']}"
        peer = f"http://127.0.0.1:{ports['etcd-peer']}"
        argv = [
            str(bins / "etcd"),
            "--name=default",
            f"--data-dir={self.dir / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=default={peer}",
            "--unsafe-no-fsync=true",  # a throwaway cluster: durability across power loss is not the point
            "--log-level=warn",
        ]
        p = procs.spawn(argv, cluster_dir=self.dir, log=logs / "etcd.log")
        self._record("etcd", p.pid)
        self._wait_http(f"{client}/health", None, 60, "etcd")

    def _service_cidr(self) -> str:
        assert self.state is not None
        return service_cidr(self.state.pod_ip_prefix)

    def _start_apiserver(self, bins: Path, logs: Path, ports: dict[str, int], pki: Pki) -> None:
        (self.dir / "audit-policy.yaml").write_text(_AUDIT_POLICY)
        argv = [
            str(self.apiserver[0] if self.apiserver else bins / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{ports['etcd']}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={ports['apiserver']}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--client-ca-file={pki.ca_cert}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki.sa_pub}",
            f"--service-account-signing-key-file={pki.sa_key}",
            f"--service-cluster-ip-range={self._service_cidr()}",
            "--authorization-mode=RBAC",  # RBAC on, so the operator's and the chart's RBAC bugs show
            "--allow-privileged=true",
            "--endpoint-reconciler-type=none",  # a loopback advertise address is not a valid endpoint
            f"--audit-policy-file={self.dir / 'audit-policy.yaml'}",
            f"--audit-log-path={logs / 'audit.log'}",
            "--audit-log-maxsize=200",
            "--audit-log-maxbackup=1",
            f"--cert-dir={self.dir / 'pki'}",
            "--profiling=false",
            "--v=1",
        ]
        p = procs.spawn(argv, cluster_dir=self.dir, log=logs / "kube-apiserver.log")
        self._record("apiserver", p.pid)

    def _component_kubeconfig(self, name: str, cert: Path, key: Path, server: str, pki: Pki) -> Path:
        return write_kubeconfig(
            self.dir / f"{name}.kubeconfig",
            server=server,
            ca_cert=pki.ca_cert,
            user=name,
            client_cert=cert,
            client_key=key,
        )

    def _start_controller_manager(self, bins: Path, logs: Path, ports: dict[str, int], pki: Pki, server: str) -> None:
        kc = self._component_kubeconfig(
            "controller-manager", pki.controller_manager.cert, pki.controller_manager.key, server, pki
        )
        argv = [
            str(bins / "kube-controller-manager"),
            f"--kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}",
            f"--authorization-kubeconfig={kc}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports['controller-manager']}",
            f"--cert-dir={self.dir / 'pki' / 'controller-manager'}",
            f"--root-ca-file={pki.ca_cert}",
            f"--service-account-private-key-file={pki.sa_key}",
            f"--service-cluster-ip-range={self._service_cidr()}",
            "--use-service-account-credentials=true",  # each controller under its own bootstrap RBAC role
            "--leader-elect=false",
            "--cluster-name=driftline-local",
            # Upstream's client limit (20 requests/s) made the controllers, not the operator, the bottleneck when a
            # thousand Deployments appear at once (bench memory: two minutes for their ReplicaSets); a production
            # control plane is sized for its cluster.
            "--kube-api-qps=200",
            "--kube-api-burst=400",
            "--v=1",
        ]
        p = procs.spawn(argv, cluster_dir=self.dir, log=logs / "kube-controller-manager.log")
        self._record("controller-manager", p.pid)

    def _start_scheduler(self, bins: Path, logs: Path, ports: dict[str, int], pki: Pki, server: str) -> None:
        kc = self._component_kubeconfig("scheduler", pki.scheduler.cert, pki.scheduler.key, server, pki)
        argv = [
            str(bins / "kube-scheduler"),
            f"--kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}",
            f"--authorization-kubeconfig={kc}",
            "--bind-address=127.0.0.1",
            f"--secure-port={ports['scheduler']}",
            f"--cert-dir={self.dir / 'pki' / 'scheduler'}",
            "--leader-elect=false",
            "--v=1",
        ]
        p = procs.spawn(argv, cluster_dir=self.dir, log=logs / "kube-scheduler.log")
        self._record("scheduler", p.pid)

    def _start_pod_runner(self, logs: Path, node: str, index: int) -> None:
        """One node's runner. Pod directories (and their emptyDirs) are per pod under one root; claims' directories
        are shared by every node, as network storage is, and provisioned by the first runner only."""
        assert self.state is not None
        argv = [
            sys.executable,
            "-m",
            "driftline.devcluster.podrunner",
            "--kubeconfig",
            str(self.kubeconfig),
            "--root",
            str(self.dir / "runner"),
            "--node-name",
            node,
            "--node-index",
            str(index),
            "--volumes-root",
            str(self.dir / "runner" / "volumes"),
            "--pod-ip-prefix",
            self.state.pod_ip_prefix,
            *([] if index == 0 else ["--no-provision"]),
            *(["--containers"] if self.containers else []),
        ]
        p = procs.spawn(argv, cluster_dir=self.dir, log=logs / f"pod-runner-{node}.log")
        self._record(f"pod-runner-{node}", p.pid)

    # -- waiting ---------------------------------------------------------------------------------------------------

    def _wait_http(self, url: str, pki: Pki | None, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            self._check_alive(what)
            try:
                if pki:
                    r = requests.get(
                        url, cert=(str(pki.admin.cert), str(pki.admin.key)), verify=str(pki.ca_cert), timeout=5
                    )
                else:
                    r = requests.get(url, verify=False, timeout=5)
                if r.status_code == 200:
                    return
                last = f"HTTP {r.status_code}: {r.text[:200]}"
            except requests.RequestException as exc:
                last = str(exc)
            time.sleep(0.3)
        raise ClusterError(f"{what} not healthy after {timeout:.0f}s ({last}); see {self.dir / 'logs'}")

    def _wait_node_ready(self, pki: Pki, timeout: float, node: str) -> None:
        assert self.state is not None
        url = f"{self.state.server}/api/v1/nodes/{node}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive(f"pod-runner-{node}")
            r = requests.get(url, cert=(str(pki.admin.cert), str(pki.admin.key)), verify=str(pki.ca_cert), timeout=5)
            if r.status_code == 200:
                conds = r.json().get("status", {}).get("conditions", [])
                if any(c["type"] == "Ready" and c["status"] == "True" for c in conds):
                    return
            time.sleep(0.3)
        raise ClusterError(
            f"node {node} not Ready after {timeout:.0f}s; see {self.dir / 'logs' / f'pod-runner-{node}.log'}"
        )

    def _check_alive(self, what: str) -> None:
        assert self.state is not None
        for name, pid in self.state.pids.items():
            if not procs.alive(pid):
                log = self.dir / "logs"
                raise ClusterError(f"{name} exited while waiting for {what}; see {log}")

    # -- state -------------------------------------------------------------------------------------------------------

    def _save(self) -> None:
        if self.state:
            (self.dir / "cluster.json").write_text(json.dumps(asdict(self.state), indent=2))

    def _load(self) -> ClusterState | None:
        path = self.dir / "cluster.json"
        if not path.exists():
            return None
        self.state = ClusterState(**json.loads(path.read_text()))
        return self.state

    @staticmethod
    def _urllib3_quiet() -> None:
        # The component health ports serve self-signed certificates; the check only needs a 200.
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)


def _say(msg: str) -> None:
    print(f"[driftline dev] {msg}", file=sys.stderr, flush=True)
