"""A real S3 server for the tests, the benchmarks and the demo: SeaweedFS's `weed`, built from its Go module by
hack/build-seaweedfs.sh and cached like the Kubernetes binaries.

`S3Server(dir).start()` runs SeaweedFS's master, volume server, filer and S3 gateway as one process on free loopback
ports, with S3 authentication on: requests are signed (SigV4) and checked against the identities given, as on AWS.
Buckets are made through the filer (a bucket is a directory under /buckets there), so the harness needs no S3
client of its own. Nothing about it is mocked: what the runtime sees is what an S3-compatible service answers.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import requests

from driftline.api.fields import S3_BUCKET
from driftline.devcluster import binaries, procs
from driftline.devcluster.prometheus import cache_root

BUILD_SCRIPT = binaries.REPO_ROOT / "hack" / "build-seaweedfs.sh"
REGION = "us-east-1"
ADMIN = ("Admin", "Read", "Write", "List", "Tagging")
_STATE = "state.json"


def seaweedfs_bin() -> Path:
    """$DRIFTLINE_SEAWEEDFS if set, else the cached build of hack/versions.env's version (built when missing, with
    progress on stderr: about 11 minutes cold on 2 cores)."""
    override = os.environ.get("DRIFTLINE_SEAWEEDFS")
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise RuntimeError(f"DRIFTLINE_SEAWEEDFS={override} is not an executable file")
        return path
    cached = cache_root() / "bin" / f"seaweedfs-{binaries.versions()['SEAWEEDFS_VERSION']}" / "weed"
    if cached.is_file():
        return cached
    out = subprocess.run(["bash", str(BUILD_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


class S3Error(RuntimeError):
    pass


@dataclass(frozen=True)
class Identity:
    """An S3 user: its keys and what it may do (SeaweedFS actions: Admin, Read, Write, List, Tagging, each optionally
    limited to a bucket as "Read:bucket")."""

    name: str
    access_key: str = field(default_factory=lambda: "AK" + secrets.token_hex(8).upper())
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(30))
    actions: Sequence[str] = ADMIN

    def env(self) -> dict[str, str]:
        """The credentials as a pod gets them (the kubelet fills these from a Secret)."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}

    def secret_data(self) -> dict[str, str]:
        """A Secret's stringData holding the keys under the names the runtime's env uses."""
        return self.env()


