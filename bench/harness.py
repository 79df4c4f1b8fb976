"""What the benchmarks share: one real local control plane with Driftline's CRDs and the operator running as a real
process, watches that time-stamp every event the moment it arrives, the API server's audit log (server-side
timestamps of every request), percentiles, and the results: a table on stdout and JSON in bench/results/."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import platform
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import requests

from driftline.devcluster import binaries, kubeapi, procs
from driftline.devcluster.controlplane import LocalCluster
from driftline.devcluster.kubeapi import ApiError, KubeApi

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
USER_AGENT = "driftline-bench"
_T0 = time.monotonic()


def say(msg: str) -> None:
    """Progress, on stderr (stdout carries only the tables)."""
    print(f"[bench {time.monotonic() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    pass


def wait_for(what: str, predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.2) -> Any:
    return kubeapi.wait_for(what, predicate, timeout, interval, error=BenchError)


# -- the operator --------------------------------------------------------------------------------------------------


class Operator:
    """`driftline run --all-namespaces` as a real process. Spawned with the cluster's mark, so stopping the cluster
    also ends it should the benchmark itself die before it can."""

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster
        self.log = cluster.dir / "logs" / "bench-operator.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.metrics_url = ""

    def start(self) -> Operator:
        env = {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig)}
        port = procs.free_port()
        self.metrics_url = f"http://127.0.0.1:{port}/metrics"
        argv = [sys.executable, "-m", "driftline.cli", "run", "--all-namespaces", "--metrics-port", str(port)]
        argv += ["--metrics-address", "127.0.0.1"]
        self.proc = procs.spawn(argv, cluster_dir=self.cluster.dir, log=self.log, env=env)
        say(f"operator started (pid {self.proc.pid}, log {self.log})")
        return self

    def check(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            raise BenchError(f"the operator exited; see {self.log}:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            procs.terminate([self.proc.pid], grace=15.0)
            self.proc.wait()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


# -- the environment -----------------------------------------------------------------------------------------------


@dataclass
class Env:
    cluster: LocalCluster
    bin: Path
    api: KubeApi
    operator: Operator
    namespaces: list[str] = field(default_factory=list)

    @property
    def kubeconfig(self) -> str:
        return str(self.cluster.kubeconfig)

    def kubectl(self, *args: str) -> str:
        cmd = [str(self.bin / "kubectl"), "--kubeconfig", self.kubeconfig, *args]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if out.returncode != 0:
            raise BenchError(f"kubectl {' '.join(args)} failed ({out.returncode}): {out.stderr}")
        return out.stdout

    def namespace(self, prefix: str) -> str:
        """A fresh namespace enforcing the restricted Pod Security Standard, deleted when the run ends."""
        name = f"{prefix}-{uuid.uuid4().hex[:5]}"
        self.api.create(
            "/api/v1/namespaces",
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": name, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
            },
        )
        self.namespaces.append(name)
        wait_for(
            "the default ServiceAccount",
            lambda: self.api.get_or_none(f"/api/v1/namespaces/{name}/serviceaccounts/default"),
        )
        return name

    def audit(self) -> AuditLog:
        return AuditLog(self.cluster.dir / "logs" / "audit.log")


@contextlib.contextmanager
def environment(cluster_dir: Path | None) -> Iterator[Env]:
    """A cluster (started here, or the one already running in `cluster_dir`), the CRDs and a fresh operator.

    Whatever this started is stopped on the way out, on failure, Ctrl-C or SIGTERM too. A temporary directory is
    removed; a `cluster_dir` is kept (logs, audit log, pod directories) for a post-mortem.
    """
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    directory = cluster_dir or Path(tempfile.mkdtemp(prefix="driftline-bench-"))
    cluster = LocalCluster(directory)
    reused = cluster_dir is not None and cluster.running()
    env: Env | None = None
    try:
        bins = binaries.bin_dir()
        if reused:
            say(f"reusing the cluster running in {directory}")
            pidfile = directory / "operator.pid"
            if pidfile.exists() and procs.alive(int(pidfile.read_text())):
                raise BenchError(f"an operator already runs against {directory} (pid file {pidfile}); stop it first")
        else:
            cluster.stop()  # a crashed earlier run may have left processes marked with this directory
            cluster.start(timeout=240)
        env = Env(cluster, bins, KubeApi(cluster.kubeconfig, user_agent=USER_AGENT), Operator(cluster))
        crds = REPO / "crds"
        env.kubectl("apply", "--server-side", "-f", str(crds))
        env.kubectl("wait", "--for=condition=Established", "-f", str(crds), "--timeout=60s")
        env.operator.start()
        yield env
    finally:
        with contextlib.suppress(BaseException):
            if env is not None:
                env.operator.stop()
                if reused:
                    for ns in env.namespaces:
                        with contextlib.suppress(ApiError, requests.RequestException):
                            env.api.delete(f"/api/v1/namespaces/{ns}")
        if not reused:
            say("stopping the cluster")
            cluster.stop()
            if cluster_dir is None:
                shutil.rmtree(directory, ignore_errors=True)
            else:
                say(f"cluster directory kept: {directory}")
        signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# -- watches -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """One watch event and when this process received it: `mono` (time.perf_counter) and `wall` (time.time)."""

    mono: float
    wall: float
    type: str
    obj: dict[str, Any]


class Watch:
    """A watch on one collection, in a background thread, from a fresh list on. Every event is kept with the time it
    arrived; `mark()` then `wait(pred, since=mark)` finds the first event after a point that matches."""

    def __init__(self, kubeconfig: str, path: str, **params: str) -> None:
        self.api = KubeApi(kubeconfig, user_agent=f"{USER_AGENT}-watch")
        self.path, self.params = path, params
        self.events: list[Seen] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"watch {path}", daemon=True)
        self._error: BaseException | None = None

    def __enter__(self) -> Watch:
        self._rv = self._list()
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self.api.session.close()

    def _list(self) -> str:
        return str(self.api.get(self.path, **self.params)["metadata"]["resourceVersion"])

    def _loop(self) -> None:
        rv = self._rv
        while not self._stop.is_set():
            try:
                for event in self.api.watch(self.path, rv, timeout_seconds=240, **self.params):
                    mono, wall = time.perf_counter(), time.time()
                    rv = event["object"]["metadata"]["resourceVersion"]
                    if event["type"] == "BOOKMARK":
                        continue
                    with self._cond:
                        self.events.append(Seen(mono, wall, event["type"], event["object"]))
                        self._cond.notify_all()
            except ApiError as e:
                if e.status != 410:
                    self._fail(e)
                    return
                rv = self._list()  # expired: events in between are lost, but a wait() would then time out loudly
            except (requests.RequestException, ValueError) as e:
                if self._stop.is_set():
                    return
                self._fail(e)
                return

    def _fail(self, e: BaseException) -> None:
        with self._cond:
            self._error = e
            self._cond.notify_all()

    def mark(self) -> int:
        with self._cond:
            return len(self.events)

    def wait(self, what: str, pred: Callable[[Seen], bool], since: int, timeout: float = 60.0) -> Seen:
        deadline = time.monotonic() + timeout
        i = since
        with self._cond:
            while True:
                while i < len(self.events):
                    if pred(self.events[i]):
                        return self.events[i]
                    i += 1
                if self._error is not None:
                    raise BenchError(f"the watch on {self.path} failed: {self._error}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchError(f"timed out after {timeout:.0f}s waiting for {what} on {self.path}")
                self._cond.wait(timeout=min(left, 1.0))


# -- the audit log -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One request as the API server's audit log records it, with the server's own timestamps (seconds since the
    epoch, the same clock as time.time() on this machine)."""

    received: float
    completed: float
    verb: str
    uri: str
    user_agent: str
    code: int


