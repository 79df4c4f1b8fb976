"""A real Prometheus server for the drift tests and the demo: Debian's binary, cached by hack/fetch-prometheus.sh.

`PrometheusServer(dir).start()` runs it on a free loopback port, scraping the targets that `set_targets` writes to
a file_sd file (re-read within a second), so a test points it at pods as they come and go, with the labels a
Kubernetes service discovery would attach (namespace, inferenceservice, ...).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from driftline.devcluster import procs

FETCH_SCRIPT = Path(__file__).resolve().parents[3] / "hack" / "fetch-prometheus.sh"
JOB_NAME = "driftline-pods"
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


def cache_root() -> Path:
    """The cache hack/*.sh fill: $DRIFTLINE_CACHE_DIR, else $XDG_CACHE_HOME/driftline, else ~/.cache/driftline."""
    override = os.environ.get("DRIFTLINE_CACHE_DIR")
    if override:
        return Path(override)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "driftline"


def _version_key(path: Path) -> tuple[list[tuple[int, str]], float]:
    # prometheus-2.42.0+ds-5+deb12u1 -> numbers compare as numbers; the fetch time breaks ties.
    version = path.parent.name.removeprefix("prometheus-")
    parts = [(int(p), "") if p.isdigit() else (-1, p) for p in re.findall(r"\d+|[^\d]+", version)]
    return parts, path.stat().st_mtime


def prometheus_bin() -> Path:
    """$DRIFTLINE_PROMETHEUS if set, else the newest cached Debian binary."""
    override = os.environ.get("DRIFTLINE_PROMETHEUS")
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise RuntimeError(f"DRIFTLINE_PROMETHEUS={override} is not an executable file")
        return path
    found = [p for p in cache_root().glob("prometheus-*/prometheus") if p.is_file() and os.access(p, os.X_OK)]
    if not found:
        raise RuntimeError(
            f"no Prometheus in {cache_root()}: run `make prometheus` (or `bash {FETCH_SCRIPT}`), "
            "or point DRIFTLINE_PROMETHEUS at a prometheus binary"
        )
    return max(found, key=_version_key)


class PrometheusError(RuntimeError):
    pass


class PrometheusServer:
    """One Prometheus process with everything (config, targets, TSDB, log) under `directory`."""

    def __init__(self, directory: Path, scrape_interval: str = "1s") -> None:
        self.dir = Path(directory).resolve()
        self.scrape_interval = scrape_interval
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def config(self) -> Path:
        return self.dir / "prometheus.yml"

    @property
    def targets_file(self) -> Path:
        return self.dir / "targets.json"

    @property
    def log(self) -> Path:
        return self.dir / "prometheus.log"

    @property
    def url(self) -> str:
        if self.port is None:
            raise PrometheusError("Prometheus is not started")
        return f"http://127.0.0.1:{self.port}"

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 30) -> PrometheusServer:
        if self.running():
            return self
        binary = prometheus_bin()
        self.dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        if not self.targets_file.exists():
            self.set_targets([])
        deadline = time.monotonic() + timeout
        for _attempt in range(3):  # the free port may be taken between choosing it and Prometheus binding it
            self.port = procs.free_port()
            argv = [
                str(binary),
                f"--config.file={self.config}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--storage.tsdb.path={self.dir / 'data'}",
                "--log.level=info",
            ]
            self._proc = procs.spawn(argv, cluster_dir=self.dir, log=self.log, cwd=self.dir)
            try:
                if self._wait_ready(deadline):
                    return self
            except BaseException:
                self.stop()
                raise
            self.stop()  # exited on its own: a port clash is retried, anything else is reported
            if "address already in use" not in self._log_tail(5):
                break
        raise PrometheusError(f"Prometheus did not start; {self.log} ends with:\n{self._log_tail()}")

    def set_targets(self, targets: Sequence[tuple[str, Mapping[str, str]]]) -> None:
        """Scrape exactly these ("ip:port", labels) targets from now on; written atomically as file_sd JSON."""
        groups: list[dict[str, Any]] = []
        for address, labels in targets:
            bad = [name for name in labels if not _LABEL_NAME.match(name) or name.startswith("__")]
            if bad:
                raise ValueError(f"invalid target label names for {address}: {bad}")
            same = next((g for g in groups if g["labels"] == dict(labels)), None)
            if same is None:
                groups.append({"targets": [address], "labels": dict(labels)})
            else:
                same["targets"].append(address)
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.targets_file.with_name(f".{self.targets_file.name}.tmp")
        tmp.write_text(json.dumps(groups, indent=2) + "\n")
        os.replace(tmp, self.targets_file)

    def instant_queries(self) -> int:
        """Instant queries this server has answered, whatever their status code, by its own counter
        (prometheus_http_requests_total for /api/v1/query): how many requests a reader made."""
        text = requests.get(f"{self.url}/metrics", timeout=10).text
        return sum(
            int(sample.value)
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "prometheus_http_requests_total" and sample.labels.get("handler") == "/api/v1/query"
        )

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, SIGKILL after `grace` seconds; idempotent."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            procs.terminate([proc.pid], grace=grace)
        proc.wait(timeout=10)

    def __enter__(self) -> PrometheusServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- internals ----------------------------------------------------------------------------------------------------

    def _write_config(self) -> None:
        config = {
            "global": {"scrape_interval": self.scrape_interval, "evaluation_interval": self.scrape_interval},
            "scrape_configs": [
                {
                    "job_name": JOB_NAME,
                    "file_sd_configs": [{"files": [str(self.targets_file)], "refresh_interval": "1s"}],
                }
            ],
        }
        self.config.write_text(yaml.safe_dump(config, sort_keys=False))

    def _wait_ready(self, deadline: float) -> bool:
        """True once /-/ready answers 200; False if the process exits; PrometheusError at the deadline."""
        assert self._proc is not None
        last = "no answer yet"
        with requests.Session() as session:
            session.trust_env = False  # no proxy or CA bundle from the environment for a loopback server
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    return False
                try:
                    r = session.get(f"{self.url}/-/ready", timeout=2)
                    if r.status_code == 200:
                        return True
                    last = f"HTTP {r.status_code}: {r.text.strip()[:200]}"
                except requests.RequestException as e:
                    last = str(e)
                time.sleep(0.1)
        raise PrometheusError(
            f"Prometheus not ready at {self.url} in time ({last}); {self.log} ends with:\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