class S3Server:
    """One SeaweedFS process with its data, config and log under `directory`."""

    def __init__(self, directory: Path, identities: Sequence[Identity] = (), owner: Path | None = None) -> None:
        """`owner`: a local cluster's directory; the server's process then carries that cluster's mark, so stopping
        the cluster stops it too."""
        self.dir = Path(directory).resolve()
        self.identities = list(identities) or [Identity("admin")]
        self.owner = owner
        self.ports: dict[str, int] = {}
        self._proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def running_at(cls, directory: Path) -> S3Server | None:
        """The server a previous process started under `directory` and left running (the demo's, kept with its
        cluster), with its ports and identities; None when it is not running. Stopped with its cluster."""
        try:
            state = json.loads((Path(directory) / _STATE).read_text())
            document = json.loads((Path(directory) / "identities.json").read_text())
        except (OSError, ValueError):
            return None
        if not procs.alive(int(state["pid"])):
            return None
        identities = [
            Identity(i["name"], i["credentials"][0]["accessKey"], i["credentials"][0]["secretKey"], tuple(i["actions"]))
            for i in document["identities"]
        ]
        server = cls(directory, identities)
        server.ports = {k: int(v) for k, v in state["ports"].items()}
        return server

    @property
    def admin(self) -> Identity:
        return self.identities[0]

    @property
    def log(self) -> Path:
        return self.dir / "seaweedfs.log"

    @property
    def endpoint(self) -> str:
        if "s3" not in self.ports:
            raise S3Error("the S3 server is not started")
        return f"http://127.0.0.1:{self.ports['s3']}"

    def env(self, identity: Identity | None = None) -> dict[str, str]:
        """What a runtime process needs to reach this server as `identity` (the admin by default)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": REGION,
            "DRIFTLINE_S3_PATH_STYLE": "true",
            **(identity or self.admin).env(),
        }

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 90, same_ports: bool = False) -> S3Server:
        """Start it on free ports, or (`same_ports`, after a stop) where it was, as a restarted service comes back at
        its address, with its data."""
        if self.running():
            return self
        binary = seaweedfs_bin()
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        self._write_identities()
        deadline = time.monotonic() + timeout
        for _attempt in range(3):  # a chosen free port may be taken before weed binds it
            names = ("master", "volume", "filer", "s3", "master.grpc", "volume.grpc", "filer.grpc", "s3.grpc")
            if not (same_ports and self.ports):
                self.ports = {name: procs.free_port() for name in names}
            argv = [
                str(binary),
                "server",
                f"-dir={self.dir / 'data'}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-master.port={self.ports['master']}",
                f"-master.port.grpc={self.ports['master.grpc']}",
                "-master.volumeSizeLimitMB=256",
                f"-volume.port={self.ports['volume']}",
                f"-volume.port.grpc={self.ports['volume.grpc']}",
                "-volume.max=64",
                "-filer",
                f"-filer.port={self.ports['filer']}",
                f"-filer.port.grpc={self.ports['filer.grpc']}",
                "-s3",
                f"-s3.port={self.ports['s3']}",
                f"-s3.port.grpc={self.ports['s3.grpc']}",
                f"-s3.config={self.dir / 'identities.json'}",
            ]
            self._proc = procs.spawn(argv, cluster_dir=self.owner or self.dir, log=self.log, cwd=self.dir)
            try:
                if self._wait_ready(deadline):
                    (self.dir / _STATE).write_text(json.dumps({"pid": self._proc.pid, "ports": self.ports}) + "\n")
                    return self
            except BaseException:
                self.stop()
                raise
            self.stop()
            if "address already in use" not in self._log_tail(20):
                break
        raise S3Error(f"SeaweedFS did not start; {self.log} ends with:\n{self._log_tail()}")

    def create_bucket(self, name: str) -> None:
        """A bucket, made as the filer keeps buckets: a directory under /buckets. The filer would take any directory
        name; S3's bucket rules are checked here, since SeaweedFS's own checks fail later, on multipart uploads."""
        if not re.fullmatch(S3_BUCKET, name):
            raise S3Error(f"{name!r} is not an S3 bucket name (3-63 lowercase letters, digits, '.' and '-')")
        with requests.Session() as session:
            session.trust_env = False
            r = session.post(f"http://127.0.0.1:{self.ports['filer']}/buckets/{name}/", timeout=10)
            if r.status_code >= 300:
                raise S3Error(f"cannot create bucket {name}: HTTP {r.status_code} {r.text[:200]}")
        self._wait_bucket(name)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, SIGKILL after `grace` seconds; idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            procs.terminate([proc.pid], grace=grace)
        proc.wait(timeout=10)

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- internals ----------------------------------------------------------------------------------------------------

    def _write_identities(self) -> None:
        document = {
            "identities": [
                {
                    "name": i.name,
                    "credentials": [{"accessKey": i.access_key, "secretKey": i.secret_key}],
                    "actions": list(i.actions),
                }
                for i in self.identities
            ]
        }
        path = self.dir / "identities.json"
        path.write_text(json.dumps(document, indent=2) + "\n")
        path.chmod(0o600)

    def _wait_ready(self, deadline: float) -> bool:
        """True once the S3 gateway answers an unsigned request (with 403: authentication is on); False if the
        process exits; S3Error at the deadline."""
        assert self._proc is not None
        last = "no answer yet"
        with requests.Session() as session:
            session.trust_env = False
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    return False
                try:
                    r = session.get(f"http://127.0.0.1:{self.ports['s3']}/", timeout=2)
                    if r.status_code in (200, 403):
                        return True
                    last = f"HTTP {r.status_code}: {r.text.strip()[:200]}"
                except requests.RequestException as e:
                    last = str(e)
                time.sleep(0.2)
        raise S3Error(f"SeaweedFS not ready in time ({last}); {self.log} ends with:\n{self._log_tail()}")

    def _wait_bucket(self, name: str, timeout: float = 20) -> None:
        """The gateway sees a new bucket once the filer's change reaches it."""
        deadline = time.monotonic() + timeout
        with requests.Session() as session:
            session.trust_env = False
            while time.monotonic() < deadline:
                r = session.get(f"http://127.0.0.1:{self.ports['filer']}/buckets/{name}/", timeout=5)
                if r.status_code < 300:
                    return
                time.sleep(0.2)
        raise S3Error(f"bucket {name} did not appear in time")

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def run_env(server: S3Server, identity: Identity | None = None) -> Mapping[str, str]:
    """os.environ plus what reaches `server` as `identity`: for a runtime command run as a plain process."""
    return {**os.environ, **server.env(identity)}
