"""The labelled live rows a retrain learns from (spec.retrain.data LiveLabels): the serving pods' labelled windows, as
CSV pages, made into one dataset that fits a ConfigMap.

Pure: the pods are read in driftline.metrics.pods, the ConfigMap is rendered in driftline.render.retrain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MAX_BYTES = 900 * 1024
"""A ConfigMap holds at most 1 MiB; what is over this is the oldest rows, left out."""


@dataclass(frozen=True)
class LiveData:
    csv: str
    rows: int
    note: str
    """What it holds, for the retrain's Event: how many rows, from how many pods, what was left out."""


def merge(pages: Sequence[str], max_bytes: int = MAX_BYTES) -> LiveData | None:
    """One CSV from the pods' pages (a header, then rows oldest first): the first page's header, every page's rows
    under it, and as many of the newest rows as fit `max_bytes`. A page whose header differs (a pod of another
    model) is left out. None without a single row."""
    header: str | None = None
    rows: list[str] = []
    used = skipped = 0
    for page in pages:
        lines = [line for line in page.splitlines() if line.strip()]
        if not lines:
            continue
        if header is None:
            header = lines[0]
        if lines[0] != header:
            skipped += 1
            continue
        used += 1
        rows += lines[1:]
    if header is None or not rows:
        return None
    budget = max_bytes - len(header) - 1
    kept: list[str] = []
    for line in reversed(rows):
        budget -= len(line) + 1
        if budget < 0:
            break
        kept.append(line)
    kept.reverse()
    note = f"{len(kept)} labelled live rows from {used} pod{'s' if used != 1 else ''}"
    if len(kept) < len(rows):
        note += f" (the newest {len(kept)} of {len(rows)}: a ConfigMap holds {max_bytes // 1024} KiB)"
    if skipped:
        note += f"; {skipped} pod(s) with other columns left out"
    return LiveData("\n".join([header, *kept]) + "\n", len(kept), note)
