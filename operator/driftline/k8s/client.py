"""One configured kubernetes ApiClient per process, loaded the way kopf logs in (in-cluster, else kubeconfig), and
`request`: a REST call by path that returns the API server's JSON.

By path, not through the typed API classes: CoreV1Api and AppsV1Api alone are 18 MB of code the first time they are
touched (measured with memray in a running operator), and their models would rewrite what the API server sent."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Mapping
from typing import Any, cast

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

JSON = "application/json"
MERGE_PATCH = "application/merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


@functools.cache
def api_client() -> client.ApiClient:
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    else:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    api = client.ApiClient()
    api.user_agent = "driftline-operator/0.1.0"
    return api


def request(
    method: str,
    path: str,
    *,
    query: Mapping[str, str] | None = None,
    body: Any = None,
    content_type: str = JSON,
) -> dict[str, Any]:
    """`method` `path` (e.g. /apis/apps/v1/namespaces/x/deployments/y) with the client's credentials; raises
    ApiException for any answer but 2xx, as the typed API classes do."""
    api = api_client()
    headers = {"Accept": JSON}
    if body is not None:
        headers["Content-Type"] = content_type
    method, url, headers, body, _ = api.param_serialize(
        method,
        path,
        query_params=[(k, v) for k, v in (query or {}).items() if v],
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api.call_api(method, url, headers, body)
    data: bytes = response.read()  # type: ignore[no-untyped-call]
    if not 200 <= response.status <= 299:
        raise ApiException.from_response(http_resp=response, body=None, data=None)
    return cast(dict[str, Any], json.loads(data))
