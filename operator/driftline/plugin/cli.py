"""`kubectl driftline`: get a service as a tree (--watch: refreshed in place) or a model as its versions, a version's
lineage, a service's history and why it did what it did; promote, reject, roll back, retrain, pin and unpin.

Every read and write goes through kubectl itself, so the kubeconfig, --context, -n and the user's own rights apply
exactly as they do to kubectl; each change is what a person could write in Git (an annotation), and is printed as
such, with a warning when Argo CD or Flux manages the object."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

from driftline.plugin import view

GROUP = "driftline.dev"


class _Kubectl:
    def __init__(self, ns: argparse.Namespace) -> None:
        self.flags = [
            *(["--context", ns.context] if ns.context else []),
            *(["-n", ns.namespace] if ns.namespace else []),
            *(["--as", ns.as_user] if ns.as_user else []),
        ]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["kubectl", *self.flags, *args], capture_output=True, text=True, check=False)

    def get(self, resource: str, name: str | None = None, everywhere: bool = False) -> Any:
        where = ["--all-namespaces"] if everywhere else []
        done = self.run("get", f"{resource}.{GROUP}", *([name] if name else []), *where, "-o", "json")
        if done.returncode != 0:
            raise SystemExit(done.stderr.strip() or f"kubectl get {resource} failed")
        return json.loads(done.stdout)


def _colour() -> bool:
    """Colour only on a terminal, and never where NO_COLOR is set (no-color.org), as kubectl's own plugins do."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _print(obj: Any, output: str | None, lines: list[str]) -> None:
    if output == "json":
        print(json.dumps(obj, indent=2))
    elif output == "yaml":
        import yaml

        print(yaml.safe_dump(obj, sort_keys=False), end="")
    else:
        print("\n".join(view.coloured(lines) if _colour() else lines))


def _annotate(k: _Kubectl, kind: str, name: str, key: str, value: str) -> int:
    obj = k.get(kind, name)
    manager = view.gitops_manager(obj)
    if manager is not None:
        print(f"warning: {kind} {name} is managed by {manager}: its next sync may undo this; make it in Git:",
              file=sys.stderr)  # fmt: skip
        print(view.annotation_patch(kind, name, key, value), file=sys.stderr)
    done = k.run("annotate", "--overwrite", f"{kind}.{GROUP}/{name}", f"{key}={value}")
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    return done.returncode


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kubectl driftline", description=__doc__.split("\n\n")[0])
    p.add_argument("-n", "--namespace")
    p.add_argument("--context")
    p.add_argument("--as", dest="as_user", help="act as this user, as kubectl --as")
    sub = p.add_subparsers(dest="command", required=True)
    get = sub.add_parser("get", help="a service as a tree, or a model as its versions")
    get.add_argument("kind", choices=["inferenceservice", "dis", "model"])
    get.add_argument("name")
    get.add_argument("-o", "--output", choices=["yaml", "json", "wide"])
    get.add_argument("-A", "--all-namespaces", action="store_true", help="a model: its versions in every namespace")
    get.add_argument("-w", "--watch", action="store_true", help="a service: refresh the tree as it changes")
    get.add_argument("--timeout", type=float, default=0, help="with --watch: stop after this many seconds (0: never)")
    lineage = sub.add_parser("lineage", help="where a version came from and where it serves")
    lineage.add_argument("modelversion")
    lineage.add_argument("-o", "--output", choices=["yaml", "json"])
    for verb, about in (("promote", "make a version Production"), ("reject", "take a version out of the running")):
        cmd = sub.add_parser(verb, help=about)
        cmd.add_argument("modelversion")
    rollback = sub.add_parser("rollback", help="return a service to its previous version")
    rollback.add_argument("inferenceservice")
    retrain = sub.add_parser("retrain", help="train a new version from the service's spec.retrain.template now")
    retrain.add_argument("inferenceservice")
    for verb, about in (("history", "every decision a service recorded"), ("why", "the last decision and its inputs")):
        cmd = sub.add_parser(verb, help=about)
        cmd.add_argument("inferenceservice")
    pin = sub.add_parser("pin", help="serve one version, whatever is promoted (spec.version)")
    pin.add_argument("inferenceservice")
    pin.add_argument("version", type=int)
    unpin = sub.add_parser("unpin", help="follow the model's Production version again")
    unpin.add_argument("inferenceservice")
    return p


def _pin(k: _Kubectl, name: str, version: int | None) -> int:
    obj = k.get("inferenceservices", name)
    manager = view.gitops_manager(obj)
    if manager is not None:
        print(f"warning: inferenceservice {name} is managed by {manager}: its next sync may undo this; make it in Git:",
              file=sys.stderr)  # fmt: skip
        print(view.version_patch(name, version), file=sys.stderr)
    patch = json.dumps({"spec": {"version": version}})
    done = k.run("patch", f"inferenceservice.{GROUP}/{name}", "--type=merge", "-p", patch)
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    return done.returncode


