"""What the demo shows while it runs: the three kinds' phases as a live table (in a terminal), and every Event the
operator records, as a log. Without a terminal (CI, a pipe) each change is a plain line instead."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from driftline.devcluster.kubeapi import KubeApi

GROUP = "/apis/driftline.dev/v1alpha1/namespaces/{ns}/{plural}"
KINDS = (("TrainingJob", "trainingjobs"), ("ModelVersion", "modelversions"), ("InferenceService", "inferenceservices"))
STYLE = {
    "Succeeded": "green",
    "Production": "bold green",
    "Ready": "green",
    "Failed": "red",
    "Rejected": "red",
    "RolledBack": "red",
    "Degraded": "red",
    "Archived": "dim",
}


def _row(kind: str, obj: dict[str, Any]) -> tuple[str, str, str]:
    """(name, phase, detail) as a person would want them at a glance."""
    st, name = obj.get("status") or {}, obj["metadata"]["name"]
    if kind == "TrainingJob":
        version = f"made v{st['version']}" if st.get("version") else ""
        return name, st.get("phase", "Pending"), " ".join(x for x in (version, st.get("message") or "") if x)[:90]
    if kind == "ModelVersion":
        acc = (obj["spec"].get("metrics") or {}).get("accuracy")
        accuracy = f"accuracy {acc:.4f}" if isinstance(acc, float) else ""
        return name, st.get("stage", ""), f"{accuracy}  {(st.get('reason') or '')[:70]}".strip()
    drift = st.get("drift") or {}
    score = drift.get("score")
    seen = f"{drift.get('assessment', '')} psi {score:.3f}/{drift.get('threshold')}" if score is not None else ""
    samples = f"({drift.get('samples')} samples)" if drift.get("samples") is not None else ""
    action = f"last action {drift['lastAction']}" if drift.get("lastAction") else ""
    active = f"serving v{st['activeVersion']}" if st.get("activeVersion") else ""
    return name, st.get("phase", ""), "  ".join(x for x in (active, seen, samples, action) if x)


def _headline(kind: str, obj: dict[str, Any]) -> tuple[Any, ...]:
    """What is worth a line when it changes, without a terminal: the phase; for a service, version and drift verdict."""
    st = obj.get("status") or {}
    if kind != "InferenceService":
        return (st.get("stage") if kind == "ModelVersion" else st.get("phase"),)
    return st.get("phase"), st.get("activeVersion"), (st.get("drift") or {}).get("assessment")


class Display:
    def __init__(self, api: KubeApi, ns: str, t0: float) -> None:
        self.api, self.ns, self.t0 = api, ns, t0
        self.console = Console(highlight=False, soft_wrap=True)
        self.rows: dict[tuple[str, str], tuple[str, str, str]] = {}
        self._headlines: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._seen_events: set[str] = set()
        self._live: Live | None = None

    def __enter__(self) -> Display:
        if self.console.is_terminal:
            self._live = Live(self._table(), console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(self._table())
            self._live.__exit__(None, None, None)

    def say(self, msg: str, style: str = "") -> None:
        self.console.print(Text(f"[{time.monotonic() - self.t0:6.1f}s] {msg}", style=style))

    def step(self, title: str, expect: str = "") -> None:
        self.console.print()
        self.say(f"--- {title}" + (f": {expect}" if expect else ""), style="bold")

    def look(self) -> dict[str, list[dict[str, Any]]]:
        """Read the three kinds and the Events once, show what changed, and return the objects by kind."""
        objects: dict[str, list[dict[str, Any]]] = {}
        for kind, plural in KINDS:
            items = self.api.get(GROUP.format(ns=self.ns, plural=plural)).get("items", [])
            objects[kind] = sorted(items, key=lambda o: o["metadata"]["creationTimestamp"] + o["metadata"]["name"])
            for obj in objects[kind]:
                row = _row(kind, obj)
                key = (kind, row[0])
                headline = _headline(kind, obj)
                if self._live is None and self._headlines.get(key) != headline:
                    self.say(f"{kind}/{row[0]}: {row[1] or 'accepted'}  {row[2]}")
                self.rows[key], self._headlines[key] = row, headline
        self._events()
        if self._live is not None:
            self._live.update(self._table())
        return objects

    def _events(self) -> None:
        items = self.api.get(f"/api/v1/namespaces/{self.ns}/events").get("items", [])
        items.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")
        for e in items:
            uid, involved = e["metadata"]["uid"], e["involvedObject"]
            if uid in self._seen_events or involved["kind"] not in dict(KINDS):
                continue
            self._seen_events.add(uid)
            style = "yellow" if e["type"] == "Warning" else ""
            who = f"{involved['kind']}/{involved['name']}"
            self.say(f"  event {e['type']:<7} {who}: {e['reason']}: {e.get('message', '')}", style=style)

    def _table(self) -> Group:
        table = Table(title=f"kubectl get driftline -n {self.ns}", title_justify="left", expand=False)
        for col in ("KIND", "NAME", "PHASE", "DETAIL"):
            table.add_column(col)
        for (kind, _), (name, phase, detail) in self.rows.items():
            table.add_row(kind, name, Text(phase, style=STYLE.get(phase, "")), detail)
        return Group(table)
