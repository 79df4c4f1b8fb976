"""Which URLs a tenant may make the operator read: a Prometheus server named in an InferenceService is read by the
operator, from inside the cluster, so without a list a tenant could make it GET any host and port it can reach (the
control plane's etcd answered). Pure: the URL and the allow-list in, a refusal out."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

ANY = "*"
_PORTS = {"http": 80, "https": 443}


def _parts(url: str) -> tuple[str, str, int | None, str] | None:
    try:
        u = urlsplit(url.strip())
        port = u.port or _PORTS.get(u.scheme.lower())
    except ValueError:  # a port out of range, a bad IPv6 literal
        return None
    if not u.scheme or not u.hostname:
        return None
    return u.scheme.lower(), u.hostname.lower(), port, u.path.rstrip("/")


def refusal(url: str, allowed: Sequence[str] | None) -> str | None:
    """None when `url` may be read: `allowed` is None (no list configured), holds "*", or holds a URL with the same
    scheme, host and port whose path is `url`'s or a parent of it. Otherwise why not, for the object's status."""
    if allowed is None or ANY in allowed:
        return None
    want = _parts(url)
    if want is not None:
        for entry in allowed:
            ok = _parts(entry)
            if ok is not None and ok[:3] == want[:3] and (want[3] + "/").startswith(ok[3] + "/"):
                return None
    listed = ", ".join(allowed) if allowed else "none"
    return (
        f"{url} is not on the operator's list of Prometheus servers it may read ({listed}); ask the cluster's admin "
        "to add it (Helm value allowedPrometheusUrls)"
    )
