"""kubeconfig files for the admin, each control-plane component and service-account tokens."""

from __future__ import annotations

from pathlib import Path

import yaml


def write_kubeconfig(
    path: Path,
    *,
    server: str,
    ca_cert: Path,
    user: str,
    client_cert: Path | None = None,
    client_key: Path | None = None,
    token: str | None = None,
    namespace: str | None = None,
    cluster_name: str = "driftline-local",
) -> Path:
    creds: dict[str, str] = {}
    if client_cert and client_key:
        creds = {"client-certificate": str(client_cert), "client-key": str(client_key)}
    if token:
        creds = {"token": token}
    context: dict[str, str] = {"cluster": cluster_name, "user": user}
    if namespace:
        context["namespace"] = namespace
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {"server": server, "certificate-authority": str(ca_cert)}}],
        "users": [{"name": user, "user": creds}],
        "contexts": [{"name": cluster_name, "context": context}],
        "current-context": cluster_name,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)
    return path
