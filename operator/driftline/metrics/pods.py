"""The pods provider: each serving pod's /metrics, read directly on the pod's IP (no Prometheus needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import requests

from driftline.decide.measure import Counters, parse
from driftline.metrics import bounded

TIMEOUT_SECONDS = 2.0
MAX_BYTES = 8 * 1024 * 1024
"""A serving pod's page is tens of KiB (drift windows of 20 features included); a pod answering more is refused."""


class ScrapeError(RuntimeError):
    pass


def fetch(ip: str, port: int, timeout: float = TIMEOUT_SECONDS) -> str:
    """The text of a pod's /metrics page, whole within `timeout`."""
    return _get(ip, port, "/metrics", timeout, MAX_BYTES)


def _get(ip: str, port: int, path: str, timeout: float, max_bytes: int) -> str:
    try:
        # trust_env off: a pod IP is never reached through a proxy
        r = bounded.get(f"http://{ip}:{port}{path}", deadline=timeout, max_bytes=max_bytes, trust_env=False)
    except requests.RequestException as e:
        raise ScrapeError(f"{ip}:{port}{path}: {e}") from e
    if r.status != 200:
        raise ScrapeError(f"{ip}:{port}{path}: HTTP {r.status}")
    return r.text


ROWS_MAX_BYTES = 4 * 1024 * 1024
"""A pod's labelled window as CSV: 1,000 rows of 30 features are ~300 KiB."""


def labelled_rows(ip: str, port: int, model: str, timeout: float = 5.0) -> str:
    """A pod's labelled window as CSV (the model server's GET .../feedback/rows)."""
    return _get(ip, port, f"/v2/models/{model}/feedback/rows", timeout, ROWS_MAX_BYTES)


def scrape(ip: str, port: int, timeout: float = TIMEOUT_SECONDS) -> Counters:
    text = fetch(ip, port, timeout)
    try:
        return parse(text)
    except ValueError as e:
        raise ScrapeError(f"{ip}:{port}/metrics: {e}") from e


def scrape_all(pods: Mapping[str, str], port: int) -> tuple[dict[str, Counters], list[str]]:
    """Scrape every pod (uid -> IP): the counters read, and one message per pod that could not be read."""
    counters: dict[str, Counters] = {}
    errors: list[str] = []
    for uid, ip in pods.items():
        try:
            counters[uid] = scrape(ip, port)
        except ScrapeError as e:
            errors.append(str(e))
    return counters, errors


def ready_pods(pods: Sequence[dict[str, Any]]) -> dict[str, str]:
    """uid -> IP of the pods that serve: ready, with an IP, not being deleted."""
    out: dict[str, str] = {}
    for pod in pods:
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
        if ready and status.get("podIP") and not meta.get("deletionTimestamp"):
            out[str(meta["uid"])] = str(status["podIP"])
    return out
