"""The operator's own settings, from its environment (the Helm chart sets these)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from driftline.api import constants as c
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
        )


def _list(value: str | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(v.strip() for v in value.split(",") if v.strip())
