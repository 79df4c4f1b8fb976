"""What the operator's watches have seen of the objects its reconciles read: InferenceServices, the ModelVersions'
serving facts, and the services' Deployments, Services, disruption budgets and retrain TrainingJobs. A reconcile, a
canary tick or a drift reading reads them here and asks the API server nothing.

Kept current by kopf's watch events (handlers/watches.py) and by the answers to the operator's own writes, so a
reconcile right after a write never reads what it wrote over. Between two versions of one object the newer wins by
resourceVersion read as a number, as client-go's MutationCache compares them: the answer to an own write may arrive
before the watch event of an earlier change. A deleted object's uid is remembered for a while, so a listing or a write
answer older than its deletion cannot bring it back.

A namespace is filled from a listing the first time a reconcile in it reads (`prime`): kopf's watches of the kinds are
independent, so a service resumed at start could otherwise be reconciled before kopf has listed its model's versions.

Objects are held as compact JSON (a third of their decoded size) and decoded for each read, so no reader can change
what the next one sees; versions are held as the few fields serving reads of them (decide.serving.Version).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from driftline.api.constants import LABEL_INFERENCE_SERVICE
from driftline.decide import serving

GONE_KEPT = 10_000
"""Deleted uids remembered (the oldest forgotten first): a listing or answer older than a deletion is ignored."""


def resource_version(obj: Mapping[str, Any]) -> int:
    """An object's resourceVersion as a number (etcd's revision); 0 if it has none or it is not a number."""
    value = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    return int(value) if value.isdigit() else 0


def _compact(obj: Mapping[str, Any]) -> bytes:
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "managedFields"}
    return json.dumps({**obj, "metadata": meta}, separators=(",", ":")).encode()


@dataclass(frozen=True)
class _Entry:
    uid: str
    version: int
    data: bytes


class _Gone:
    """Deleted uids, the oldest forgotten first."""

    def __init__(self, keep: int = GONE_KEPT) -> None:
        self._uids: dict[str, None] = {}
        self._keep = keep

    def add(self, uid: str) -> None:
        self._uids[uid] = None
        while len(self._uids) > self._keep:
            del self._uids[next(iter(self._uids))]

    def __contains__(self, uid: object) -> bool:
        return uid in self._uids


class Bodies:
    """One kind's objects by (namespace, name), optionally grouped by a key their bodies give (a service's model)."""

    def __init__(self, group: Callable[[Mapping[str, Any]], str | None] | None = None) -> None:
        self._lock = threading.Lock()
        self._items: dict[tuple[str, str], _Entry] = {}
        self._groups: dict[tuple[str, str], set[str]] = {}
        self._group_of: dict[tuple[str, str], str] = {}
        self._group = group
        self._gone = _Gone()

    def put(self, obj: Mapping[str, Any] | None) -> None:
        """Hold `obj` unless what is held of it is newer, or it was deleted."""
        meta = (obj or {}).get("metadata") or {}
        if obj is None or not meta.get("namespace") or not meta.get("name"):
            return
        key, uid, version = (meta["namespace"], meta["name"]), str(meta.get("uid") or ""), resource_version(obj)
        with self._lock:
            if uid in self._gone:
                return
            held = self._items.get(key)
            if held is not None and held.uid == uid and held.version > version:
                return
            self._items[key] = _Entry(uid, version, _compact(obj))
            if self._group is not None:
                self._regroup(key, self._group(obj))

    def delete(self, obj: Mapping[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        self.forget(meta.get("namespace") or "", meta.get("name") or "", str(meta.get("uid") or ""))

    def forget(self, namespace: str, name: str, uid: str = "") -> None:
        """Drop an object that is gone (its uid, if known, is never held again)."""
        key = (namespace, name)
        with self._lock:
            held = self._items.get(key)
            if uid:
                self._gone.add(uid)
            if held is not None and (not uid or held.uid == uid):
                del self._items[key]
                if self._group is not None:
                    self._regroup(key, None)

    def _regroup(self, key: tuple[str, str], group: str | None) -> None:
        before = self._group_of.pop(key, None)
        if before is not None:
            members = self._groups.get((key[0], before), set())
            members.discard(key[1])
            if not members:
                self._groups.pop((key[0], before), None)
        if group is not None:
            self._group_of[key] = group
            self._groups.setdefault((key[0], group), set()).add(key[1])

    def prune(self, namespace: str, listed: set[str], snapshot: int) -> list[dict[str, Any]]:
        """Drop what `namespace` holds that a listing at revision `snapshot` no longer had (`listed`: the names it
        had): deleted while no watch was there to say so. What is newer than the snapshot stays. Returns the dropped."""
        with self._lock:
            stale = [
                (key, held)
                for key, held in self._items.items()
                if key[0] == namespace and key[1] not in listed and held.version < snapshot
            ]
        dropped = []
        for (ns, name), held in stale:
            self.forget(ns, name, held.uid)
            dropped.append(json.loads(held.data))
        return dropped

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        """A fresh decoded copy, or None if the watches know no such object."""
        with self._lock:
            held = self._items.get((namespace, name))
        return None if held is None else dict(json.loads(held.data))

    def version(self, namespace: str, name: str) -> tuple[str, int] | None:
        """The uid and resourceVersion held of an object, without decoding it: whether a copy decoded before is
        still what the view holds."""
        with self._lock:
            held = self._items.get((namespace, name))
        return None if held is None else (held.uid, held.version)

    def in_group(self, namespace: str, group: str) -> list[str]:
        with self._lock:
            return sorted(self._groups.get((namespace, group), ()))

    def __len__(self) -> int:
        return len(self._items)

    def size(self) -> int:
        """Bytes held (the compact JSON)."""
        with self._lock:
            return sum(len(e.data) for e in self._items.values())


class Versions:
    """ModelVersions by (namespace, model), each as what serving reads of it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[tuple[str, str], dict[str, tuple[str, int, serving.Version]]] = {}
        self._model_of: dict[tuple[str, str], str] = {}
        self._gone = _Gone()

    def put(self, mv: Mapping[str, Any] | None) -> None:
        meta = (mv or {}).get("metadata") or {}
        model = ((mv or {}).get("spec") or {}).get("model")
        if mv is None or not meta.get("namespace") or not meta.get("name") or not model:
            return
        try:
            version = serving.version_of(mv)
        except (KeyError, TypeError, ValueError):  # refused by the schema; nothing serving could use
            return
        ns, name, uid, rv = meta["namespace"], meta["name"], str(meta.get("uid") or ""), resource_version(mv)
        with self._lock:
            if uid in self._gone:
                return
            before = self._model_of.get((ns, name))
            if before is not None:
                held = self._models.get((ns, before), {}).get(name)
                if held is not None and held[0] == uid and held[1] > rv:
                    return
                if before != model:  # spec.model is immutable, but a deleted and recreated version may move
                    self._drop(ns, name)
            self._models.setdefault((ns, str(model)), {})[name] = (uid, rv, version)
            self._model_of[(ns, name)] = str(model)

    def delete(self, mv: Mapping[str, Any]) -> None:
        meta = mv.get("metadata") or {}
        ns, name, uid = meta.get("namespace") or "", meta.get("name") or "", str(meta.get("uid") or "")
        with self._lock:
            if uid:
                self._gone.add(uid)
            model = self._model_of.get((ns, name))
            held = self._models.get((ns, model), {}).get(name) if model is not None else None
            if held is not None and (not uid or held[0] == uid):
                self._drop(ns, name)

    def _drop(self, ns: str, name: str) -> None:
        model = self._model_of.pop((ns, name), None)
        if model is None:
            return
        versions = self._models.get((ns, model), {})
        versions.pop(name, None)
        if not versions:
            self._models.pop((ns, model), None)

    def prune(self, namespace: str, listed: set[str], snapshot: int) -> list[str]:
        """As Bodies.prune; returns the models whose versions were dropped."""
        with self._lock:
            stale = [
                (name, model, self._models[(ns, model)][name][0])
                for (ns, name), model in self._model_of.items()
                if ns == namespace and name not in listed and self._models[(ns, model)][name][1] < snapshot
            ]
        for name, _, uid in stale:
            self.delete({"metadata": {"namespace": namespace, "name": name, "uid": uid}})
        return sorted({model for _, model, _ in stale})

    def of(self, namespace: str, model: str) -> list[serving.Version]:
        with self._lock:
            held = list(self._models.get((namespace, model), {}).values())
        return sorted((v for _, _, v in held), key=lambda v: (v.version, v.name))

    def __len__(self) -> int:
        return len(self._model_of)


