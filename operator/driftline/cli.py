"""`driftline`: the operator (`run`) and the developer's local cluster (`dev cluster up|down|status`)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def default_cluster_dir() -> Path:
    base = os.environ.get("DRIFTLINE_HOME") or os.path.join(
        os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state"), "driftline"
    )
    return Path(base) / "clusters" / "local"


def _cluster(args: argparse.Namespace) -> int:
    from driftline.devcluster.controlplane import ClusterError, LocalCluster

    cluster = LocalCluster(args.dir, pod_runner=not args.no_pod_runner)
    if args.action == "up":
        try:
            state = cluster.start(timeout=args.timeout)
        except ClusterError as e:
            print(f"driftline: {e}", file=sys.stderr)
            return 1
        print(f"export KUBECONFIG={state.kubeconfig}")
        print(f"# stop it with: driftline dev cluster down --dir {args.dir}", file=sys.stderr)
        return 0
    if args.action == "down":
        cluster.stop()
        print(f"cluster in {args.dir} stopped", file=sys.stderr)
        return 0
    running = cluster.running()
    print(f"{'running' if running else 'stopped'}: {args.dir} (kubeconfig {cluster.kubeconfig})")
    return 0 if running else 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="driftline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    dev = sub.add_parser("dev", help="developer tools: the local control plane")
    dev_sub = dev.add_subparsers(dest="dev_command", required=True)
    cl = dev_sub.add_parser("cluster", help="start, stop or inspect the local control plane")
    cl.add_argument("action", choices=["up", "down", "status"])
    cl.add_argument("--dir", type=Path, default=default_cluster_dir(), help="where the cluster keeps its state")
    cl.add_argument("--timeout", type=float, default=180.0)
    cl.add_argument("--no-pod-runner", action="store_true", help="control plane only; pods stay Pending")
    cl.set_defaults(func=_cluster)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
