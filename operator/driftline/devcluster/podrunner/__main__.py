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
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runner = Runner(
        args.kubeconfig,
        args.root.resolve(),
        args.node_name,
        args.pod_ip_prefix,
        binaries.versions().get("KUBERNETES_VERSION", "v0.0.0"),
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
