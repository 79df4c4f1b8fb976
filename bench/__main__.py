"""`python -m bench [names...] [--trials N] [--cluster-dir DIR]`: run benchmarks, tables on stdout, JSON in
bench/results/, progress on stderr."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib
import sys
import time
from pathlib import Path

from bench import BENCHMARKS
from bench.harness import BenchError, Result, environment, say


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
    # started into them in the shared cluster, which made a reconcile run after it 3.6-5.5x slower (measured).
    names = [n for n in BENCHMARKS if n in args.names] if args.names else list(BENCHMARKS)
    failed = 0
    started = time.monotonic()
    # A cluster (and an operator) only when a chosen benchmark needs one: drift and serving measure processes alone.
    need_cluster = any(getattr(modules[n], "NEEDS_CLUSTER", True) for n in names)
    cluster_dir = args.cluster_dir.resolve() if args.cluster_dir else None
    try:
        with environment(cluster_dir) if need_cluster else contextlib.nullcontext() as env:
            for name in names:
                say(f"--- {name}: {modules[name].DESCRIPTION}")
                t0, stamp = time.monotonic(), dt.datetime.now().isoformat(timespec="seconds")
                try:
                    result: Result = modules[name].run(env, args.trials)
                except BenchError as e:
                    failed += 1
                    tail = f"\noperator log tail:\n{env.operator.log_tail()}" if env is not None else ""
                    say(f"{name} FAILED: {e}{tail}")
                    continue
                result.started, result.seconds = stamp, time.monotonic() - t0
                print(result.table(), flush=True)
                print(f"  -> {result.write()}", flush=True)
    except KeyboardInterrupt:
        say("interrupted; everything this run started is stopped")
        return 130
    except BenchError as e:
        say(f"FAILED: {e}")
        return 1
    total = time.monotonic() - started
    print(f"total {total:.0f}s" + (", cluster start and stop included" if need_cluster else ""), flush=True)
    say(f"done in {total:.0f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
