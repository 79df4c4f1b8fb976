"""Why a workload's pods do not start: read their statuses and, for a pod stuck creating, the Events that may say
why (its own, and a Multi-Attach reported on a pod sharing its claim). Read only while something waits."""

from __future__ import annotations

from datetime import UTC, datetime

from driftline.decide import pods
from driftline.k8s import objects


def problem(namespace: str, selector: str) -> pods.PodProblem | None:
    items = objects.list_pods(namespace, selector)
    now = datetime.now(UTC)
    stuck = set(pods.stuck_creating(items, now)[:3])
    if not stuck:
        return pods.diagnose(items, now)
    everyone = objects.list_pods(namespace, "")
    events = {}
    for pod in (p for p in items if p["metadata"]["name"] in stuck):
        name = str(pod["metadata"]["name"])
        events[name] = [
            e for n in [name, *pods.sharing_a_claim(pod, everyone)[:3]] for e in objects.list_pod_events(namespace, n)
        ]
    return pods.diagnose(items, now, events)