def _tree(k: _Kubectl, name: str) -> tuple[Any, list[str]]:
    isvc = k.get("inferenceservices", name)
    versions = [v for v in k.get("modelversions")["items"] if v["spec"].get("model") == isvc["spec"]["model"]]
    return isvc, view.service_tree(isvc, versions)


def _watch(k: _Kubectl, name: str, timeout: float, interval: float = 2.0) -> int:
    """The tree again whenever it changes: redrawn in place on a terminal, else appended after a blank line (as
    `kubectl get -w` appends), until `timeout` seconds (0: until interrupted)."""
    tty, shown = sys.stdout.isatty(), None
    end = time.monotonic() + timeout if timeout > 0 else None
    try:
        while True:
            frame = "\n".join(_tree(k, name)[1])
            if frame != shown:
                sys.stdout.write("\x1b[H\x1b[2J" if tty else ("\n" if shown is not None else ""))
                sys.stdout.write(frame + "\n")
                sys.stdout.flush()
                shown = frame
            if end is not None and time.monotonic() >= end:
                return 0
            time.sleep(interval if end is None else max(0.0, min(interval, end - time.monotonic())))
    except KeyboardInterrupt:
        return 0


def _lineage(k: _Kubectl, name: str, output: str | None) -> int:
    mv = k.get("modelversions", name)
    ref = (mv.get("spec") or {}).get("trainingJobRef") or {}
    tj = None
    if ref.get("name"):
        found = k.run("get", f"trainingjobs.{GROUP}", ref["name"], "-o", "json")
        tj = json.loads(found.stdout) if found.returncode == 0 else None  # deleted since: said so
    services = k.get("inferenceservices")["items"]
    lines = view.lineage(mv, tj, services)
    _print({"modelVersion": mv, "trainingJob": tj}, output, lines)
    return 0


def main(argv: list[str] | None = None) -> int:
    ns = parser().parse_args(argv)
    k = _Kubectl(ns)
    token = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # a new value each time: each is one request
    if ns.command == "get" and ns.kind == "model" and ns.watch:
        print("error: --watch follows an inferenceservice, not a model", file=sys.stderr)
        return 2
    if ns.command == "get" and ns.kind == "model":
        versions = k.get("modelversions", everywhere=ns.all_namespaces)["items"]
        services = k.get("inferenceservices", everywhere=ns.all_namespaces)["items"]
        served: dict[tuple[str, int], list[str]] = {}
        for s in services:
            st, where = s.get("status") or {}, s["metadata"].get("namespace") or ""
            if (s.get("spec") or {}).get("model") == ns.name:
                for key in ("activeVersion", "canaryVersion"):
                    if st.get(key) is not None:
                        served.setdefault((where, int(st[key])), []).append(s["metadata"]["name"])
        mine = [v for v in versions if (v.get("spec") or {}).get("model") == ns.name]
        table = view.model_table(ns.name, versions, served, wide=ns.output == "wide", namespaces=ns.all_namespaces)
        _print({"model": ns.name, "versions": mine}, ns.output, table)
        return 0
    if ns.command == "get" and ns.all_namespaces:
        print(
            "error: -A lists a model's versions everywhere; a service is named in one namespace (-n)", file=sys.stderr
        )
        return 2
    if ns.command == "get" and ns.watch:
        return _watch(k, ns.name, ns.timeout)
    if ns.command == "get":
        isvc, lines = _tree(k, ns.name)
        _print(isvc, ns.output, lines)
        return 0
    if ns.command == "lineage":
        return _lineage(k, ns.modelversion, ns.output)
    if ns.command == "promote":
        return _annotate(k, "modelversion", ns.modelversion, "driftline.dev/promote", "true")
    if ns.command == "reject":
        return _annotate(k, "modelversion", ns.modelversion, "driftline.dev/reject", token)
    if ns.command in ("history", "why"):
        isvc = k.get("inferenceservices", ns.inferenceservice)
        print("\n".join(view.history_table(isvc) if ns.command == "history" else view.why(isvc)))
        return 0
    if ns.command == "retrain":
        return _annotate(k, "inferenceservice", ns.inferenceservice, "driftline.dev/retrain", token)
    if ns.command == "pin":
        return _pin(k, ns.inferenceservice, ns.version)
    if ns.command == "unpin":
        return _pin(k, ns.inferenceservice, None)
    return _annotate(k, "inferenceservice", ns.inferenceservice, "driftline.dev/rollback", token)


if __name__ == "__main__":
    sys.exit(main())
