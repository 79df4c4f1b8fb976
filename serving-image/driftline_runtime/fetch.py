"""`driftline-runtime fetch`: the serving pod's init container. Downloads a model version's artifact from object
storage into pod-local storage (an emptyDir) before the server starts, as KServe's storage initializer does.

Transient failures (the endpoint unreachable, a 5xx) are retried with back-off; a refusal (no such key, access
denied, a sha256 that is not the ModelVersion's) is not. Either way a failure ends with exit code 1 and
`{"ok": false, "reason", "message"}` in the termination message, which the operator reports on the InferenceService;
the kubelet retries the pod with its own back-off, and the version already serving keeps serving meanwhile.
"""

from __future__ import annotations

import argparse
import re
import sys
import time

from driftline_runtime import artifact, storage, termination
from driftline_runtime.termination import Failure

ATTEMPTS = 4  # 1 + 2 + 4 s of back-off: then the kubelet's, which grows to 5 minutes
FIRST_DELAY = 1.0
_SHA256 = re.compile(r"[0-9a-f]{64}")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise Failure("InvalidArguments", message)


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="driftline-runtime fetch", description="Fetch a model artifact into a local directory.")
    p.add_argument("--from", dest="source", required=True, help="s3://bucket/prefix of the artifact")
    p.add_argument("--to", dest="target", required=True, help="local directory to fill (created if absent)")
    p.add_argument("--expected-sha256", required=True, help="the model file's sha256 the ModelVersion recorded")
    p.add_argument("--termination-log", default=termination.DEFAULT_PATH)
    p.add_argument("--attempts", type=int, default=ATTEMPTS, help=f"tries of a transient failure (default {ATTEMPTS})")
    return p


def main(argv: list[str]) -> int:
    log = termination.path_of(argv)
    started = time.monotonic()
    try:
        ns = parser().parse_args(argv)
        if not _SHA256.fullmatch(ns.expected_sha256):
            raise Failure("InvalidArguments", "--expected-sha256 must be 64 lowercase hexadecimal digits")
        prefix = storage.parse(ns.source)
        metadata = storage.retrying(
            max(1, ns.attempts), FIRST_DELAY, lambda: artifact.fetch(prefix, ns.target, ns.expected_sha256)
        )
    except Failure as e:
        termination.write(log, termination.failure_document(e.reason, e.message))
        return 1
    seconds = time.monotonic() - started
    name = metadata["artifact"]["file"]
    print(f"fetched {prefix} ({name}, sha256 {ns.expected_sha256[:12]}) into {ns.target} in {seconds:.1f}s")
    termination.write(log, {"ok": True, "storageUri": str(prefix), "seconds": round(seconds, 3)})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
