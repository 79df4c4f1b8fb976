"""`python -m bench [names...] [--trials N] [--cluster-dir DIR]`: run benchmarks, tables on stdout, JSON in
bench/results/, progress on stderr."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import sys
import time
from pathlib import Path
from typing import Any

from bench import BENCHMARKS
from bench.harness import BenchError, Env, Result, environment, say


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", metavar="name", help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})"
    )
    parser.add_argument("--trials", type=int, help="trials per measurement (default: each benchmark's own)")
    parser.add_argument(
        "--cluster-dir",
        type=Path,
        help="run the local cluster in this directory and keep it afterwards (logs, audit log); a cluster already "
        "running there is reused and left running",
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    modules = {name: importlib.import_module(path) for name, path in BENCHMARKS.items()}
    if args.list:
        for name, mod in modules.items():
            print(f"{name}\t{mod.DESCRIPTION}")
        return 0
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    if args.trials is not None and args.trials < 1:
        print("--trials must be at least 1", file=sys.stderr)
        return 2
    # Always in BENCHMARKS' order, whatever the command line's: memory leaves 11,000 objects and an operator just
    # started into them in the shared cluster, which made a reconcile run after it 3.6-5.5x slower (measured). The
    # benchmarks that need no cluster (drift, serving: processes measured alone) run first, before the cluster starts:
    # an idle control plane beside them took ~15 % of a core and made drift's binning 1.7x slower (233 vs 137 ns a
    # row, 2026-12-04), work no model server pays.
    names = [n for n in BENCHMARKS if n in args.names] if args.names else list(BENCHMARKS)
    alone = [n for n in names if not getattr(modules[n], "NEEDS_CLUSTER", True)]
    clustered = [n for n in names if n not in alone]
    failed = 0
    started = time.monotonic()
    cluster_dir = args.cluster_dir.resolve() if args.cluster_dir else None
    try:
        for name in alone:
            failed += _run(modules[name], name, None, args.trials)
        if clustered:
            with environment(cluster_dir) as env:
                for name in clustered:
                    failed += _run(modules[name], name, env, args.trials)
    except KeyboardInterrupt:
        say("interrupted; everything this run started is stopped")
        return 130
    except BenchError as e:
        say(f"FAILED: {e}")
        return 1
    total = time.monotonic() - started
    print(f"total {total:.0f}s" + (", cluster start and stop included" if clustered else ""), flush=True)
    say(f"done in {total:.0f}s")
    return 1 if failed else 0


def _run(module: Any, name: str, env: Env | None, trials: int | None) -> int:
    """One benchmark: its table on stdout and its JSON written; 1 if it failed."""
    say(f"--- {name}: {module.DESCRIPTION}")
    t0, stamp = time.monotonic(), dt.datetime.now().isoformat(timespec="seconds")
    try:
        result: Result = module.run(env, trials)
    except BenchError as e:
        tail = f"\noperator log tail:\n{env.operator.log_tail()}" if env is not None else ""
        say(f"{name} FAILED: {e}{tail}")
        return 1
    result.started, result.seconds = stamp, time.monotonic() - t0
    print(result.table(), flush=True)
    print(f"  -> {result.write()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
