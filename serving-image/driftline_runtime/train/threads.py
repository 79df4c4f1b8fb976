"""How many threads the numeric libraries may use.

BLAS and OpenMP size their pools from the host's core count, not the pod's CPU limit; on a busy or throttled node the
surplus threads spin against each other and a one-second fit takes ten. So the pools are capped at the CPUs the
process can really use.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager

from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

CGROUP_CPU_MAX = "/sys/fs/cgroup/cpu.max"


def cpu_budget(cpu_max_path: str = CGROUP_CPU_MAX) -> int:
    """The affinity mask's size, capped by a cgroup v2 quota (`cpu.max`: "<quota> <period>" or "max <period>")."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cpus = os.cpu_count() or 1
    try:
        with open(cpu_max_path) as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            cpus = min(cpus, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


@contextmanager
def limited(threads: int) -> Iterator[None]:
    with threadpool_limits(limits=threads):
        yield
