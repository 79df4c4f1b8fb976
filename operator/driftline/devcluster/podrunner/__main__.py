"""`python -m driftline.devcluster.podrunner`: started by LocalCluster, stopped with SIGTERM (stops all pods)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

from driftline.devcluster import binaries
from driftline.devcluster.podrunner.runner import Runner


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="driftline-pod-runner")
    p.add_argument("--kubeconfig", required=True, type=Path)
    p.add_argument("--root", required=True, type=Path)
    p.add_argument("--node-name", required=True)
    p.add_argument("--pod-ip-prefix", required=True)
    p.add_argument("--node-index", type=int, default=0, help="which of the cluster's nodes: its range of pod IPs")
    p.add_argument("--volumes-root", type=Path, help="where claims' directories live, shared by every node")
    p.add_argument("--no-provision", action="store_true", help="another runner of the cluster provisions claims")
    p.add_argument("--containers", action="store_true", help="run the project's images as OCI containers (podman)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runner = Runner(
        args.kubeconfig,
        args.root.resolve(),
        args.node_name,
        args.pod_ip_prefix,
        binaries.versions().get("KUBERNETES_VERSION", "v0.0.0"),
        node_index=args.node_index,
        volumes_root=args.volumes_root.resolve() if args.volumes_root else None,
        provision=not args.no_provision,
        containers=args.containers,
    )

    def stop(_sig: int, _frame: FrameType | None) -> None:
        runner.stopping.set()
        runner.wake()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    runner.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
