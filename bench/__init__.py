"""Benchmarks against real peers: `python -m bench [names...]` (`make bench` runs them all).

Each benchmark runs on the real local control plane with the operator as a real process, prints a table on stdout
and writes its numbers as JSON to bench/results/<name>-<timestamp>.json. Where it means something, a benchmark
divides its numbers by the raw API server's, measured in the same run.

A benchmark is a module with NAME, DESCRIPTION, DEFAULT_TRIALS and `run(env, trials) -> harness.Result`.
"""

from __future__ import annotations

BENCHMARKS: dict[str, str] = {
    "reaction": "bench.reaction",
    "drift": "bench.drift",
    "serving": "bench.serving",
    "feedback": "bench.feedback",
    "storage": "bench.storage",
    "reconcile": "bench.reconcile",
    "driftloop": "bench.driftloop",
    "memory": "bench.memory",
}
"""Every benchmark, by name: the module that runs it, in the order they run (memory last: it fills the cluster)."""