class AuditLog:
    """The cluster's audit log (level Metadata, every request but leases), read from an offset on."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def offset(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def since(self, offset: int) -> list[Request]:
        out = []
        with self.path.open("rb") as f:
            f.seek(offset)
            for i, line in enumerate(f):
                if not line.endswith(b"\n"):
                    break  # a line still being written
                try:
                    ev = json.loads(line)
                except json.JSONDecodeError:
                    if i == 0:  # the offset was taken while this line was half written: its tail, not a request
                        continue
                    raise
                if ev.get("stage") != "ResponseComplete":
                    continue
                out.append(
                    Request(
                        received=_ts(ev["requestReceivedTimestamp"]),
                        completed=_ts(ev["stageTimestamp"]),
                        verb=ev.get("verb", ""),
                        uri=unquote(ev.get("requestURI", "")),
                        user_agent=ev.get("userAgent", ""),
                        code=int((ev.get("responseStatus") or {}).get("code") or 0),
                    )
                )
        return out


def _ts(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# -- statistics and results ----------------------------------------------------------------------------------------


def percentile(samples: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    xs = sorted(samples)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


@dataclass
class Row:
    """One measurement: its samples in seconds and how to read it."""

    name: str
    samples: list[float]
    target: float | None = None
    """Upper bound the p50 and p99 should stay under, when the issue sets one."""
    baseline: bool = False
    """The raw API server's number the others are divided by."""
    ratio: bool = True
    """Whether dividing by the baseline means something (not for whole rollouts, say)."""
    note: str = ""
    against: str | None = None
    """The name of the row this one is divided by, when not the run's one baseline (one baseline per size, say)."""

    def stats(self) -> dict[str, float]:
        return {
            "p50": percentile(self.samples, 0.5),
            "p99": percentile(self.samples, 0.99),
            "max": max(self.samples) if self.samples else float("nan"),
            "min": min(self.samples) if self.samples else float("nan"),
        }


