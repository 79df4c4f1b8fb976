"""The success summary written to the termination log: what the operator records on the ModelVersion.

It must stay under the kubelet's 4096 bytes whatever the user put in --params or the dataset's column names, so it is
shrunk step by step (feature names beyond 20, long params, all params, metrics beyond 8, feature names beyond 5, long
URIs) and then marked `"truncated": true`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from driftline_runtime import termination

FEATURES_SHOWN = 20
_SHORT_VALUE_CHARS = 100
_METRICS_KEPT = 8
_PARAMS_KEPT = 20
_NAME_CHARS = 64
_URI_CHARS = 1000
_FINGERPRINT_CHARS = 71  # sha256:<64 hex>
_REASON_CHARS = 200


def success_summary(metadata: dict[str, Any], artifact_uri: str) -> dict[str, Any]:
    names = [str(f["name"]) for f in metadata["features"]]
    document: dict[str, Any] = {
        "ok": True,
        "artifact": {
            "storageUri": artifact_uri,
            "sha256": metadata["artifact"]["sha256"],
            "format": metadata["artifact"]["format"],
            "framework": metadata["framework"],
            "frameworkVersion": metadata["frameworkVersion"],
            **({"signedBy": metadata["artifact"]["signedBy"]} if "signedBy" in metadata["artifact"] else {}),
            **_predictor(metadata.get("predictor")),
        },
        "metrics": dict(metadata["metrics"]),
        "task": metadata["task"],
        "dataset": dict(metadata["dataset"]),
        "params": dict(metadata["params"]),
        "features": names,
        "featureCount": len(names),
    }
    return termination.fit(document, _SHRINKERS)


def _predictor(block: Any) -> dict[str, Any]:
    """Which predictor serves the version, and why scikit-learn serves a tree ensemble."""
    if not isinstance(block, dict) or "kind" not in block:
        return {}
    said = {"predictor": str(block["kind"])}
    if block.get("reason"):
        said["predictorReason"] = termination.clip(str(block["reason"]), _REASON_CHARS)
    return said


def _with(document: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**document, **changes, "truncated": True}


def _some_features(d: dict[str, Any]) -> dict[str, Any]:
    return _with(d, features=d["features"][:FEATURES_SHOWN])


def _short_params(d: dict[str, Any]) -> dict[str, Any]:
    params = d["params"]
    kept = {k: v for k, v in params.items() if len(k) + len(json.dumps(v)) <= _SHORT_VALUE_CHARS}
    return _with(d, params=dict(list(kept.items())[:_PARAMS_KEPT]))


def _no_params(d: dict[str, Any]) -> dict[str, Any]:
    return _with(d, params={})


def _few_metrics(d: dict[str, Any]) -> dict[str, Any]:
    metrics = d["metrics"]
    return _with(d, metrics={k[:_NAME_CHARS]: v for k, v in list(metrics.items())[:_METRICS_KEPT]})


def _few_features(d: dict[str, Any]) -> dict[str, Any]:
    return _with(d, features=[n[:_NAME_CHARS] for n in d["features"][:5]])


def _short_strings(d: dict[str, Any]) -> dict[str, Any]:
    """Bounded by construction: every remaining string is clipped, every list and map is short."""
    limits = {"storageUri": _URI_CHARS, "signedBy": _FINGERPRINT_CHARS, "predictorReason": _REASON_CHARS}
    artifact = {k: termination.clip(str(v), limits.get(k, _NAME_CHARS)) for k, v in d["artifact"].items()}
    dataset = {
        "uri": termination.clip(str(d["dataset"].get("uri", "")), _URI_CHARS),
        "sha256": str(d["dataset"].get("sha256", ""))[:64],
        "rows": d["dataset"].get("rows"),
    }
    return _with(d, artifact=artifact, dataset=dataset, task=str(d["task"])[:_NAME_CHARS])


_SHRINKERS: list[Callable[[dict[str, Any]], dict[str, Any]]] = [
    _some_features,
    _short_params,
    _no_params,
    _few_metrics,
    _few_features,
    _short_strings,
]
