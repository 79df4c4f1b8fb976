"""A small dict-in, dict-out Kubernetes API client for the harness (the operator uses kopf and kubernetes)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import requests
import yaml


class ApiError(RuntimeError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status
        self.body = body


class KubeApi:
    def __init__(self, kubeconfig: Path | str, user_agent: str = "driftline-devcluster") -> None:
        doc = yaml.safe_load(Path(kubeconfig).read_text())
        ctx_name = doc["current-context"]
        ctx = next(c["context"] for c in doc["contexts"] if c["name"] == ctx_name)
        cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == ctx["cluster"])
        user = next(u["user"] for u in doc["users"] if u["name"] == ctx["user"])
        self.server = cluster["server"].rstrip("/")
        self.session = requests.Session()
        # Otherwise REQUESTS_CA_BUNDLE and proxy variables silently override the cluster's own CA.
        self.session.trust_env = False
        self.session.verify = cluster["certificate-authority"]
        if "client-certificate" in user:
            self.session.cert = (user["client-certificate"], user["client-key"])
        if "token" in user:
            self.session.headers["Authorization"] = f"Bearer {user['token']}"
        self.session.headers["User-Agent"] = user_agent

    def _check(self, r: requests.Response) -> Any:
        if r.status_code >= 400:
            raise ApiError(r.status_code, r.text)
        return r.json() if r.content else None

    def get(self, path: str, **params: Any) -> Any:
        return self._check(self.session.get(self.server + path, params=params, timeout=30))

    def get_or_none(self, path: str) -> Any:
        try:
            return self.get(path)
        except ApiError as e:
            if e.status == 404:
                return None
            raise

    def create(self, path: str, body: dict[str, Any]) -> Any:
        return self._check(self.session.post(self.server + path, json=body, timeout=30))

    def patch(self, path: str, body: dict[str, Any], kind: str = "strategic") -> Any:
        ctype = {
            "strategic": "application/strategic-merge-patch+json",
            "merge": "application/merge-patch+json",
            "json": "application/json-patch+json",
            "apply": "application/apply-patch+yaml",  # server-side apply (JSON is YAML); fieldManager in the path
        }[kind]
        r = self.session.patch(self.server + path, data=json.dumps(body), headers={"Content-Type": ctype}, timeout=30)
        return self._check(r)

    def put(self, path: str, body: dict[str, Any]) -> Any:
        return self._check(self.session.put(self.server + path, json=body, timeout=30))

    def delete(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._check(self.session.delete(self.server + path, json=body, timeout=30))

    def watch(
        self, path: str, resource_version: str, timeout_seconds: int = 60, **params: Any
    ) -> Iterator[dict[str, Any]]:
        """One watch call; yields events until the server closes it. ApiError(410) means: list again."""
        params = {
            **params,
            "watch": "1",
            "resourceVersion": resource_version,
            "timeoutSeconds": str(timeout_seconds),
            "allowWatchBookmarks": "true",
        }
        with self.session.get(self.server + path, params=params, stream=True, timeout=timeout_seconds + 15) as r:
            if r.status_code >= 400:
                raise ApiError(r.status_code, r.text)
            for line in r.iter_lines():
                if not line:
                    continue
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    obj = event.get("object", {})
                    raise ApiError(int(obj.get("code", 500)), json.dumps(obj))
                yield event


def wait_for(
    what: str,
    predicate: Callable[[], Any],
    timeout: float = 60.0,
    interval: float = 0.3,
    error: type[Exception] = TimeoutError,
) -> Any:
    """Poll `predicate()` until it returns something truthy, an ApiError counting as not yet; raise `error` naming
    `what` and the last value seen."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except ApiError as e:
            last = e
        if last and not isinstance(last, Exception):
            return last
        time.sleep(interval)
    raise error(f"timed out after {timeout:.0f}s waiting for {what}; last seen: {str(last)[:500]}")


def restricted_namespace(api: KubeApi, name: str, error: type[Exception] = TimeoutError) -> None:
    """Create (or find) a namespace enforcing the restricted Pod Security Standard, and wait until it takes pods: the
    ServiceAccount admission plugin refuses them until the controller-manager has made the default account."""
    body = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
    }
    try:
        api.create("/api/v1/namespaces", body)
    except ApiError as e:
        if e.status != 409:
            raise
    path = f"/api/v1/namespaces/{name}/serviceaccounts/default"
    wait_for(f"the default ServiceAccount of {name}", lambda: api.get_or_none(path), 60, error=error)
