"""`driftline`: the operator (`run`) and the developer's local cluster (`dev cluster up|down|status`)."""

from __future__ import annotations

import argparse
import logging
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


def _run(args: argparse.Namespace) -> int:
    import kopf

    import driftline.handlers  # noqa: F401  (registers every handler)

    if not args.all_namespaces and not args.namespace:
        print("driftline run: pass --all-namespaces or one or more --namespace", file=sys.stderr)
        return 2
    kopf.configure(verbose=args.verbose, log_format=kopf.LogFormat[args.log_format.upper()])
    if not args.verbose:
        # kopf's line per handler run ("Handler ... succeeded"): 30,000 lines when starting into 10,000 versions. The
        # operator logs each decision itself (k8s/events.py); kopf's warnings and errors stay.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    if args.metrics_port is not None and args.metrics_secure:
        from driftline.k8s import secure_metrics

        secure_metrics.serve(args.metrics_port, args.metrics_address, args.metrics_cert_dir)
    elif args.metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(args.metrics_port, addr=args.metrics_address)
    kopf.run(
        clusterwide=args.all_namespaces,
        namespaces=args.namespace or (),
        standalone=args.peering is None,
        peering_name=args.peering,
        priority=args.priority,
        liveness_endpoint=args.liveness,
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from driftline.demo.run import main as demo_main

    return demo_main(args.dir, containers=args.containers)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="driftline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the operator against the current kubeconfig or in-cluster credentials")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (cluster-wide)")
    scope.add_argument("-n", "--namespace", action="append", help="watch only this namespace (repeatable)")
    run.add_argument("--peering", help="kopf peering name: replicas sharing it elect one active operator")
    run.add_argument("--priority", type=int, default=0, help="peering priority of this replica")
    run.add_argument("--liveness", help="liveness endpoint, e.g. http://0.0.0.0:8080/healthz")
    run.add_argument("--metrics-port", type=int, help="serve the operator's Prometheus metrics on this port")
    run.add_argument("--metrics-address", default="0.0.0.0", help="bind address of the metrics endpoint")
    run.add_argument(
        "--metrics-secure",
        action="store_true",
        help="serve metrics over HTTPS, only to bearer tokens the API server authenticates and allows get /metrics",
    )
    run.add_argument(
        "--metrics-cert-dir", type=Path, help="with --metrics-secure: tls.crt and tls.key (default: self-signed)"
    )
    run.add_argument("-v", "--verbose", action="store_true", help="log every handler invocation")
    run.add_argument(
        "--log-format",
        choices=["plain", "full", "json"],
        default="plain",
        help="log lines as text (plain; full adds time and logger) or one JSON object each, for log collectors",
    )
    run.set_defaults(func=_run)
    demo = sub.add_parser("demo", help="the model loop on the embedded local control plane (starts it if needed)")
    demo.add_argument("--dir", type=Path, default=default_cluster_dir(), help="where the local cluster keeps its state")
    demo.add_argument(
        "--containers",
        action="store_true",
        help="run the pods as real OCI containers from the images `make images` built (podman), not as processes",
    )
    demo.set_defaults(func=_demo)
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