def _model_of(isvc: Mapping[str, Any]) -> str | None:
    model = (isvc.get("spec") or {}).get("model")
    return str(model) if model else None


def _retrain_of(job: Mapping[str, Any]) -> str | None:
    return ((job.get("metadata") or {}).get("labels") or {}).get(LABEL_INFERENCE_SERVICE)


class Listed(Protocol):
    """A listing that knows, once read, the revision it was read at (k8s.objects.Listing)."""

    resource_version: int

    def __iter__(self) -> Iterator[dict[str, Any]]: ...


Snapshot = Callable[[], Listed]


@dataclass
class Dropped:
    """What a resync found gone: objects (as they were held), and models some of whose versions went."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    models: list[str] = field(default_factory=list)


@dataclass
class Cache:
    """Everything the watches keep for the reconciles, and which namespaces have been filled from a listing."""

    services: Bodies
    versions: Versions
    deployments: Bodies
    k8s_services: Bodies
    budgets: Bodies
    retrains: Bodies

    def __init__(self) -> None:
        self.services = Bodies(group=_model_of)
        self.versions = Versions()
        self.deployments = Bodies()
        self.k8s_services = Bodies()
        self.budgets = Bodies()
        self.retrains = Bodies(group=_retrain_of)
        self._primed: set[str] = set()
        self._priming: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def prime(self, namespace: str, listings: Iterable[tuple[Bodies | Versions, Snapshot]]) -> None:
        """Fill `namespace` from `listings` once: (where, how to list what goes there). Objects the watches delivered
        meanwhile stay if newer; a failed listing leaves the namespace to be filled at the next read."""
        if namespace in self._primed:
            return
        with self._guard:
            lock = self._priming.setdefault(namespace, threading.Lock())
        with lock:
            if namespace in self._primed:
                return
            for where, listing in listings:
                for obj in listing():
                    where.put(obj)
            self._primed.add(namespace)

    def primed(self, namespace: str) -> bool:
        return namespace in self._primed

    def namespaces(self) -> list[str]:
        """The namespaces filled so far."""
        return sorted(self._primed)

    def resync(self, namespace: str, listings: Iterable[tuple[Bodies | Versions, Snapshot]]) -> Dropped:
        """`namespace` compared with fresh listings, as client-go's reflector replaces its store on a relist: what
        they hold is put (the newer wins), and what the view holds that they no longer do, older than their snapshot,
        is dropped. kopf's own relisting after a lost watch puts what exists but never reports what was deleted
        meanwhile; without this, a Deployment deleted then would be in the view for good."""
        dropped = Dropped()
        for where, listing in listings:
            found = listing()
            names: set[str] = set()
            for obj in found:
                where.put(obj)
                names.add(str((obj.get("metadata") or {}).get("name") or ""))
            if found.resource_version <= 0:
                continue  # no snapshot to judge by: drop nothing
            if isinstance(where, Versions):
                dropped.models.extend(where.prune(namespace, names, found.resource_version))
            else:
                dropped.objects.extend(where.prune(namespace, names, found.resource_version))
        return dropped

    def _holder(self, kind: str, obj: Mapping[str, Any]) -> Bodies | Versions | None:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        owned = LABEL_INFERENCE_SERVICE in labels
        holders: dict[str, Bodies | Versions | None] = {
            "InferenceService": self.services,
            "ModelVersion": self.versions,
            "Deployment": self.deployments if owned else None,
            "Service": self.k8s_services if owned else None,
            "PodDisruptionBudget": self.budgets if owned else None,
            "TrainingJob": self.retrains if owned else None,
        }
        return holders.get(kind)

    def wrote(self, obj: Mapping[str, Any] | None) -> None:
        """The API server's answer to an own write: held at once, before its watch event comes."""
        if obj is not None and (holder := self._holder(str(obj.get("kind") or ""), obj)) is not None:
            holder.put(obj)

    def deleted(self, kind: str, namespace: str, name: str) -> None:
        """An own deletion: forgotten at once (the watch event of the deletion names its uid)."""
        holder = {"Deployment": self.deployments, "PodDisruptionBudget": self.budgets}.get(kind)
        if holder is not None:
            holder.forget(namespace, name)


VIEW = Cache()
"""The one view of this operator process; pruned as the watches report deletions."""
