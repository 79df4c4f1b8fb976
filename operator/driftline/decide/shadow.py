"""A shadow challenger: which version runs in shadow, and what its pods and the serving pods' /metrics say of it.

Pure: the reconcile renders and applies the challenger's Deployment and Service (handlers/inferenceservice.py), the
monitors' daemon reads the pods (handlers/monitors.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from driftline.api.constants import ConditionType, Reason
from driftline.api.inferenceservice import InferenceServiceSpec
from driftline.api.modelversion import Stage
from driftline.decide import pod_readings
from driftline.decide.conditions import Cond
from driftline.decide.measure import quantile
from driftline.decide.serving import Version

REQUESTS = "driftline_shadow_requests"
ROWS = "driftline_shadow_rows"
DURATION = "driftline_shadow_request_duration_seconds"


def challenger(
    spec: InferenceServiceSpec, versions: Sequence[Version], active: int | None, service: str = ""
) -> tuple[Version | None, str]:
    """The version to run in shadow, or None and why not (empty when no shadow is asked for). Without a version in
    spec.shadow: the newest Evaluating version whose online gate names `service`."""
    if spec.shadow is None:
        return None, ""
    wanted = spec.shadow.version
    if wanted is None:
        waiting = [v for v in versions if v.stage == Stage.EVALUATING and v.evaluated_by == service]
        if not waiting:
            return None, f"no version of model {spec.model} is Evaluating online with this service"
        wanted = max(waiting, key=lambda v: v.version).version
    found = next((v for v in versions if v.version == wanted), None)
    if found is None:
        return None, f"version {wanted} of model {spec.model} does not exist"
    if wanted == active:
        return None, f"version {wanted} is the one served: there is nothing to compare it with"
    if not found.good:
        return None, f"version {wanted} is {found.stage}: a rejected or rolled back version is not evaluated"
    return found, ""


def condition(spec: InferenceServiceSpec, challenger: Version | None, why_not: str, had: bool) -> list[Cond]:
    """Shadowing: True while a challenger runs, False saying why one asked for does not (or that none is asked for
    any more, once the condition was there)."""
    if challenger is not None and spec.shadow is not None:
        msg = f"version {challenger.version} receives {spec.shadow.share:g} of the requests, mirrored"
        return [Cond(ConditionType.SHADOWING, True, Reason.SHADOW_RUNNING, msg)]
    if spec.shadow is not None:
        return [Cond(ConditionType.SHADOWING, False, Reason.SHADOW_NOT_RUN, why_not)]
    if had:
        return [Cond(ConditionType.SHADOWING, False, Reason.SHADOW_STOPPED, "spec.shadow is empty")]
    return []


def _counters(pages: Sequence[str]) -> tuple[dict[tuple[str, str], float], dict[str, float], dict[float, float]]:
    requests: dict[tuple[str, str], float] = {}
    rows: dict[str, float] = {}
    buckets: dict[float, float] = {}
    for text in pages:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == f"{REQUESTS}_total":
                    key = (s.labels.get("kind", ""), s.labels.get("result", ""))
                    requests[key] = requests.get(key, 0.0) + s.value
                elif s.name == f"{ROWS}_total":
                    rows[s.labels.get("result", "")] = rows.get(s.labels.get("result", ""), 0.0) + s.value
                elif s.name == f"{DURATION}_bucket":
                    le = float(s.labels["le"])
                    buckets[le] = buckets.get(le, 0.0) + s.value
    return requests, rows, buckets


def _metrics(pages: Sequence[str]) -> tuple[list[dict[str, Any]], int | None]:
    """The pods' live metrics combined (finite ones only), and the labelled rows behind them."""
    read = []
    for text in pages:
        try:
            read.append(pod_readings.parse(text, "", pod_readings.PERFORMANCE))
        except ValueError:
            continue
    if not read:
        return [], None
    combined = pod_readings.combine(read)
    values = [{"name": name, "value": round(v, 6)} for name, v in sorted(combined.features.items()) if math.isfinite(v)]
    return values, combined.samples


def status(
    version: int, primary: Sequence[str], shadow: Sequence[str], errors: Sequence[str], now: str
) -> dict[str, Any]:
    """status.shadow from the serving pods' pages (`primary`: the mirror's counters, their own live metrics) and the
    challenger's pods' pages (its live metrics)."""
    requests, rows, buckets = _counters(primary)
    compared = int(rows.get("agree", 0) + rows.get("disagree", 0))
    p95 = quantile(0.95, buckets)
    challenger_metrics, challenger_samples = _metrics(shadow)
    production_metrics, production_samples = _metrics(primary)
    return {
        "version": version,
        "mirrored": int(requests.get(("infer", "ok"), 0)),
        "dropped": int(requests.get(("infer", "dropped"), 0)),
        "errors": int(requests.get(("infer", "error"), 0)),
        "agreement": round(rows.get("agree", 0) / compared, 6) if compared else None,
        "compared": compared,
        "latencyP95Seconds": None if math.isnan(p95) else round(p95, 6),
        "challenger": challenger_metrics,
        "challengerSamples": challenger_samples,
        "production": production_metrics,
        "productionSamples": production_samples,
        "message": "; ".join(errors)[:1024] or None,
        "lastReadTime": now,
    }


def value_of(metrics: Sequence[Mapping[str, Any]], name: str) -> float | None:
    return next((float(m["value"]) for m in metrics if m.get("name") == name), None)