@dataclass
class Result:
    benchmark: str
    rows: list[Row]
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    started: str = ""
    seconds: float = 0.0
    unit: str = "s"
    """What the samples are: seconds (printed as ms or s), or "MB"."""

    def baseline_p50(self, row: Row | None = None) -> float | None:
        """The p50 `row` is divided by: its own `against` row's, or the run's first baseline's."""
        if row is not None and row.against is not None:
            base = next((r for r in self.rows if r.name == row.against), None)
        else:
            base = next((r for r in self.rows if r.baseline), None)
        return base.stats()["p50"] if base and base.samples else None

    def table(self) -> str:
        header = ("measurement", "trials", "p50", "p99", "max", "target", "vs API p50")
        lines = [header]
        for r in self.rows:
            s = r.stats()
            base = self.baseline_p50(r)
            ratio = (
                "baseline" if r.baseline else (ratio_text(s["p50"] / base) if base and r.samples and r.ratio else "")
            )
            target = f"< {r.target:g} {self.unit}" if r.target is not None else ""
            if r.target is not None and r.samples:
                target += " ok" if s["p99"] < r.target else (" p50 ok" if s["p50"] < r.target else " MISSED")
            fmt = _ms if self.unit == "s" else (lambda v: "-" if v != v else f"{v:.1f} {self.unit}")
            lines.append((r.name, str(len(r.samples)), fmt(s["p50"]), fmt(s["p99"]), fmt(s["max"]), target, ratio))
        widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
        out = []
        for n, line in enumerate(lines):
            cells = [line[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(line[1:], widths[1:], strict=True))]
            out.append("  ".join(cells).rstrip())
            if n == 0:
                out.append("  ".join("-" * w for w in widths))
        title = f"== {self.benchmark} ({self.started}, {self.seconds:.0f}s; {self.extra.get('load', '')}) =="
        notes = [textwrap.fill(n, width=116, initial_indent="  * ", subsequent_indent="    ") for n in self.notes]
        return "\n".join([title, *out, *notes])

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "started": self.started,
            "seconds": round(self.seconds, 1),
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
                **binaries.versions(),
            },
            "unit": "seconds" if self.unit == "s" else self.unit,
            "measurements": [
                {
                    "name": r.name,
                    "trials": len(r.samples),
                    **{k: _round(v) for k, v in r.stats().items()},
                    "target": r.target,
                    "baseline": r.baseline,
                    "ratio_vs_baseline_p50": _ratio(r.stats()["p50"], self.baseline_p50(r), r),
                    "note": r.note,
                    "samples": [_round(x) for x in r.samples],
                }
                for r in self.rows
            ],
            "notes": self.notes,
            **self.extra,
        }

    def write(self) -> Path:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path = RESULTS / f"{self.benchmark}-{stamp}.json"
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        return path


