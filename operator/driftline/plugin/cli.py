"""`kubectl driftline`: get a service as a tree or a model as its versions, its history and why it did what it did;
promote, reject, roll back, pin and unpin.

Every read and write goes through kubectl itself, so the kubeconfig, --context, -n and the user's own rights apply
exactly as they do to kubectl; each change is what a person could write in Git (an annotation), and is printed as
such, with a warning when Argo CD or Flux manages the object."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import UTC, datetime
from typing import Any

from driftline.plugin import view

GROUP = "driftline.dev"


class _Kubectl:
    def __init__(self, ns: argparse.Namespace) -> None:
        self.flags = [
            *(["--context", ns.context] if ns.context else []),
            *(["-n", ns.namespace] if ns.namespace else []),
        ]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["kubectl", *self.flags, *args], capture_output=True, text=True, check=False)

    def get(self, resource: str, name: str | None = None) -> Any:
        done = self.run("get", f"{resource}.{GROUP}", *([name] if name else []), "-o", "json")
        if done.returncode != 0:
            raise SystemExit(done.stderr.strip() or f"kubectl get {resource} failed")
        return json.loads(done.stdout)


def _print(obj: Any, output: str | None, lines: list[str]) -> None:
    if output == "json":
        print(json.dumps(obj, indent=2))
    elif output == "yaml":
        import yaml

        print(yaml.safe_dump(obj, sort_keys=False), end="")
    else:
        print("\n".join(lines))


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
    get.add_argument("-o", "--output", choices=["yaml", "json"])
    for verb, about in (("promote", "make a version Production"), ("reject", "take a version out of the running")):
        cmd = sub.add_parser(verb, help=about)
        cmd.add_argument("modelversion")
    rollback = sub.add_parser("rollback", help="return a service to its previous version")
    rollback.add_argument("inferenceservice")
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


def main(argv: list[str] | None = None) -> int:
    ns = parser().parse_args(argv)
    k = _Kubectl(ns)
    token = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # a new value each time: each is one request
    if ns.command == "get" and ns.kind == "model":
        versions = k.get("modelversions")["items"]
        services = k.get("inferenceservices")["items"]
        served: dict[int, list[str]] = {}
        for s in services:
            st = s.get("status") or {}
            if (s.get("spec") or {}).get("model") == ns.name:
                for key in ("activeVersion", "canaryVersion"):
                    if st.get(key) is not None:
                        served.setdefault(int(st[key]), []).append(s["metadata"]["name"])
        mine = [v for v in versions if (v.get("spec") or {}).get("model") == ns.name]
        _print({"model": ns.name, "versions": mine}, ns.output, view.model_table(ns.name, versions, served))
        return 0
    if ns.command == "get":
        isvc = k.get("inferenceservices", ns.name)
        versions = [v for v in k.get("modelversions")["items"] if v["spec"].get("model") == isvc["spec"]["model"]]
        _print(isvc, ns.output, view.service_tree(isvc, versions))
        return 0
    if ns.command == "promote":
        return _annotate(k, "modelversion", ns.modelversion, "driftline.dev/promote", "true")
    if ns.command == "reject":
        return _annotate(k, "modelversion", ns.modelversion, "driftline.dev/reject", token)
    if ns.command in ("history", "why"):
        isvc = k.get("inferenceservices", ns.inferenceservice)
        print("\n".join(view.history_table(isvc) if ns.command == "history" else view.why(isvc)))
        return 0
    if ns.command == "pin":
        return _pin(k, ns.inferenceservice, ns.version)
    if ns.command == "unpin":
        return _pin(k, ns.inferenceservice, None)
    return _annotate(k, "inferenceservice", ns.inferenceservice, "driftline.dev/rollback", token)


if __name__ == "__main__":
    sys.exit(main())
