"""The termination message: the one JSON document a runtime job leaves for the operator to read.

Kubernetes keeps at most 4096 bytes of `/dev/termination-log`, so everything written here is compact JSON, ASCII only
(a byte is a character), and callers that build large documents shrink them with `fit` before writing.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable
from typing import Any

DEFAULT_PATH = "/dev/termination-log"
LIMIT_BYTES = 4096
# Headroom under the kubelet's limit so an added newline or a reader's framing never cuts the document.
BUDGET_BYTES = 4000
MAX_MESSAGE_CHARS = 2000


class Failure(Exception):
    """An expected failure: becomes `{"ok": false, "reason", "message"}` and exit code 1, never a bare traceback."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def encode(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."


def failure_document(reason: str, message: str) -> dict[str, Any]:
    return {"ok": False, "reason": clip(reason, 100), "message": clip(message, MAX_MESSAGE_CHARS)}


def fit(document: dict[str, Any], shrinkers: Iterable[Callable[[dict[str, Any]], dict[str, Any]]]) -> dict[str, Any]:
    """Apply the shrinkers in order (each returns a smaller copy) until the document fits the budget.

    The last shrinker must produce a document whose size is bounded by construction.
    """
    for shrink in shrinkers:
        if len(encode(document)) <= BUDGET_BYTES:
            return document
        document = shrink(document)
    return document


def write(path: str | None, document: dict[str, Any]) -> None:
    """Write the document to the termination log, and always echo it as the last line of stdout.

    A missing directory means we run outside Kubernetes (tests, a laptop): printing is then the whole job.
    """
    text = encode(document)
    print(text, flush=True)
    if not path or not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        return
    try:
        with open(path, "w", encoding="ascii") as f:
            f.write(text)
    except OSError as e:
        print(f"warning: cannot write the termination log {path}: {e}", file=sys.stderr)


def path_of(argv: list[str]) -> str:
    """Where a command's --termination-log points, found even when the rest of argv does not parse."""
    for i, arg in enumerate(argv):
        if arg == "--termination-log" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--termination-log="):
            return arg.split("=", 1)[1]
    return DEFAULT_PATH