def _ratio(p50: float, base: float | None, r: Row) -> float | None:
    return round(p50 / base, 2) if base and r.samples and r.ratio and not r.baseline else None


def ratio_text(x: float | None) -> str:
    """A ratio as the tables print it: 2 significant digits below 10x, whole numbers above; blank when unknown."""
    if x is None:
        return ""
    return f"{x:.0f}x" if x >= 10 else f"{x:.2g}x"


def operator_pid(env: Env) -> int:
    if env.operator.proc is None:
        raise BenchError("the operator is not running")
    return env.operator.proc.pid


def rss(pid: int) -> dict[str, float]:
    """VmRSS and VmHWM of a process, in MB (/proc/<pid>/status reports kB)."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) / 1024
    return out


def cpu_seconds(pid: int) -> float:
    """A process's user + system CPU time so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks (100 Hz)


def load_average() -> str:
    """The machine's load, for reading a result: other work on 2 cores shows in every number."""
    one, five, _ = os.getloadavg()
    return f"load avg {one:.1f}/{five:.1f}"


def _round(x: float) -> float:
    return round(x, 6)


def _ms(seconds: float | None) -> str:
    if seconds is None or seconds != seconds:
        return "-"
    if abs(seconds) < 0.01:
        return f"{seconds * 1000:.2f} ms"
    if abs(seconds) < 1:
        return f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"


# -- background HTTP load ------------------------------------------------------------------------------------------


class Load:
    """Sends `body` to `path` on every ready, non-terminating pod matching `selector`, about `rate` requests a second
    per pod, as a load balancer following the endpoints would. Counts answers by status code."""

    def __init__(
        self, kubeconfig: str, namespace: str, selector: str, port: int, path: str, body: Any, rate: float
    ) -> None:
        self.api = KubeApi(kubeconfig, user_agent=f"{USER_AGENT}-load")
        self.ns, self.selector, self.port, self.path, self.body = namespace, selector, port, path, body
        self.period = 1.0 / rate
        self.codes: dict[str, int] = {}
        self._stop = threading.Event()
        self._pods: queue.Queue[list[str]] = queue.Queue(maxsize=1)
        self._threads = [
            threading.Thread(target=self._refresh, name="load pods", daemon=True),
            threading.Thread(target=self._send, name="load send", daemon=True),
        ]
        self._http = requests.Session()
        self._http.trust_env = False  # the pods' loopback IPs, never through a proxy

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)

    def _refresh(self) -> None:
        while not self._stop.is_set():
            try:
                items = self.api.get(f"/api/v1/namespaces/{self.ns}/pods", labelSelector=self.selector)["items"]
            except (ApiError, requests.RequestException):
                items = []
            ips = [
                p["status"]["podIP"]
                for p in items
                if not p["metadata"].get("deletionTimestamp")
                and (p.get("status") or {}).get("podIP")
                and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions") or [])
            ]
            with contextlib.suppress(queue.Empty):
                self._pods.get_nowait()
            self._pods.put(ips)
            self._stop.wait(0.1)

    def _send(self) -> None:
        ips: list[str] = []
        while not self._stop.is_set():
            with contextlib.suppress(queue.Empty):
                ips = self._pods.get(timeout=0.0 if ips else 1.0)
            started = time.monotonic()
            for ip in ips:
                try:
                    r = self._http.post(f"http://{ip}:{self.port}{self.path}", json=self.body, timeout=2)
                    code = str(r.status_code)
                except requests.RequestException:
                    code = "error"
                self.codes[code] = self.codes.get(code, 0) + 1
            self._stop.wait(max(0.0, self.period - (time.monotonic() - started)))
