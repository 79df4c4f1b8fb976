"""The operator's own settings, from its environment (the Helm chart sets these)."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from driftline.api import constants as c
from driftline.api.common import PodSettings
from driftline.decide import podsafety


@dataclass(frozen=True)
class OperatorConfig:
    runtime_image: str
    allowed_estimator_prefixes: tuple[str, ...]
    allowed_prometheus_urls: tuple[str, ...] | None = None
    """The Prometheus servers tenants may name (decide.outbound); None, when unset, allows any (the chart sets it)."""
    custom_pods: podsafety.Allowances = field(default_factory=podsafety.Allowances)
    """What custom pod templates may ask of the node (decide.podsafety); unset allows none of it."""
    check_authors: bool = False
    """Check a spec's recorded author's rights before acting on it (decide.authorship); the chart sets it with the
    admission policies that record the author."""
    pod_defaults: PodSettings | None = None
    """The chart's podDefaults: scheduling, pull secrets and pod metadata for every model pod that does not set its
    own (decided field by field, render.common.pod_settings)."""
    trusted_keys: str | None = None
    """PEM public keys: when set, every serving pod loads only an artifact whose model.sig one of them made (the
    runtime checks it, driftline_runtime.signing); None serves unsigned artifacts too."""

    @classmethod
    def from_env(cls) -> OperatorConfig:
        prefixes = os.environ.get(
            "DRIFTLINE_ALLOWED_ESTIMATOR_PREFIXES", ",".join(c.DEFAULT_ALLOWED_ESTIMATOR_PREFIXES)
        )
        return cls(
            runtime_image=os.environ.get("DRIFTLINE_RUNTIME_IMAGE", c.DEFAULT_RUNTIME_IMAGE),
            allowed_estimator_prefixes=tuple(p.strip() for p in prefixes.split(",") if p.strip()),
            allowed_prometheus_urls=_list(os.environ.get("DRIFTLINE_ALLOWED_PROMETHEUS_URLS")),
            custom_pods=podsafety.parse(
                os.environ.get("DRIFTLINE_CUSTOM_POD_ALLOW"), os.environ.get("DRIFTLINE_CUSTOM_POD_CAPABILITIES")
            ),
            check_authors=os.environ.get("DRIFTLINE_CHECK_AUTHORS", "").lower() == "true",
            trusted_keys=os.environ.get(c.TRUSTED_KEYS_ENV) or None,
            pod_defaults=_pod_defaults(os.environ.get("DRIFTLINE_POD_DEFAULTS")),
        )


def _list(value: str | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(v.strip() for v in value.split(",") if v.strip())


def _pod_defaults(value: str | None) -> PodSettings | None:
    """The chart's podDefaults (JSON); a broken value stops the operator at once, naming the field."""
    if not value or value.strip() in ("{}", "null"):
        return None
    try:
        return PodSettings.model_validate(json.loads(value))
    except ValueError as e:  # JSON or validation: both name what is wrong
        raise ValueError(f"DRIFTLINE_POD_DEFAULTS (the chart's podDefaults) is not valid: {e}") from e


@functools.cache
def current() -> OperatorConfig:
    """This process's settings: its environment does not change while it runs (a chart upgrade restarts the pod), so
    it is read once, not at every reconcile and drift reading."""
    return OperatorConfig.from_env()


def in_cluster_server(env: Mapping[str, str]) -> str | None:
    """The API server's URL from the variables a kubelet gives every pod, as client-go's InClusterConfig builds it
    (an IPv6 address in brackets); None when they are not set."""
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        return None
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
