"""One configured kubernetes ApiClient per process, loaded the way kopf logs in (in-cluster, else kubeconfig)."""

from __future__ import annotations

import functools
import os

from kubernetes import client, config


@functools.cache
def api_client() -> client.ApiClient:
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    else:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    api = client.ApiClient()
    api.user_agent = "driftline-operator/0.1.0"
    return api


def custom() -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api_client())


def batch() -> client.BatchV1Api:
    return client.BatchV1Api(api_client())


def core() -> client.CoreV1Api:
    return client.CoreV1Api(api_client())


def apps() -> client.AppsV1Api:
    return client.AppsV1Api(api_client())
