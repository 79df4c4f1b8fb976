"""Pure: the Downward API's fieldRef values of a pod."""

from __future__ import annotations

import re
from typing import Any

_MAP_KEY = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class UnsupportedField(ValueError):
    pass


def field_value(pod: dict[str, Any], field_path: str, pod_ip: str, host_ip: str = "127.0.0.1") -> str:
    meta, spec = pod["metadata"], pod["spec"]
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
    }
    if field_path in simple:
        return str(simple[field_path])
    if field_path in ("metadata.labels", "metadata.annotations"):
        values = meta.get(field_path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(values.items()))
    m = _MAP_KEY.match(field_path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    raise UnsupportedField(f"fieldRef {field_path!r} is not supported by the local pod runner")
